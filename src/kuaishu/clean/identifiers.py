"""Identifier checks (STANDARDS.md §2) in Python and as DuckDB SQL that gives the same answer.

Each kind is an ordered list of steps; a value fails at its first failing step, which names the
reason. The SQL form evaluates the same steps in a CASE, so a load can count invalid values per
column and per reason inside the engine, without a Python call per row. Values are checked as
given (cleaning normalises whitespace and full-width characters before); only the separators a
kind is commonly written with (phone, licence plate) are dropped first.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberType
from stdnum import luhn
from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError

from kuaishu.clean.lexicon import chars
from kuaishu.clean.sqltext import literal


class IdentifierKind(StrEnum):
    CITIZEN_ID = "citizen_id"  # 居民身份证号码 (GB 11643)
    CREDIT_CODE = "credit_code"  # 统一社会信用代码 (GB 32100)
    MOBILE = "mobile"  # 手机号码
    EMAIL = "email"  # 电子邮箱
    BANK_CARD = "bank_card"  # 银行卡号
    POSTAL_CODE = "postal_code"  # 邮政编码
    LICENCE_PLATE = "licence_plate"  # 机动车号牌
    PASSPORT = "passport"  # 护照号码


class Reason(StrEnum):
    """Why a value is not a valid identifier."""

    LENGTH = "length"
    FORMAT = "format"
    CHECKSUM = "checksum"
    BIRTH_DATE = "birth_date"
    RANGE = "range"  # a mobile number in a range no operator was given


KIND_LABELS: dict[IdentifierKind, str] = {
    IdentifierKind.CITIZEN_ID: "公民身份号码",
    IdentifierKind.CREDIT_CODE: "统一社会信用代码",
    IdentifierKind.MOBILE: "手机号码",
    IdentifierKind.EMAIL: "电子邮箱",
    IdentifierKind.BANK_CARD: "银行卡号",
    IdentifierKind.POSTAL_CODE: "邮政编码",
    IdentifierKind.LICENCE_PLATE: "机动车号牌",
    IdentifierKind.PASSPORT: "护照号码",
}
REASON_LABELS: dict[Reason, str] = {
    Reason.LENGTH: "长度不对",
    Reason.FORMAT: "格式不对",
    Reason.CHECKSUM: "校验码不对",
    Reason.BIRTH_DATE: "出生日期不可能",
    Reason.RANGE: "号段不存在",
}

# GB 11643 weights and check characters; GB 32100 alphabet and weights (STANDARDS.md §2).
RIC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
RIC_CHECK = "10X98765432"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
EARLIEST_BIRTH = dt.date(1900, 1, 1)

# Patterns shared verbatim by Python's re (fullmatch) and DuckDB's RE2 (regexp_full_match);
# character classes are spelled out because Python's \d also matches non-ASCII digits.
RIC_FORMAT = "[0-9]{17}[0-9Xx]"
USCC_FORMAT = "[0-9]{8}[0-9A-HJ-NP-RTUW-Y]{10}"
EMAIL_FORMAT = (
    "[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    "(?:[.][A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*[.][A-Za-z]{2,}"
)
PASSPORT_FORMAT = "E[0-9]{8}|E[A-HJ-NP-Z][0-9]{7}|G[0-9]{8}|[DPS]E?[0-9]{7}|S[0-9]{8}"
MOBILE_PREFIX = "(?:[+]86|0086|86)1[0-9]{10}"


# The CN mobile ranges as phonenumbers knows them, so SQL and Python follow the same metadata.
def _mobile_ranges() -> str:
    metadata = PhoneMetadata.metadata_for_region("CN")
    if metadata is None or metadata.mobile is None or not metadata.mobile.national_number_pattern:
        raise RuntimeError("phonenumbers has no CN mobile metadata")
    return "(?:" + metadata.mobile.national_number_pattern + ")"


MOBILE_RANGES = _mobile_ranges()


def _plate_format() -> str:
    province, specials, letter = chars("plate_provinces"), chars("plate_specials"), "A-HJ-NP-Z"
    ordinary = f"[{province}][{letter}][{letter}0-9]{{4}}[{letter}0-9{specials}]"
    new_energy = f"[{province}][{letter}](?:[DF][{letter}0-9][0-9]{{4}}|[0-9]{{5}}[DF])"
    return f"{ordinary}|{new_energy}"


PLATE_FORMAT = _plate_format()
PLATE_SEPARATORS = "[·\\- ]"


@dataclass(frozen=True)
class Step:
    """One test a value must pass: ``fails`` in Python, ``sql`` (a BOOLEAN, true = fails)."""

    reason: Reason
    fails: Callable[[str], bool]
    sql: Callable[[str], str]


def _length_not(*allowed: int) -> Step:
    options = ", ".join(map(str, allowed))
    return Step(
        Reason.LENGTH, lambda v: len(v) not in allowed, lambda c: f"length({c}) NOT IN ({options})"
    )


def _pattern(pattern: str, reason: Reason = Reason.FORMAT) -> Step:
    compiled = re.compile(pattern)
    return Step(
        reason,
        lambda v: compiled.fullmatch(v) is None,
        lambda c: f"NOT regexp_full_match({c}, {literal(pattern)})",
    )


def _digit(number: str, place: int) -> str:
    """The decimal digit at ``place`` (0 = units) of an integer expression."""
    return f"(({number} // {10**place}) % 10)"


def _ric_checksum_sql(c: str) -> str:
    # Digits by integer arithmetic on one cast: 3x faster in DuckDB than 17 substr() calls.
    number = f"try_cast(substr({c}, 1, 17) AS BIGINT)"
    total = " + ".join(f"{_digit(number, 17 - i)} * {w}" for i, w in enumerate(RIC_WEIGHTS, 1))
    return f"substr('{RIC_CHECK}', ({total}) % 11 + 1, 1) <> upper(substr({c}, 18, 1))"


def _ric_birth_fails(value: str) -> bool:
    try:
        born = ric.get_birth_date(value)
    except ValidationError:
        return True
    return not EARLIEST_BIRTH <= born <= dt.date.today()


def _ric_birth_sql(c: str) -> str:
    born = f"CAST(try_strptime(substr({c}, 7, 8), '%Y%m%d') AS DATE)"
    return f"coalesce(NOT {born} BETWEEN DATE '{EARLIEST_BIRTH}' AND current_date, true)"


def _uscc_checksum_sql(c: str) -> str:
    total = " + ".join(
        f"(strpos('{USCC_ALPHABET}', substr({c}, {i}, 1)) - 1) * {w}"
        for i, w in enumerate(USCC_WEIGHTS, 1)
    )
    return f"substr('{USCC_ALPHABET}', (31 - ({total}) % 31) % 31 + 1, 1) <> substr({c}, 18, 1)"


def _luhn_sql(c: str) -> str:
    # 19 digits fit an unsigned 64-bit integer; every other digit from the right is doubled and
    # its digits summed: 2d - 9 when d >= 5, written (d + 5) // 10 to stay in integer arithmetic.
    number = f"try_cast({c} AS UBIGINT)"
    terms = []
    for place in range(19):
        digit = _digit(number, place)
        terms.append(digit if place % 2 == 0 else f"(2 * {digit} - 9 * (({digit} + 5) // 10))")
    return f"({' + '.join(terms)}) % 10 <> 0"


def _mobile_in_range(national: str) -> bool:
    number = phonenumbers.parse(national, "CN")
    return phonenumbers.is_valid_number(number) and phonenumbers.number_type(number) in (
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def _mobile_norm(value: str) -> str:
    compact = re.sub("[ -]", "", value)
    return compact[-11:] if re.fullmatch(MOBILE_PREFIX, compact) else compact


def _mobile_norm_sql(c: str) -> str:
    compact = f"regexp_replace({c}, '[ -]', '', 'g')"
    prefixed = f"regexp_full_match({compact}, {literal(MOBILE_PREFIX)})"
    return f"(CASE WHEN {prefixed} THEN right({compact}, 11) ELSE {compact} END)"


def _plate_norm(value: str) -> str:
    return re.sub(PLATE_SEPARATORS, "", value)


def _plate_norm_sql(c: str) -> str:
    return f"regexp_replace({c}, {literal(PLATE_SEPARATORS)}, '', 'g')"


def _identity(value: str) -> str:
    return value


def _identity_sql(c: str) -> str:
    return c


@dataclass(frozen=True)
class Validator:
    """The checks of one identifier kind, in Python and in SQL."""

    kind: IdentifierKind
    steps: tuple[Step, ...]
    norm: Callable[[str], str] = _identity
    norm_sql: Callable[[str], str] = _identity_sql

    def check(self, value: str) -> Reason | None:
        """The reason ``value`` is invalid, or None when it is valid."""
        normal = self.norm(value)
        for step in self.steps:
            if step.fails(normal):
                return step.reason
        return None

    def is_valid(self, value: str) -> bool:
        return self.check(value) is None

    def sql_reason(self, column_sql: str) -> str:
        """A VARCHAR expression: the reason code, or NULL when the value is valid or NULL."""
        normal = self.norm_sql(f"CAST({column_sql} AS VARCHAR)")
        whens = " ".join(f"WHEN {s.sql(normal)} THEN '{s.reason.value}'" for s in self.steps)
        return f"(CASE WHEN ({column_sql}) IS NULL THEN NULL {whens} ELSE NULL END)"

    def sql_check(self, column_sql: str) -> str:
        """A BOOLEAN expression: true when valid, false when not, NULL for NULL."""
        reason = self.sql_reason(column_sql)
        return f"(CASE WHEN ({column_sql}) IS NULL THEN NULL ELSE {reason} IS NULL END)"


VALIDATORS: dict[IdentifierKind, Validator] = {
    IdentifierKind.CITIZEN_ID: Validator(
        IdentifierKind.CITIZEN_ID,
        (
            _length_not(18),
            _pattern(RIC_FORMAT),
            Step(
                Reason.CHECKSUM,
                lambda v: v[-1].upper() != ric.calc_check_digit(v),
                _ric_checksum_sql,
            ),
            Step(Reason.BIRTH_DATE, _ric_birth_fails, _ric_birth_sql),
        ),
    ),
    IdentifierKind.CREDIT_CODE: Validator(
        IdentifierKind.CREDIT_CODE,
        (
            _length_not(18),
            _pattern(USCC_FORMAT),
            Step(Reason.CHECKSUM, lambda v: v[-1] != uscc.calc_check_digit(v), _uscc_checksum_sql),
        ),
    ),
    IdentifierKind.MOBILE: Validator(
        IdentifierKind.MOBILE,
        (
            _pattern("[0-9]+"),
            _length_not(11),
            Step(
                Reason.RANGE,
                lambda v: not _mobile_in_range(v),
                lambda c: f"NOT regexp_full_match({c}, {literal(MOBILE_RANGES)})",
            ),
        ),
        _mobile_norm,
        _mobile_norm_sql,
    ),
    IdentifierKind.EMAIL: Validator(
        IdentifierKind.EMAIL,
        (
            Step(Reason.LENGTH, lambda v: len(v) > 254, lambda c: f"length({c}) > 254"),
            _pattern(EMAIL_FORMAT),
        ),
    ),
    IdentifierKind.BANK_CARD: Validator(
        IdentifierKind.BANK_CARD,
        (
            _length_not(16, 17, 18, 19),
            _pattern("[0-9]+"),
            Step(Reason.CHECKSUM, lambda v: not luhn.is_valid(v), _luhn_sql),
        ),
    ),
    IdentifierKind.POSTAL_CODE: Validator(
        IdentifierKind.POSTAL_CODE, (_length_not(6), _pattern("[0-9]{6}"))
    ),
    IdentifierKind.LICENCE_PLATE: Validator(
        IdentifierKind.LICENCE_PLATE,
        (_length_not(7, 8), _pattern(PLATE_FORMAT)),
        _plate_norm,
        _plate_norm_sql,
    ),
    IdentifierKind.PASSPORT: Validator(
        IdentifierKind.PASSPORT, (_length_not(8, 9), _pattern(PASSPORT_FORMAT))
    ),
}


def check(kind: IdentifierKind, value: str) -> Reason | None:
    """Why ``value`` is not a valid ``kind``, or None when it is."""
    return VALIDATORS[kind].check(value)


def is_valid(kind: IdentifierKind, value: str) -> bool:
    return VALIDATORS[kind].is_valid(value)


def sql_check(kind: IdentifierKind, column_sql: str) -> str:
    """A DuckDB BOOLEAN expression agreeing with :func:`is_valid` (NULL for NULL values)."""
    return VALIDATORS[kind].sql_check(column_sql)


def sql_reason(kind: IdentifierKind, column_sql: str) -> str:
    """A DuckDB VARCHAR expression agreeing with :func:`check` (a :class:`Reason` code or NULL)."""
    return VALIDATORS[kind].sql_reason(column_sql)


def invalid_counts_sql(kind: IdentifierKind, column_sql: str, relation_sql: str) -> str:
    """One query counting a column's values by reason: rows of (reason, count), valid ones as NULL."""
    reason = sql_reason(kind, column_sql)
    return (
        f"SELECT {reason} AS reason, count(*) AS n FROM {relation_sql} "
        f"WHERE ({column_sql}) IS NOT NULL GROUP BY ALL"
    )
