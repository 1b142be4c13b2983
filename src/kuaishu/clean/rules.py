"""Cleaning rules (清洗规则): declarative, checked when saved, compiled to DuckDB SQL for a load.

A rule set is a list of rules, each ``{"kind": …, …}``:

- text, before conversion: ``normalise`` (full-width letters, digits and signs to half-width, runs
  of blanks to one space), ``null_tokens`` (values meaning "none" — ``/``, ``暂无``, ``-`` — to
  NULL), ``map`` (a value-mapping table);
- checks on the converted value, a failing row going to the quarantine with the rule's reason:
  ``regex``, ``range``, ``enum``, ``identifier`` (python-stdnum's checks, as SQL), ``reference``
  (the value must exist in a column of another entry's served data), ``id_consistency`` (多元校核:
  the birth date and sex coded in an ID number against the birth-date and sex items);
- ``dedupe``: exact (whole row) or by items; the first (or last) row in file order wins, the
  others are counted as duplicates removed, never silently.

Items are named by their data item; ``"*"`` (where allowed) means every text item.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kuaishu.clean.identifiers import KIND_LABELS, REASON_LABELS, IdentifierKind, sql_reason
from kuaishu.clean.schemas import (
    RULE_PARAMS,
    DedupeRule,
    IdConsistencyRule,
    RangeRule,
    ReferenceRule,
    RegexRule,
)
from kuaishu.clean.sqltext import literal, number
from kuaishu.collect.raw import quote

KINDS = tuple(RULE_PARAMS)
DEFAULT_NULL_TOKENS = ("/", "-", "--", "—", "无", "暂无", "NULL", "null", "N/A", "n/a", "不详")
FULL_WIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
HALF_WIDTH = "".join(chr(c) for c in range(0x21, 0x7F)) + " "
FULL_WIDTH_CLASS = "[\uff01-\uff5e\u3000]"
ANY = "*"


@dataclass(frozen=True)
class Problem:
    """A rule that cannot be kept: where, a stable code and the Chinese message."""

    field: str
    code: str
    message: str


PROBLEM_MESSAGES = {
    "unknown_kind": "未知的规则类型。",
    "unknown_item": "没有这个信息项。",
    "missing": "缺少必填参数。",
    "bad_regex": "正则表达式无法解析。",
    "bad_range": "范围的 min、max 应为数值，且 min 不大于 max。",
    "bad_identifier": "未知的标识类型。",
    "bad_keep": "keep 应为 first 或 last。",
    "bad_list": "应为非空的字符串列表。",
    "bad_map": "应为“原值 → 新值”的对照表。",
    "unknown_reference": "被引用的资源不存在或尚无已发布的数据，或没有该字段。",
    "unknown_parameter": "该规则类型没有这个参数。",
    "bad_parameter": "参数的类型或取值无效。",
}


@dataclass
class Compiled:
    """A rule set as SQL pieces for one load."""

    # item → text transforms, in order: each the SQL pieces around the value it transforms (the
    # value is joined in, never substituted into text that holds the rule's literals).
    text: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    normalise: set[str] = field(default_factory=set)
    checks: list[str] = field(default_factory=list)  # reason expressions over converted values
    dedupe: tuple[tuple[str, ...], str] | None = None  # (items or () for whole rows, keep)
    reads: list[Path] = field(default_factory=list)  # the files the checks read (references)
    # Statements (SQL, bound parameters) the load runs first: the values a reference may see.
    prepare: list[tuple[str, list[Any]]] = field(default_factory=list)


def check_rules(
    rules: Sequence[Mapping[str, Any]],
    items: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
) -> list[Problem]:
    """Every problem of ``rules`` against the entry's ``items`` (name → type code) and the
    ``references`` it may point at (entry code → column names). Each rule is first parsed by its
    kind's typed parameters (:data:`kuaishu.clean.schemas.RULE_PARAMS`), then its names are
    checked against the items."""
    problems: list[Problem] = []

    def problem(where: str, code: str) -> None:
        problems.append(Problem(where, code, PROBLEM_MESSAGES[code]))

    def item_of(where: str, name: str | None, *, any_ok: bool = False) -> None:
        if name is not None and name not in items and not (any_ok and name == ANY):
            problem(where, "unknown_item")

    for index, rule in enumerate(rules):
        where, kind = f"rules[{index}]", rule.get("kind")
        model = RULE_PARAMS.get(kind) if isinstance(kind, str) else None
        if model is None or not isinstance(kind, str):
            problem(f"{where}.kind", "unknown_kind")
            continue
        try:
            parsed = model.model_validate(dict(rule))
        except ValidationError as error:
            shapes = {
                (str(e["loc"][0]) if e["loc"] else "", _shape_code(kind, e))
                for e in error.errors(include_url=False)
            }
            for name, code in sorted(shapes):
                problem(f"{where}.{name}" if name else where, code)
            continue
        text_item = getattr(parsed, "item", None)
        item_of(f"{where}.item", text_item, any_ok=kind in ("normalise", "null_tokens"))
        if isinstance(parsed, RegexRule):
            try:
                re.compile(parsed.pattern)
            except re.error:
                problem(f"{where}.pattern", "bad_regex")
        if isinstance(parsed, RangeRule) and not _range_ok(parsed):
            problem(where, "bad_range")
        if isinstance(parsed, ReferenceRule):
            columns = references.get(parsed.entry)
            if columns is None or parsed.column not in columns:
                problem(f"{where}.entry", "unknown_reference")
        if isinstance(parsed, IdConsistencyRule):
            for key in ("id_item", "birth_item", "sex_item"):
                item_of(f"{where}.{key}", getattr(parsed, key))
        if isinstance(parsed, DedupeRule):
            for name in parsed.by:
                item_of(f"{where}.by", name)
    return problems


# A parameter of the wrong shape, by the parameter it concerns (else ``bad_parameter``).
SHAPE_CODES = {
    "tokens": "bad_list",
    "values": "bad_list",
    "by": "bad_list",
    "min": "bad_range",
    "max": "bad_range",
    "identifier": "bad_identifier",
    "keep": "bad_keep",
}


def _shape_code(kind: str, error: Mapping[str, Any]) -> str:
    name = str(error["loc"][0]) if error["loc"] else ""
    if error["type"] == "missing":
        return "missing"
    if error["type"] == "extra_forbidden":
        return "unknown_parameter"
    if kind == "map" and name == "values":
        return "bad_map"
    return SHAPE_CODES.get(name, "bad_parameter")


def _range_ok(rule: RangeRule) -> bool:
    low, high = rule.min, rule.max
    if low is None and high is None:
        return False
    return low is None or high is None or low <= high


# Compiling -------------------------------------------------------------------------------------


def compile_rules(
    rules: Sequence[Mapping[str, Any]],
    items: Mapping[str, str],
    *,
    references: Mapping[tuple[str, str], str] | None = None,
) -> Compiled:
    """The SQL of ``rules`` (already checked); ``references`` maps (entry code, column) to the
    relation of values the reference may see (``v``), made by the load first."""
    out = Compiled()
    texts = [name for name, kind in items.items() if kind in ("C", "M", "G")]
    for rule in rules:
        kind = rule["kind"]
        targets = texts if rule.get("item") == ANY else [rule.get("item", "")]
        if kind == "normalise":
            out.normalise.update(targets)
        elif kind == "null_tokens":
            tokens = ", ".join(literal(t) for t in rule["tokens"])
            for name in targets:
                out.text.setdefault(name, []).append(
                    ("CASE WHEN ", f" IN ({tokens}) THEN NULL ELSE ", " END")
                )
        elif kind == "map":
            cases = " ".join(
                f"WHEN {literal(k)} THEN {literal(v)}" for k, v in rule["values"].items()
            )
            out.text.setdefault(rule["item"], []).append(("CASE ", f" {cases} ELSE ", " END"))
        elif kind == "dedupe":
            out.dedupe = (tuple(rule.get("by") or ()), str(rule.get("keep", "first")))
        else:
            out.checks.append(_check_sql(rule, references or {}))
    return out


def _reason(item: str, text: str) -> str:
    return literal(f"信息项“{item}”") + " || " + literal(text)


def _value(item: str) -> str:
    return quote(item)


def _check_sql(rule: Mapping[str, Any], references: Mapping[tuple[str, str], str]) -> str:
    """A VARCHAR expression over the converted row: the reason the rule fails, else NULL."""
    kind = rule["kind"]
    if kind == "id_consistency":
        return _id_consistency(rule)
    item = str(rule["item"])
    v = _value(item)
    shown = f"left(CAST({v} AS VARCHAR), 40)"
    if kind == "regex":
        failed = f"NOT regexp_full_match(CAST({v} AS VARCHAR), {literal(str(rule['pattern']))})"
        why = _reason(item, "的值“") + f" || {shown} || " + literal("”不符合格式要求")
    elif kind == "range":
        bounds = []
        if rule.get("min") is not None:
            bounds.append(f"{v} < {number(rule['min'])}")
        if rule.get("max") is not None:
            bounds.append(f"{v} > {number(rule['max'])}")
        label = f"{rule.get('min', '')}～{rule.get('max', '')}"
        failed = " OR ".join(bounds)
        why = _reason(item, "的值“") + f" || {shown} || " + literal(f"”超出范围 {label}")
    elif kind == "enum":
        values = ", ".join(literal(str(x)) for x in rule["values"])
        failed = f"CAST({v} AS VARCHAR) NOT IN ({values})"
        why = _reason(item, "的值“") + f" || {shown} || " + literal("”不在允许的取值中")
    elif kind == "identifier":
        identifier = IdentifierKind(rule["identifier"])
        code = sql_reason(identifier, f"CAST({v} AS VARCHAR)")
        labels = " ".join(
            f"WHEN {literal(str(r))} THEN {literal(label)}" for r, label in REASON_LABELS.items()
        )
        return (
            f"CASE WHEN {v} IS NOT NULL AND ({code}) IS NOT NULL THEN "
            + _reason(item, "的值“")
            + f" || {shown} || "
            + literal(f"”不是有效的{KIND_LABELS[identifier]}（")
            + f" || (CASE ({code}) {labels} END) || '）' END"
        )
    else:  # reference
        # A relation the load made under the reference's channel (clean.references), by name.
        relation = references[str(rule["entry"]), str(rule["column"])]
        failed = f"CAST({v} AS VARCHAR) NOT IN (SELECT v FROM {relation})"
        why = (
            _reason(item, "的值“")
            + f" || {shown} || "
            + literal(f"”在资源 {rule['entry']} 的“{rule['column']}”中不存在")
        )
    return f"CASE WHEN {v} IS NOT NULL AND ({failed}) THEN {why} END"


def _id_consistency(rule: Mapping[str, Any]) -> str:
    """The ID's birth digits (7–14) and sex digit (17: odd 男, even 女) against the other items."""
    id_sql = f"CAST({_value(str(rule['id_item']))} AS VARCHAR)"
    parts: list[str] = []
    if rule.get("birth_item"):
        birth = _value(str(rule["birth_item"]))
        parts.append(
            f"CASE WHEN length({id_sql}) = 18 AND {birth} IS NOT NULL AND "
            f"substr({id_sql}, 7, 8) <> strftime(CAST({birth} AS DATE), '%Y%m%d') THEN "
            + literal(f"身份证号中的出生日期与“{rule['birth_item']}”不一致")
            + " END"
        )
    if rule.get("sex_item"):
        sex = _value(str(rule["sex_item"]))
        coded = f"CASE WHEN TRY_CAST(substr({id_sql}, 17, 1) AS INTEGER) % 2 = 1 THEN '男' ELSE '女' END"
        parts.append(
            f"CASE WHEN length({id_sql}) = 18 AND {sex} IN ('男', '女') AND {sex} <> {coded} THEN "
            + literal(f"身份证号中的性别与“{rule['sex_item']}”不一致")
            + " END"
        )
    if not parts:
        return "NULL"
    return f"NULLIF(concat_ws('；', {', '.join(parts)}), '')"


def half_width_sql(text: str) -> str:
    """Full-width letters, digits, signs and the ideographic space made half-width. DuckDB's
    ``translate`` costs ~3 µs a value, so it runs only on values that hold such a character."""
    return (
        f"CASE WHEN regexp_matches({text}, {literal(FULL_WIDTH_CLASS)}) "
        f"THEN translate({text}, {literal(FULL_WIDTH)}, {literal(HALF_WIDTH)}) ELSE {text} END"
    )


def text_sql(compiled: Compiled, item: str, text: str) -> str:
    """``text`` (the trimmed source value) through the item's text rules, in their order."""
    if item in compiled.normalise:
        text = f"regexp_replace({half_width_sql(text)}, '\\s+', ' ', 'g')"
    for step in compiled.text.get(item, []):
        text = f"({text.join(step)})"
    return f"NULLIF({text}, '')"
