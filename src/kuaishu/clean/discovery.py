"""Sensitive-data discovery (敏感数据发现): which columns hold personal or identifying data, how
sure we are, and what level and masking to propose — from patterns, checksums and context only.

One DuckDB query samples the relation, unpivots the sample to (column, value) and counts, per
column, the values each check accepts; the checks are :mod:`kuaishu.clean.identifiers`' SQL and
regexes built from ``lexicon.toml``. Python then weighs the shares against the header and the
neighbouring headers: a checksum alone cannot tell an ID number from a credit code when a string
passes both (STANDARDS.md §2), so the header decides first, then the neighbours (姓名 → a person,
企业名称 → an organisation), then the shares. A finding is a proposal for a person to confirm.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import duckdb

from kuaishu.catalog.enums import SECURITY_LEVELS
from kuaishu.clean.identifiers import IdentifierKind, sql_check
from kuaishu.clean.lexicon import chars, context_words, header_has, header_words, words
from kuaishu.clean.masking import MaskMethod
from kuaishu.clean.sqltext import literal
from kuaishu.collect.raw import quote

NOT_SENSITIVE, PRIVATE = SECURITY_LEVELS[0], SECURITY_LEVELS[1]  # 非敏感, 涉及用户隐私
DEFAULT_MIN_SHARE = 0.6  # values alone: this share of the sample must match
DEFAULT_HEADER_SHARE = 0.2  # with an explicit header, "some" values matching is this share
CLOSE_SHARE = 0.1  # kinds whose shares are this close are told apart by context, not by share
SAMPLE_SEED = 20160101  # a fixed seed: the same data always gives the same findings


class SensitiveKind(StrEnum):
    """敏感数据类别."""

    CITIZEN_ID = "citizen_id"  # 公民身份号码
    CREDIT_CODE = "credit_code"  # 统一社会信用代码
    MOBILE = "mobile"  # 手机号码
    EMAIL = "email"  # 电子邮箱
    BANK_CARD = "bank_card"  # 银行卡号
    LICENCE_PLATE = "licence_plate"  # 机动车号牌
    PASSPORT = "passport"  # 护照号码
    PERSON_NAME = "person_name"  # 姓名
    ADDRESS = "address"  # 地址
    COORDINATE = "coordinate"  # 经纬度坐标


KIND_LABELS: dict[SensitiveKind, str] = {
    SensitiveKind.CITIZEN_ID: "公民身份号码",
    SensitiveKind.CREDIT_CODE: "统一社会信用代码",
    SensitiveKind.MOBILE: "手机号码",
    SensitiveKind.EMAIL: "电子邮箱",
    SensitiveKind.BANK_CARD: "银行卡号",
    SensitiveKind.LICENCE_PLATE: "机动车号牌",
    SensitiveKind.PASSPORT: "护照号码",
    SensitiveKind.PERSON_NAME: "姓名",
    SensitiveKind.ADDRESS: "地址",
    SensitiveKind.COORDINATE: "经纬度坐标",
}
# What a matching value passed, for the evidence ("抽样 98% 通过 GB 11643 校验").
CHECK_LABELS: dict[SensitiveKind, str] = {
    SensitiveKind.CITIZEN_ID: "通过 GB 11643 校验",
    SensitiveKind.CREDIT_CODE: "通过 GB 32100 校验",
    SensitiveKind.MOBILE: "为在用手机号段",
    SensitiveKind.EMAIL: "符合电子邮箱格式",
    SensitiveKind.BANK_CARD: "通过银行卡 Luhn 校验",
    SensitiveKind.LICENCE_PLATE: "符合机动车号牌格式",
    SensitiveKind.PASSPORT: "符合护照号码格式",
    SensitiveKind.PERSON_NAME: "为常见姓氏开头的 2–4 个汉字",
    SensitiveKind.ADDRESS: "含行政区划和街路门牌",
    SensitiveKind.COORDINATE: "为经纬度数值",
}
_IDENTIFIERS = {
    SensitiveKind.CITIZEN_ID: IdentifierKind.CITIZEN_ID,
    SensitiveKind.CREDIT_CODE: IdentifierKind.CREDIT_CODE,
    SensitiveKind.MOBILE: IdentifierKind.MOBILE,
    SensitiveKind.EMAIL: IdentifierKind.EMAIL,
    SensitiveKind.BANK_CARD: IdentifierKind.BANK_CARD,
    SensitiveKind.LICENCE_PLATE: IdentifierKind.LICENCE_PLATE,
    SensitiveKind.PASSPORT: IdentifierKind.PASSPORT,
}
# A lone decimal is a coordinate only under a 经度/纬度 header; a pair is one by its shape.
_LONE_NUMBER = "lone_number"
_DECIMAL = "[-+]?[0-9]{1,3}[.][0-9]{3,}"  # three decimals (~100 m) or more: a precise position
_PAIR = f"({_DECIMAL})\\s*[,，;；/ ]\\s*({_DECIMAL})"
_SENTENCE = "[。！？!?；;]|[.]$"  # free text, not an address


@dataclass(frozen=True)
class Finding:
    """A column that holds sensitive data, with the level and masking proposed for it.

    ``method`` None means no masking is needed (the policy's ``none``), as for the public credit
    codes of organisations.
    """

    column: str
    kind: SensitiveKind
    share: float  # of the sampled non-null values, the fraction that match ``kind``
    evidence: str
    level: str
    method: MaskMethod | None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Tally:
    """One column's sample: non-null values, and how many each check accepted."""

    values: int
    matches: Mapping[str, int]


@dataclass(frozen=True)
class _Choice:
    kind: SensitiveKind
    share: float
    evidence: str
    pairs: bool  # coordinates written as "lng,lat" text, not one number per column


def discover(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    columns: Sequence[str],
    *,
    sample_rows: int = 2000,
    min_share: float = DEFAULT_MIN_SHARE,
    header_share: float = DEFAULT_HEADER_SHARE,
) -> list[Finding]:
    """The sensitive columns among ``columns`` of ``relation`` (trusted SQL: a table name or a
    reader call), judged on a sample of ``sample_rows`` rows, in column order."""
    tallies = _tally(con, relation, columns, sample_rows)
    choices: dict[str, _Choice] = {}
    for column in columns:
        tally = tallies.get(column)
        if tally is None or tally.values == 0:
            continue
        others = [c for c in columns if c != column]
        choice = _choose(column, tally, others, min_share=min_share, header_share=header_share)
        if choice is not None:
            choices[column] = choice
    subject = _subject(columns, {c.kind for c in choices.values()})
    return [_finding(column, choice, subject) for column, choice in choices.items()]


# The query ---------------------------------------------------------------------------------------


def _checks() -> dict[str, str]:
    """Each check as a BOOLEAN SQL expression over the text value ``v``."""
    checks = {kind.value: sql_check(ident, "v") for kind, ident in _IDENTIFIERS.items()}
    checks[SensitiveKind.PERSON_NAME.value] = _name_sql()
    checks[SensitiveKind.ADDRESS.value] = _address_sql()
    checks[SensitiveKind.COORDINATE.value] = _pair_sql()
    checks[_LONE_NUMBER] = (
        f"(regexp_full_match(v, {literal(_DECIMAL)}) AND abs(TRY_CAST(v AS DOUBLE)) <= 180)"
    )
    return checks


def _name_sql() -> str:
    single, compound = chars("surnames"), "|".join(words("compound_surnames"))
    pattern = f"(?:{compound})\\p{{Han}}{{1,2}}|[{single}]\\p{{Han}}{{1,3}}"
    not_ending = f"[{chars('not_name_endings')}]$"
    return f"(regexp_full_match(v, {literal(pattern)}) AND NOT regexp_matches(v, {literal(not_ending)}))"


def _address_sql() -> str:
    # An administrative unit before a street-level part (贵阳市…路…号), and not a sentence.
    admin = "|".join(words("address_admin_markers"))
    street = "|".join(words("address_street_markers"))
    pattern = f"(?:{admin}).*(?:{street})"
    return (
        f"(length(v) BETWEEN 6 AND 120 AND regexp_matches(v, {literal(pattern)}) "
        f"AND NOT regexp_matches(v, {literal(_SENTENCE)}))"
    )


def _pair_sql() -> str:
    first, second = (
        f"TRY_CAST(regexp_extract(v, {literal(_PAIR)}, {g}) AS DOUBLE)" for g in (1, 2)
    )
    return (
        f"(regexp_full_match(v, {literal(_PAIR)}) AND abs({first}) <= 180 AND abs({second}) <= 180"
        f" AND least(abs({first}), abs({second})) <= 90)"
    )


def _tally(
    con: duckdb.DuckDBPyConnection, relation: str, columns: Sequence[str], sample_rows: int
) -> dict[str, _Tally]:
    """One query: a reservoir sample (rows from the whole relation, not just its head), unpivoted
    so every column runs through the same checks and the SQL does not grow with the columns."""
    if not columns:
        return {}
    aliases = {f"c{i}": column for i, column in enumerate(columns)}
    projected = ", ".join(
        f"nullif(trim(CAST({quote(column)} AS VARCHAR)), '') AS {alias}"
        for alias, column in aliases.items()
    )
    checks = _checks()
    counted = ", ".join(f"count_if({sql}) AS {quote(name)}" for name, sql in checks.items())
    query = (
        f"WITH sample AS (SELECT {projected} FROM {relation} "
        f"USING SAMPLE reservoir({int(sample_rows)} ROWS) REPEATABLE ({SAMPLE_SEED})), "
        f"cells AS (UNPIVOT sample ON {', '.join(aliases)} INTO NAME col VALUE v) "
        f"SELECT col, count(*) AS n, {counted} FROM cells GROUP BY col"
    )
    tallies: dict[str, _Tally] = {}
    for row in con.execute(query).fetchall():
        tallies[aliases[row[0]]] = _Tally(
            int(row[1]), dict(zip(checks, map(int, row[2:]), strict=True))
        )
    return tallies


# Weighing the evidence ---------------------------------------------------------------------------


def _header_score(kind: SensitiveKind, header: str) -> tuple[int, str | None]:
    """+1 (with the word) when the header names ``kind``, -1 when it points away, else 0."""
    if kind == SensitiveKind.COORDINATE:
        wanted = [
            w for k in ("latitude", "longitude", "coordinate") for w in header_words(k).headers
        ]
        hint = header_has(header, tuple(wanted))
        return (1, hint) if hint else (0, None)
    entry = header_words(kind.value)
    if header_has(header, entry.against):
        return -1, None
    hint = header_has(header, entry.headers)
    return (1, hint) if hint else (0, None)


def _votes(headers: Sequence[str]) -> tuple[list[str], list[str]]:
    """The headers saying the table is about people, and those saying organisations; a header
    with an organisation word (法定代表人姓名) counts for the organisation only."""
    person, organisation = [], []
    for header in headers:
        if header_has(header, context_words("organisation")):
            organisation.append(header)
        elif header_has(header, context_words("person")):
            person.append(header)
    return person, organisation


def _neighbour_score(kind: SensitiveKind, neighbours: Sequence[str]) -> tuple[int, str | None]:
    """Only ID numbers and credit codes share a shape; their neighbours say whose they are."""
    if kind not in (SensitiveKind.CITIZEN_ID, SensitiveKind.CREDIT_CODE):
        return 0, None
    person, organisation = _votes(neighbours)
    if len(person) == len(organisation):
        return 0, None
    personal = len(person) > len(organisation)
    lead = person[0] if personal else organisation[0]
    return (1 if personal == (kind == SensitiveKind.CITIZEN_ID) else -1), lead


def _share(tally: _Tally, kind: SensitiveKind, header_hint: str | None) -> float:
    matched = tally.matches[kind.value]
    if kind == SensitiveKind.COORDINATE and header_hint:
        matched += tally.matches[_LONE_NUMBER]
    return matched / tally.values


def _choose(
    column: str,
    tally: _Tally,
    neighbours: Sequence[str],
    *,
    min_share: float,
    header_share: float,
) -> _Choice | None:
    """The kind a column holds, or None: enough matching values, or an explicit header and some;
    among kinds with close shares, the header decides, then the neighbours, then the share."""
    shares: dict[SensitiveKind, float] = {}
    headers: dict[SensitiveKind, tuple[int, str | None]] = {}
    for kind in SensitiveKind:
        headers[kind] = _header_score(kind, column)
        share = _share(tally, kind, headers[kind][1])
        explicit = headers[kind][0] > 0 and share >= header_share
        if share > 0 and (share >= min_share or explicit):
            shares[kind] = share
    if not shares:
        return None
    best = max(shares.values())
    close = [k for k, s in shares.items() if s >= best - CLOSE_SHARE]
    order = list(SensitiveKind)  # on a full tie, the more sensitive reading (ID before credit code)
    near = {k: _neighbour_score(k, neighbours) for k in close}
    kind = max(close, key=lambda k: (headers[k][0], near[k][0], shares[k], -order.index(k)))
    evidence = _evidence(column, kind, shares, headers[kind][1], near)
    pairs = tally.matches[SensitiveKind.COORDINATE.value] > tally.matches[_LONE_NUMBER]
    return _Choice(kind, shares[kind], evidence, pairs)


def _percent(share: float) -> str:
    return f"{math.floor(share * 100 + 1e-9)}%"


def _evidence(
    column: str,
    kind: SensitiveKind,
    shares: Mapping[SensitiveKind, float],
    header_hint: str | None,
    near: Mapping[SensitiveKind, tuple[int, str | None]],
) -> str:
    parts = [f"表头“{column}”"] if header_hint else []
    parts.append(f"抽样 {_percent(shares[kind])} {CHECK_LABELS[kind]}")
    rivals = [k for k in near if k != kind]
    if rivals:
        rival = rivals[0]
        parts.append(f"另有 {_percent(shares[rival])} {CHECK_LABELS[rival]}")
        neighbour = near[kind][1]
        if header_hint:
            parts.append("按表头判定")
        elif neighbour:
            parts.append(f"按邻列“{neighbour}”判定")
    return "；".join(parts)


# Level and masking -------------------------------------------------------------------------------

_PERSON, _ORGANISATION, _UNKNOWN = "person", "organisation", "unknown"

_MASKS: dict[SensitiveKind, tuple[MaskMethod, dict[str, Any]]] = {
    # 430407********0025: the place and birth date hidden, the length kept (DB52/T 1126 抑制).
    SensitiveKind.CITIZEN_ID: (MaskMethod.MASK, {"first": 6, "last": 4}),
    SensitiveKind.MOBILE: (MaskMethod.MASK, {"first": 3, "last": 4}),  # 135****0001
    SensitiveKind.EMAIL: (MaskMethod.MASK, {"first": 1, "keep_from": "@"}),
    SensitiveKind.BANK_CARD: (MaskMethod.MASK, {"last": 4}),
    SensitiveKind.LICENCE_PLATE: (MaskMethod.MASK, {"first": 2}),  # 贵A*****
    SensitiveKind.PASSPORT: (MaskMethod.MASK, {"first": 1, "last": 2}),
    SensitiveKind.PERSON_NAME: (MaskMethod.MASK, {"first": 1}),  # 张**
    SensitiveKind.ADDRESS: (MaskMethod.GENERALISE, {"to": "district"}),
    SensitiveKind.COORDINATE: (MaskMethod.GENERALISE, {"to": "round", "digits": 2}),
}


def _subject(columns: Sequence[str], kinds: set[SensitiveKind]) -> str:
    """Whom the table is about: people when any header or an ID column says so."""
    person, organisation = _votes(columns)
    if person or kinds & {SensitiveKind.CITIZEN_ID, SensitiveKind.PASSPORT}:
        return _PERSON
    if organisation or SensitiveKind.CREDIT_CODE in kinds:
        return _ORGANISATION
    return _UNKNOWN


def _finding(column: str, choice: _Choice, subject: str) -> Finding:
    kind = choice.kind
    public = (
        kind == SensitiveKind.CREDIT_CODE  # organisations' codes are published (公示)
        or (kind == SensitiveKind.ADDRESS and subject == _ORGANISATION)  # registered addresses
        or (kind == SensitiveKind.COORDINATE and subject != _PERSON)  # places, not people
    )
    if public:
        return Finding(column, kind, choice.share, choice.evidence, NOT_SENSITIVE, None, {})
    method, params = _MASKS[kind]
    if kind == SensitiveKind.COORDINATE and choice.pairs:
        # A "lng,lat" text cell cannot be rounded as a number: it is withheld instead.
        method, params = MaskMethod.NULL, {}
    return Finding(column, kind, choice.share, choice.evidence, PRIVATE, method, dict(params))
