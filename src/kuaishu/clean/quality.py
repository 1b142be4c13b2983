"""The data quality report (质量报告) of one dataset version, computed inside DuckDB.

Five dimensions, each a share from 0 to 1, or None when it does not apply:

- completeness (完整性): present cells / all cells; NULLs and placeholder tokens (``/``, ``暂无``…)
  are missing;
- validity (有效性): valid values / checked values, over the columns that have a check — an
  identifier kind, or a numeric or date item held as text; typed numeric and date columns are
  valid by construction;
- uniqueness (唯一性): 1 − surplus rows / rows, the surplus being the copies beyond the first of
  a whole row or, when the version has key columns, of a key value;
- consistency (一致性): 1 − mismatches / checked rows of the cross-item checks (the birth and sex
  digits of an ID number against the birth-date and sex items);
- timeliness (及时性): 1 while the version is within its update cycle, falling linearly to 0 at
  three cycles late; None for irregular updates or an unknown date.

The score is the weighted mean of the dimensions that apply, ×100, to one decimal. Weights
(:data:`WEIGHTS`): completeness 30, validity 25, uniqueness 15, consistency 15, timeliness 15 —
missing and wrong values hurt a user most; a dimension that does not apply gives its weight to
the others.

Every column's statistics come from one aggregate SELECT over the relation; whole-row and key
duplicates take one query each. No value passes through Python.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb

from kuaishu.catalog.enums import UpdateCycle
from kuaishu.clean.identifiers import RIC_FORMAT, IdentifierKind, sql_check
from kuaishu.clean.rules import DEFAULT_NULL_TOKENS
from kuaishu.clean.sqltext import literal
from kuaishu.collect.raw import quote

# The cleaning rules' "none" tokens, and the empty string: one vocabulary for cleaning and report.
DEFAULT_PLACEHOLDERS: tuple[str, ...] = (*DEFAULT_NULL_TOKENS, "")
WEIGHTS: dict[str, float] = {
    "completeness": 0.30,
    "validity": 0.25,
    "uniqueness": 0.15,
    "consistency": 0.15,
    "timeliness": 0.15,
}
# The longest a cycle can be in days, so a calendar month or quarter published on time is never late.
CYCLE_DAYS: dict[UpdateCycle, int | None] = {
    UpdateCycle.REALTIME: 1,  # dates carry no hours: a realtime feed a day old is late
    UpdateCycle.DAILY: 1,
    UpdateCycle.WEEKLY: 7,
    UpdateCycle.MONTHLY: 31,
    UpdateCycle.QUARTERLY: 92,
    UpdateCycle.HALF_YEARLY: 184,
    UpdateCycle.YEARLY: 366,
    UpdateCycle.IRREGULAR: None,
}
LATE_CYCLES = 3  # timeliness reaches 0 this many cycles past due
# Item types (信息项数据类型) whose text values must parse, and the DuckDB type they parse to.
NUMERIC_ITEMS = {"N": "DOUBLE", "Y": "DOUBLE", "B": "DOUBLE", "F": "DOUBLE", "I": "BIGINT"}
TEMPORAL_ITEMS = {"D": "DATE", "T": "TIMESTAMP"}
NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE",
                 "REAL", "DECIMAL", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT")  # fmt: skip
TEMPORAL_TYPES = ("DATE", "TIMESTAMP", "TIME")
TEXT_TYPES = ("VARCHAR", "TEXT", "STRING")
PAD = " \t\r\n\u3000"  # trimmed before a placeholder comparison: blanks, the ideographic space
# Birth dates written as text: ISO (by cast) or one of these.
BIRTH_FORMATS = ("%Y%m%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日")
# The sex item as written: the words, or the GB/T 2261.1 codes (1 male, 2 female).
SEX_VALUES = {"男": "男", "男性": "男", "1": "男", "女": "女", "女性": "女", "2": "女"}
CONSISTENCY_KINDS = ("id_birth_date", "id_sex")
_STATS = ("non_null", "placeholders", "distinct", "invalid", "min", "max", "zeros")


@dataclass(frozen=True)
class _Probe:
    """The SQL of one column's statistics."""

    name: str
    ref: str  # the quoted column
    text: bool
    key: bool
    placeholders: str  # BIGINT: values that are placeholder tokens
    present: str  # BOOLEAN: a value, neither NULL nor a placeholder
    invalid: str | None  # BOOLEAN over present values, true when invalid; None: nothing to check
    value: str | None  # the column as a number or date, for min and max; None: neither
    numeric: bool  # zeros are counted


def quality_report(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    schema: Sequence[Mapping[str, Any]],
    *,
    identifiers: Mapping[str, IdentifierKind] = {},
    placeholders: Sequence[str] = DEFAULT_PLACEHOLDERS,
    update_cycle: str | None = None,
    data_as_of: dt.date | None = None,
    today: dt.date | None = None,
    consistency: Sequence[tuple[str, str, str]] = (),
) -> dict[str, Any]:
    """The quality report of ``relation`` (a quoted table name or a table function) as JSON-able
    data; ``schema`` is the version's columns ({name, type, item_type, key})."""
    probes = [_probe(c, identifiers.get(str(c["name"])), placeholders) for c in schema]
    _check_names(probes, identifiers, consistency)
    checks = [_consistency_sql(kind, a, b, probes) for kind, a, b in consistency]
    aggregates = [sql for p in probes for sql in _aggregates(p)]
    aggregates += [sql for pair in checks for sql in pair]
    row = con.execute(f"SELECT count(*), {', '.join(aggregates)} FROM {relation}").fetchone()
    assert row is not None  # an aggregate without GROUP BY always returns one row
    rows = int(row[0])
    width = len(_STATS)
    columns = [
        _column_report(p, row[1 + i * width : 1 + (i + 1) * width], rows)
        for i, p in enumerate(probes)
    ]
    consistency_checks = [
        {
            "kind": kind,
            "id_column": a,
            "column": b,
            "checked": int(row[1 + len(probes) * width + 2 * i]),
            "mismatched": int(row[2 + len(probes) * width + 2 * i]),
        }
        for i, (kind, a, b) in enumerate(consistency)
    ]
    duplicates = rows - _distinct_rows(con, relation, probes)
    key_rows, key_groups = _key_duplicates(con, relation, [p for p in probes if p.key])
    dimensions = {
        "completeness": _mean([c["completeness"] for c in columns]),
        "validity": _validity(columns),
        "uniqueness": _share(rows - max(duplicates, key_rows - key_groups), rows),
        "consistency": _consistency(consistency_checks),
        "timeliness": timeliness(update_cycle, data_as_of, today or dt.date.today()),
    }
    report: dict[str, Any] = {
        "rows": rows,
        "score": score(dimensions),
        "dimensions": dimensions,
        "columns": columns,
        "duplicates": duplicates,
        "consistency_checks": consistency_checks,
    }
    if any(p.key for p in probes):
        report["key_duplicates"] = key_rows  # every row whose key another row also holds
        report["key_conflicts"] = key_groups  # key values held by more than one row
    return report


def timeliness(
    update_cycle: str | None, data_as_of: dt.date | None, today: dt.date
) -> float | None:
    """1.0 within the update cycle, falling linearly to 0 at three cycles late; None for
    irregular updates or when the cycle or the data date is unknown."""
    if update_cycle is None or data_as_of is None:
        return None
    days = CYCLE_DAYS[UpdateCycle(update_cycle)]
    if days is None:
        return None
    late = (today - data_as_of).days - days
    return max(0.0, 1.0 - max(late, 0) / (LATE_CYCLES * days))


def score(dimensions: Mapping[str, float | None]) -> float | None:
    """The weighted mean of the dimensions that apply, ×100, to one decimal (None when none do)."""
    applicable = {k: v for k, v in dimensions.items() if v is not None}
    weight = sum(WEIGHTS[k] for k in applicable)
    if not weight:
        return None
    return round(100 * sum(WEIGHTS[k] * v for k, v in applicable.items()) / weight, 1)


def _probe(
    column: Mapping[str, Any], kind: IdentifierKind | None, placeholders: Sequence[str]
) -> _Probe:
    name, type_ = str(column["name"]), str(column["type"]).upper()
    item = str(column.get("item_type") or "").upper()
    ref = quote(name)
    text = type_.startswith(TEXT_TYPES)
    if text and placeholders:
        tokens = ", ".join(literal(t) for t in placeholders)
        is_placeholder = f"trim({ref}, {literal(PAD)}) IN ({tokens})"
        counted = f"count(*) FILTER (WHERE {is_placeholder})"
        present = f"({ref} IS NOT NULL AND NOT {is_placeholder})"
    else:
        counted, present = "0", f"({ref} IS NOT NULL)"
    invalid: str | None
    value: str | None = None
    numeric = False
    if not text:
        invalid = "false"  # the stored type already holds only valid values
        if type_.startswith(NUMERIC_TYPES):
            value, numeric = ref, True
        elif type_.startswith(TEMPORAL_TYPES):
            value = ref
    elif item in NUMERIC_ITEMS or item in TEMPORAL_ITEMS:
        cast = NUMERIC_ITEMS.get(item) or TEMPORAL_ITEMS[item]
        value, numeric = f"TRY_CAST(trim({ref}, {literal(PAD)}) AS {cast})", item in NUMERIC_ITEMS
        invalid = f"({value} IS NULL)"
    else:
        invalid = None
    if kind is not None:
        invalid = f"(NOT {sql_check(IdentifierKind(kind), ref)})"
    return _Probe(
        name, ref, text, bool(column.get("key")), counted, present, invalid, value, numeric
    )


def _aggregates(p: _Probe) -> list[str]:
    """One expression per name in ``_STATS``, in that order."""
    where = f"FILTER (WHERE {p.present})"
    return [
        f"count({p.ref})",
        p.placeholders,
        f"count(DISTINCT {p.ref}) {where}",
        f"count(*) FILTER (WHERE {p.present} AND {p.invalid})" if p.invalid else "NULL",
        f"min({p.value}) {where}" if p.value else "NULL",
        f"max({p.value}) {where}" if p.value else "NULL",
        f"count(*) FILTER (WHERE {p.present} AND {p.value} = 0)" if p.numeric else "NULL",
    ]


def _column_report(p: _Probe, values: Sequence[Any], rows: int) -> dict[str, Any]:
    stats = dict(zip(_STATS, values, strict=True))
    non_null, placeholders = int(stats["non_null"]), int(stats["placeholders"])
    present, distinct = non_null - placeholders, int(stats["distinct"])
    invalid = None if stats["invalid"] is None else int(stats["invalid"])
    return {
        "name": p.name,
        "non_null": non_null,
        "nulls": rows - non_null,
        "placeholders": placeholders,  # among non_null; missing all the same
        "distinct": distinct,  # of present values
        "completeness": _share(present, rows),
        "validity": None if invalid is None else _share(present - invalid, present),
        "invalid": invalid,
        "uniqueness": _share(distinct, present) if p.key else None,
        "min": _json_value(stats["min"]),
        "max": _json_value(stats["max"]),
        "zeros": None if stats["zeros"] is None else int(stats["zeros"]),
    }


def _consistency_sql(
    kind: str, id_column: str, other: str, probes: list[_Probe]
) -> tuple[str, str]:
    """(rows checked, rows mismatched) of one cross-item check, as two aggregates."""
    by_name = {p.name: p for p in probes}
    id_text = f"trim(CAST({quote(id_column)} AS VARCHAR), {literal(PAD)})"
    shaped = f"regexp_full_match({id_text}, {literal(RIC_FORMAT)})"
    ref = quote(other)
    if kind == "id_birth_date":
        text = f"trim(CAST({ref} AS VARCHAR), {literal(PAD)})"
        formats = "[" + ", ".join(literal(f) for f in BIRTH_FORMATS) + "]"
        born = (
            f"coalesce(TRY_CAST({text} AS DATE), CAST(try_strptime({text}, {formats}) AS DATE))"
            if by_name[other].text
            else f"TRY_CAST({ref} AS DATE)"
        )
        checked = f"{shaped} AND {born} IS NOT NULL"
        mismatch = f"substr({id_text}, 7, 8) <> strftime({born}, '%Y%m%d')"
    else:
        whens = " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in SEX_VALUES.items())
        sex = f"(CASE trim(CAST({ref} AS VARCHAR), {literal(PAD)}) {whens} END)"
        coded = f"(CASE WHEN TRY_CAST(substr({id_text}, 17, 1) AS INTEGER) % 2 = 1 THEN '男' ELSE '女' END)"
        checked = f"{shaped} AND {sex} IS NOT NULL"
        mismatch = f"{sex} <> {coded}"
    return (
        f"count(*) FILTER (WHERE {checked})",
        f"count(*) FILTER (WHERE {checked} AND {mismatch})",
    )


def _check_names(
    probes: list[_Probe],
    identifiers: Mapping[str, IdentifierKind],
    consistency: Sequence[tuple[str, str, str]],
) -> None:
    names = {p.name for p in probes}
    asked = set(identifiers) | {c for _, a, b in consistency for c in (a, b)}
    if unknown := sorted(asked - names):
        raise ValueError(f"not in the schema: {', '.join(unknown)}")
    if bad := sorted({k for k, _, _ in consistency} - set(CONSISTENCY_KINDS)):
        raise ValueError(f"unknown consistency check: {', '.join(bad)}")


def _distinct_rows(con: duckdb.DuckDBPyConnection, relation: str, probes: list[_Probe]) -> int:
    columns = ", ".join(p.ref for p in probes) or "*"
    row = con.execute(
        f"SELECT count(*) FROM (SELECT DISTINCT {columns} FROM {relation})"
    ).fetchone()
    return int(row[0]) if row else 0


def _key_duplicates(
    con: duckdb.DuckDBPyConnection, relation: str, keys: list[_Probe]
) -> tuple[int, int]:
    """(rows whose key another row also holds, key values held by several rows); rows with a
    missing key part are completeness's concern, not counted here."""
    if not keys:
        return 0, 0
    present = " AND ".join(p.present for p in keys)
    group = ", ".join(p.ref for p in keys)
    row = con.execute(
        f"SELECT coalesce(sum(n), 0), count(*) FROM (SELECT count(*) AS n FROM {relation} "
        f"WHERE {present} GROUP BY {group} HAVING count(*) > 1)"
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _validity(columns: list[dict[str, Any]]) -> float | None:
    """Valid values over checked values, across every column that has a check."""
    checked = [c for c in columns if c["invalid"] is not None]
    present = sum(c["non_null"] - c["placeholders"] for c in checked)
    return _share(present - sum(c["invalid"] for c in checked), present)


def _consistency(checks: list[dict[str, Any]]) -> float | None:
    checked = sum(c["checked"] for c in checks)
    return _share(checked - sum(c["mismatched"] for c in checks), checked)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _json_value(value: Any) -> Any:
    """A minimum or maximum as JSON can hold it: numbers as numbers, dates as ISO text."""
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if value is None or isinstance(value, int | str | bool):
        return value
    return str(value)


def rule_inputs(
    rules: Sequence[Mapping[str, Any]],
) -> tuple[dict[str, IdentifierKind], list[tuple[str, str, str]]]:
    """What an entry's cleaning rules tell the report: which items are identifiers of which
    kind, and which ID-number cross-checks (多元校核) to count."""
    identifiers = {
        str(r["item"]): IdentifierKind(r["identifier"])
        for r in rules
        if r.get("kind") == "identifier"
    }
    consistency: list[tuple[str, str, str]] = []
    for rule in rules:
        if rule.get("kind") != "id_consistency":
            continue
        if rule.get("birth_item"):
            consistency.append(("id_birth_date", str(rule["id_item"]), str(rule["birth_item"])))
        if rule.get("sex_item"):
            consistency.append(("id_sex", str(rule["id_item"]), str(rule["sex_item"])))
    return identifiers, consistency
