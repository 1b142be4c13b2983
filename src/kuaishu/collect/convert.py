"""From staged text to typed columns: each value converted to its data item's type inside DuckDB.

A value that does not convert never becomes NULL silently: its row goes to the quarantine with a
reason naming the item, the source column and the value. Rows in = rows kept + rows quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from kuaishu.catalog.enums import ItemType
from kuaishu.clean.rules import Compiled, half_width_sql, text_sql
from kuaishu.clean.sqltext import literal
from kuaishu.collect.raw import RAW_TABLE, LoadError, RawTable, quote
from kuaishu.settings import get_settings

# Characters stripped around every value: ASCII whitespace and the ideographic space.
BLANKS = " \t\r\n\u3000\u00a0"

DUCK_TYPES: dict[ItemType, str] = {
    ItemType.C: "VARCHAR",
    ItemType.M: "VARCHAR",
    ItemType.G: "VARCHAR",
    ItemType.N: "DOUBLE",
    ItemType.B: "DOUBLE",
    ItemType.F: "DOUBLE",
    ItemType.I: "BIGINT",
    ItemType.Y: "DECIMAL(18,2)",
    ItemType.D: "DATE",
    ItemType.T: "TIMESTAMP",
    ItemType.L: "BOOLEAN",
}
TYPE_WORDS: dict[ItemType, str] = {
    ItemType.N: "数值",
    ItemType.B: "数值",
    ItemType.F: "数值",
    ItemType.I: "整数",
    ItemType.Y: "金额",
    ItemType.D: "日期",
    ItemType.T: "日期时间",
    ItemType.L: "是/否值",
}
DATE_FORMATS = "['%Y-%m-%d', '%Y/%m/%d', '%Y%m%d', '%Y年%m月%d日', '%Y.%m.%d']"
TIME_FORMATS = "['%Y-%m-%d %H:%M:%S', '%Y/%m/%d %H:%M:%S', '%Y/%m/%d %H:%M', '%Y%m%d%H%M%S', '%Y年%m月%d日 %H:%M:%S', '%Y年%m月%d日%H时%M分%S秒']"
TRUE_WORDS = "('1', 'true', 't', 'y', 'yes', '是', '真', '有')"
FALSE_WORDS = "('0', 'false', 'f', 'n', 'no', '否', '假', '无')"
# Decimal places an item type keeps. The cast rounds anything past them (2.5 → 3, 12.345 → 12.35),
# so a value with a nonzero digit there does not fit the item and is quarantined instead.
PLACES: dict[ItemType, int] = {ItemType.I: 0, ItemType.Y: 2}


@dataclass(frozen=True)
class Target:
    """A data item as the load sees it."""

    name: str
    type_code: ItemType
    length: int | None = None
    is_key: bool = False


@dataclass
class Converted:
    """Rows in = rows kept + rows quarantined + duplicates removed."""

    rows_in: int
    rows_kept: int
    rows_quarantined: int
    rows_duplicates: int = 0


def _trimmed(column: str) -> str:
    """``column`` without surrounding blanks. ``trim`` with a character list costs ~0.1 µs a
    value, so it runs only where a value starts or ends with a blank (a regular expression is
    cheaper than the trim it spares)."""
    edge = f"^[{BLANKS}]|[{BLANKS}]$"
    return (
        f"CASE WHEN regexp_matches({column}, {literal(edge)}) "
        f"THEN trim({column}, {literal(BLANKS)}) ELSE {column} END"
    )


def _plain(text: str) -> str:
    """A number's text without thousands separators and the yuan sign."""
    return f"replace(replace(replace({text}, ',', ''), '，', ''), '¥', '')"


def _rounded(item: Target, text: str, value: str) -> str | None:
    """SQL true when the cast rounded ``text``: a nonzero digit past the item's decimal places
    (exponent forms such as 2.55e1 are compared as numbers)."""
    places = PLACES.get(item.type_code)
    if places is None:
        return None
    plain = _plain(text)
    past = literal(rf"\.[0-9]{{{places}}}[0-9]*[1-9][0-9]*$")
    exponent = f"(contains(lower({plain}), 'e') AND TRY_CAST({plain} AS DOUBLE) <> {value})"
    return f"{value} IS NOT NULL AND (regexp_matches({plain}, {past}) OR {exponent})"


def _converted(item: Target, text: str) -> str:
    """SQL converting the trimmed text ``text`` to ``item``'s type; NULL when it cannot."""
    kind = item.type_code
    if kind in (ItemType.C, ItemType.M, ItemType.G):
        return text
    if kind in (ItemType.N, ItemType.B, ItemType.F, ItemType.I, ItemType.Y):
        return f"TRY_CAST({_plain(text)} AS {DUCK_TYPES[kind]})"
    if kind == ItemType.D:
        return f"COALESCE(TRY_CAST({text} AS DATE), TRY_STRPTIME({text}, {DATE_FORMATS})::DATE)"
    if kind == ItemType.T:
        return f"COALESCE(TRY_CAST({text} AS TIMESTAMP), TRY_STRPTIME({text}, {TIME_FORMATS}))"
    return (
        f"CASE WHEN lower({text}) IN {TRUE_WORDS} THEN TRUE "
        f"WHEN lower({text}) IN {FALSE_WORDS} THEN FALSE END"
    )


def _problems(item: Target, column: str, text: str, value: str) -> list[str]:
    """SQL expressions that are a reason when the value is wrong, else NULL."""
    label = f"信息项“{item.name}”（源列“{column}”）"
    found: list[str] = []
    if item.type_code in TYPE_WORDS:
        reason = (
            literal(f"{label}的值“")
            + f" || left({text}, 40) || "
            + literal(f"”不是有效的{TYPE_WORDS[item.type_code]}")
        )
        found.append(f"CASE WHEN {text} IS NOT NULL AND {value} IS NULL THEN {reason} END")
        rounded = _rounded(item, text, value)
        if rounded is not None:
            places = PLACES[item.type_code]
            kept = "不能有小数" if places == 0 else f"最多 {places} 位小数"
            reason = (
                literal(f"{label}的值“")
                + f" || left({text}, 40) || "
                + literal(f"”会被舍入：{TYPE_WORDS[item.type_code]}{kept}")
            )
            found.append(f"CASE WHEN {rounded} THEN {reason} END")
    elif item.length:
        reason = literal(f"{label}超过长度 {item.length}")
        found.append(f"CASE WHEN length({text}) > {item.length} THEN {reason} END")
    if item.is_key:
        found.append(f"CASE WHEN {text} IS NULL THEN {literal(f'{label}为关键字段，不能为空')} END")
    return found


def column_sql(
    targets: list[Target], mapping: dict[str, str], rules: Compiled | None = None
) -> tuple[list[str], str]:
    """The SELECT list converting ``raw`` to the items, and the reason expression."""
    columns: list[str] = []
    problems: list[str] = []
    for item in targets:
        source = mapping.get(item.name)
        if not source:
            columns.append(f"CAST(NULL AS {DUCK_TYPES[item.type_code]}) AS {quote(item.name)}")
            continue
        text = f"NULLIF({_trimmed(quote(source))}, '')"
        if item.type_code not in (ItemType.C, ItemType.M, ItemType.G):
            # Numbers and dates typed on a Chinese keyboard: full-width digits and signs.
            text = half_width_sql(text)
        if rules is not None:
            text = text_sql(rules, item.name, text)
        value = _converted(item, text)
        columns.append(f"{value} AS {quote(item.name)}")
        problems.extend(_problems(item, source, text, value))
    reason = f"NULLIF(concat_ws('；', {', '.join(problems)}), '')" if problems else "NULL"
    return columns, reason


def convert(
    con: duckdb.DuckDBPyConnection,
    raw: RawTable,
    targets: list[Target],
    mapping: dict[str, str],
    *,
    quarantine_path: Path,
    rules: Compiled | None = None,
) -> Converted:
    """Write ``serve.data`` from ``raw``; rows that fail go to ``quarantine_path`` (Parquet),
    with the duplicates a ``dedupe`` rule removed (each naming the row that was kept)."""
    missing = [source for source in mapping.values() if source and source not in raw.columns]
    if missing:
        raise LoadError(
            "映射引用的源列不存在：{cols}。",
            code="mapping_column_missing",
            details={"columns": missing, "available": raw.columns},
            cols="、".join(missing),
        )
    columns, reason = column_sql(targets, mapping, rules)
    checks = [reason, *(rules.checks if rules else [])]
    converted = (
        f"SELECT rowid AS _rid, {raw.line_sql} AS _line, {', '.join(columns)}, "
        f"{reason} AS _typed FROM {RAW_TABLE}"
    )
    # Rule checks see converted values; a row failing its type is not checked further.
    reasons = f"CASE WHEN _typed IS NOT NULL THEN _typed ELSE NULLIF(concat_ws('；', {', '.join(checks[1:] or ['NULL'])}), '') END"
    con.execute(f"CREATE TABLE checked AS SELECT *, {reasons} AS _reason FROM ({converted})")
    duplicates = _dedupe(con, targets, rules)
    _unique_keys(con, targets)
    names = ", ".join(quote(t.name) for t in targets)
    con.execute(f"CREATE TABLE serve.data AS SELECT {names} FROM checked WHERE _reason IS NULL")
    bad = int(con.execute("SELECT count(*) FROM checked WHERE _reason IS NOT NULL").fetchone()[0])  # type: ignore[index]
    if bad:
        source_columns = ", ".join(f"r.{quote(c)}" for c in raw.columns)
        con.execute(
            f"COPY (SELECT c._line AS _line, c._reason AS _reason, {source_columns} "
            f"FROM checked c JOIN {RAW_TABLE} r ON r.rowid = c._rid "
            f"WHERE c._reason IS NOT NULL ORDER BY c._line) "
            f"TO {literal(str(quarantine_path))} (FORMAT parquet)"
        )
    kept = int(con.execute("SELECT count(*) FROM serve.data").fetchone()[0])  # type: ignore[index]
    con.execute("DROP TABLE checked")
    return Converted(
        rows_in=raw.rows,
        rows_kept=kept,
        rows_quarantined=bad - duplicates,
        rows_duplicates=duplicates,
    )


def _dedupe(con: duckdb.DuckDBPyConnection, targets: list[Target], rules: Compiled | None) -> int:
    """Mark the rows a ``dedupe`` rule removes (their reason names the row kept); how many."""
    if rules is None or rules.dedupe is None:
        return 0
    by, keep = rules.dedupe
    columns = ", ".join(quote(name) for name in (by or [t.name for t in targets]))
    order = "_line DESC" if keep == "last" else "_line"
    window = f"(PARTITION BY {columns} ORDER BY {order})"
    con.execute(
        f"CREATE TABLE duplicate AS SELECT _rid, first_value(_line) OVER {window} AS _kept, "
        f"row_number() OVER {window} AS _n FROM checked WHERE _reason IS NULL"
    )
    con.execute(
        "UPDATE checked SET _reason = '重复记录（规则保留第 ' || d._kept || ' 行）' "
        "FROM duplicate d WHERE d._rid = checked._rid AND d._n > 1"
    )
    found = int(con.execute("SELECT count(*) FROM duplicate WHERE _n > 1").fetchone()[0])  # type: ignore[index]
    con.execute("DROP TABLE duplicate")
    return found


def _unique_keys(con: duckdb.DuckDBPyConnection, targets: list[Target]) -> None:
    """Quarantine every row whose key (the key items together) another kept row also has: with
    no de-duplication rule saying which one wins, none of them is served in its place."""
    keys = [t.name for t in targets if t.is_key]
    if not keys:
        return
    columns = ", ".join(quote(name) for name in keys)
    value = f" || {literal('，')} || ".join(f"CAST(d.{quote(name)} AS VARCHAR)" for name in keys)
    reason = (
        literal(f"关键字段（{'、'.join(keys)}）的值“")
        + f" || left({value}, 80) || "
        + literal("”重复，共 ")
        + " || d._count || "
        + literal(" 行（第 ")
        + f" || d._lines || CASE WHEN d._count > 5 THEN {literal(' 等')} ELSE '' END || "
        + literal(" 行），去重规则未指明保留哪一行")
    )
    # Counted first, so the lines are listed for the repeated keys only, not for every row.
    con.execute(
        f"CREATE TABLE duplicate AS WITH repeated AS (SELECT {columns}, count(*) AS _count "
        f"FROM checked WHERE _reason IS NULL GROUP BY {columns} HAVING count(*) > 1) "
        f"SELECT c._rid, c._line, {', '.join('r.' + quote(n) for n in keys)}, r._count "
        f"FROM checked c JOIN repeated r USING ({columns}) WHERE c._reason IS NULL"
    )
    con.execute(
        f"CREATE TABLE duplicate_lines AS SELECT {columns}, "
        f"array_to_string(list(_line ORDER BY _line)[1:5], '、') AS _lines "
        f"FROM duplicate GROUP BY {columns}"
    )
    con.execute(
        f"ALTER TABLE duplicate ADD COLUMN _lines VARCHAR; "
        f"UPDATE duplicate SET _lines = l._lines FROM duplicate_lines l "
        f"WHERE {' AND '.join(f'l.{quote(n)} = duplicate.{quote(n)}' for n in keys)}"
    )
    con.execute(
        f"UPDATE checked SET _reason = {reason} FROM duplicate d WHERE d._rid = checked._rid"
    )
    con.execute("DROP TABLE duplicate; DROP TABLE duplicate_lines")


def index_keys(con: duckdb.DuckDBPyConnection, targets: list[Target]) -> None:
    """The key index beside the data (联机查询 in about a millisecond). DuckDB builds an ART index
    in memory, so the build alone gets ``index_memory_mb``; everything else spills to disk."""
    keys = [t for t in targets if t.is_key]
    if not keys:
        return
    settings = get_settings()
    con.execute("CHECKPOINT serve")  # the converted rows go to disk before the index is built
    con.execute(f"SET memory_limit = '{max(settings.index_memory_mb, settings.load_memory_mb)}MB'")
    try:
        for target in keys:
            con.execute(
                f"CREATE INDEX {quote('ix_' + target.name)} ON serve.data ({quote(target.name)})"
            )
    finally:
        con.execute(f"SET memory_limit = '{settings.load_memory_mb}MB'")
