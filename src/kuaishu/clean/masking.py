"""Masking operators (STANDARDS.md §3) as DuckDB SQL expressions over a column expression.

Masking runs inside the query engine, vectorised, so every output of a read (query, lookup, each
download format, previews) is masked by the same SELECT. :func:`mask_sql` is the one entry
point; a NULL cell stays NULL under every method. The keyed methods (SM3 hash, pseudonym,
SM4 encryption) call Python functions registered on the connection by
:func:`kuaishu.clean.keyed.register_udfs`. See docs/decisions/0011-masking-in-the-engine.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from kuaishu.clean import keyed
from kuaishu.clean.lexicon import chars, words
from kuaishu.clean.schemas import (
    DateShiftParams,
    GeneraliseParams,
    MaskParams,
    NoiseParams,
    NoParams,
    Parameters,
    RowKeyed,
    ShuffleParams,
    SubstituteParams,
    TruncateParams,
)
from kuaishu.clean.sqltext import literal, number
from kuaishu.collect.raw import quote
from kuaishu.errors import PROBLEM_MESSAGES, AppError
from kuaishu.i18n import gettext_


class MaskMethod(StrEnum):
    """脱敏方法."""

    MASK = "mask"  # 遮盖（保留长度）
    TRUNCATE = "truncate"  # 截断
    GENERALISE = "generalise"  # 泛化
    NULL = "null"  # 置空
    SUBSTITUTE = "substitute"  # 替换
    SHUFFLE = "shuffle"  # 重排
    NOISE = "noise"  # 加噪
    DATE_SHIFT = "date_shift"  # 日期偏移
    HASH = "hash"  # 哈希（SM3）
    PSEUDONYM = "pseudonym"  # 假名化
    ENCRYPT = "encrypt"  # 加密（SM4）

    @property
    def label(self) -> str:
        return METHOD_LABELS[self]


METHOD_LABELS: dict[MaskMethod, str] = {
    MaskMethod.MASK: "遮盖（保留长度）",
    MaskMethod.TRUNCATE: "截断",
    MaskMethod.GENERALISE: "泛化",
    MaskMethod.NULL: "置空",
    MaskMethod.SUBSTITUTE: "替换为常量",
    MaskMethod.SHUFFLE: "列内重排",
    MaskMethod.NOISE: "数值加噪",
    MaskMethod.DATE_SHIFT: "日期偏移",
    MaskMethod.HASH: "哈希（SM3）",
    MaskMethod.PSEUDONYM: "假名化",
    MaskMethod.ENCRYPT: "加密（SM4）",
}


class MaskingError(AppError):
    """A masking method was given parameters it cannot work with."""

    status = 422
    code = "bad_masking_parameters"
    message = "脱敏参数有误：{problem}"


INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "UHUGEINT")  # fmt: skip
NUMERIC_TYPES = (*INTEGER_TYPES, "FLOAT", "REAL", "DOUBLE", "DECIMAL", "NUMERIC")
DATE_TYPES = ("DATE", "TIMESTAMP")
ROW_KEY = "rowid"


@dataclass(frozen=True)
class Column:
    """The column being masked: its SQL expression and DuckDB type."""

    sql: str
    type: str
    # What identifies the row when a rule names no ``row_key``: the caller's stable identity of
    # the row (its stored key), so a row is masked alike in every version and read shape.
    row_key: str = ROW_KEY

    @property
    def base_type(self) -> str:
        return self.type.upper().split("(")[0].strip()

    @property
    def is_integer(self) -> bool:
        return self.base_type in INTEGER_TYPES

    @property
    def is_numeric(self) -> bool:
        return self.base_type in NUMERIC_TYPES

    @property
    def is_date(self) -> bool:
        return self.base_type.startswith(DATE_TYPES)

    @property
    def text(self) -> str:
        return f"CAST({self.sql} AS VARCHAR)"

    def as_number(self) -> str:
        return self.sql if self.is_numeric else f"TRY_CAST({self.sql} AS DOUBLE)"

    def as_date(self) -> str:
        return self.sql if self.is_date else f"TRY_CAST({self.sql} AS DATE)"


def mask_sql(
    method: MaskMethod,
    column_sql: str,
    params: Mapping[str, Any],
    *,
    column_type: str,
    row_key: str | None = None,
) -> str:
    """A SELECT-list expression showing ``column_sql`` masked by ``method`` with ``params``;
    ``row_key`` (SQL built by the caller, never user text) identifies a row for shuffle, noise
    and date shift when the rule names none."""
    column = Column(f"({column_sql})", column_type, row_key or ROW_KEY)
    method = MaskMethod(method)
    return _BUILDERS[method](column, parse_params(method, params))


def output_type(method: MaskMethod, params: Mapping[str, Any], column_type: str) -> str:
    """The DuckDB type of :func:`mask_sql`'s result for a column of ``column_type``."""
    column = Column("x", column_type)
    method = MaskMethod(method)
    if method in (MaskMethod.NULL, MaskMethod.SHUFFLE):
        return column_type
    if method == MaskMethod.NOISE:
        return "BIGINT" if column.is_integer else "DOUBLE"
    if method == MaskMethod.DATE_SHIFT:
        return column_type if column.is_date else "DATE"
    if method == MaskMethod.GENERALISE and params.get("to") == "round":
        return "DOUBLE"
    return "VARCHAR"


# Parameters -------------------------------------------------------------------------------------

PARAMS: dict[MaskMethod, type[Parameters]] = {
    MaskMethod.MASK: MaskParams,
    MaskMethod.TRUNCATE: TruncateParams,
    MaskMethod.GENERALISE: GeneraliseParams,
    MaskMethod.NULL: NoParams,
    MaskMethod.SUBSTITUTE: SubstituteParams,
    MaskMethod.SHUFFLE: ShuffleParams,
    MaskMethod.NOISE: NoiseParams,
    MaskMethod.DATE_SHIFT: DateShiftParams,
    MaskMethod.HASH: NoParams,
    MaskMethod.PSEUDONYM: NoParams,
    MaskMethod.ENCRYPT: NoParams,
}


def parse_params(method: MaskMethod, params: Mapping[str, Any]) -> Parameters:
    """``params`` as ``method``'s typed parameters; a :class:`MaskingError` naming the first
    problem otherwise. Nothing reaches SQL without passing here."""
    try:
        return PARAMS[MaskMethod(method)].model_validate(dict(params))
    except ValidationError as error:
        raise MaskingError(problem=problem_text(error)) from None


def problem_text(error: ValidationError) -> str:
    """The first problem of ``error`` as "参数名：问题" in the reader's language."""
    first = error.errors(include_url=False)[0]
    name = ".".join(str(part) for part in first["loc"]) or str(
        (first.get("ctx") or {}).get("name", "")
    )
    return f"{name}：{gettext_(PROBLEM_MESSAGES.get(first['type'], '取值无效'))}"


def row_key_sql(params: RowKeyed, column: Column | None = None) -> str:
    """What identifies a row: the data item the rule names, as a quoted identifier (never
    pasted); else the caller's stable identity of the row (``column.row_key``, SQL built by the
    caller, never user text); else the row's position."""
    if "row_key" not in params.model_fields_set and column is not None:
        return column.row_key
    return ROW_KEY if params.row_key == ROW_KEY else quote(params.row_key)


def _seed(params: RowKeyed, purpose: str) -> str:
    """A literal seed: the one given, or one derived from the master key (so rows cannot be
    matched back by someone who knows the method but not the key)."""
    if params.seed is None:
        return number(keyed.seed(purpose))
    return literal(params.seed) if isinstance(params.seed, str) else number(params.seed)


def _row_hash(column: Column, params: RowKeyed, purpose: str) -> str:
    """A per-row UBIGINT, stable for a row, different per column and per seed."""
    return f"hash({row_key_sql(params, column)}, {_seed(params, purpose)}, {literal(column.sql)})"


# Suppression ------------------------------------------------------------------------------------


def _keep_length(text: str, first: int, last: int, char: str) -> str:
    n, both = f"length({text})", number(first + last)
    shown = (
        f"left({text}, {number(first)}) || repeat({char}, {n} - {both}) "
        f"|| right({text}, {number(last)})"
    )
    # A value no longer than what would be shown is masked whole, never shown whole.
    return f"(CASE WHEN {n} <= {both} THEN repeat({char}, {n}) ELSE {shown} END)"


def _mask(column: Column, params: MaskParams) -> str:
    first, last = params.first, params.last
    text, char_sql = column.text, literal(params.char)
    if params.keep_from is None:
        return _keep_length(text, first, last, char_sql)
    at = f"strpos({text}, {literal(params.keep_from)})"
    head = _keep_length(f"left({text}, {at} - 1)", first, last, char_sql)
    whole = _keep_length(text, first, last, char_sql)
    return f"(CASE WHEN {at} > 1 THEN {head} || substr({text}, {at}) ELSE {whole} END)"


def _truncate(column: Column, params: TruncateParams) -> str:
    keep = number(params.keep)
    text = column.text
    # A value no longer than the kept prefix would come out whole, so it is masked instead.
    return (
        f"(CASE WHEN length({text}) <= {keep} THEN repeat('*', length({text})) "
        f"ELSE left({text}, {keep}) END)"
    )


def _null(column: Column, _params: NoParams) -> str:
    return f"CAST(NULL AS {column.type})"


def _substitute(column: Column, params: SubstituteParams) -> str:
    return f"(CASE WHEN {column.sql} IS NULL THEN NULL ELSE {literal(params.value)} END)"


# Generalisation ---------------------------------------------------------------------------------


def _generalise(column: Column, params: GeneraliseParams) -> str:
    to = params.to
    if to in ("year", "month"):
        pattern = "%Y" if to == "year" else "%Y-%m"
        return f"strftime({column.as_date()}, '{pattern}')"
    if to == "range":
        return _range(column, params)
    if to == "round":
        return f"round({column.as_number()}, {number(params.digits)})"
    return address_to_district_sql(column.text)


def _range(column: Column, params: GeneraliseParams) -> str:
    """Bucket a number: "20-29" for integers with a whole width, else "[20.5, 30.5)"."""
    assert params.width is not None  # GeneraliseParams requires it for "range"
    width = float(params.width)
    low = f"floor({column.as_number()} / {number(width)}) * {number(width)}"
    if column.is_integer and width.is_integer():
        low_int = f"CAST({low} AS HUGEINT)"
        return f"({low_int} || '-' || ({low_int} + {number(int(width) - 1)}))"
    return f"('[' || {low} || ', ' || ({low} + {number(width)}) || ')')"


def address_patterns() -> tuple[str, str]:
    """Regexes (RE2 and Python alike) cutting an address to its district, else to its city."""
    stop = "0-9" + chars("address_street_chars")
    top = "|".join(words("address_top_units"))
    district = "|".join(words("address_district_units"))
    city = "|".join(words("address_city_units"))
    to_district = f"^(?:[^{stop}]{{0,12}}?(?:{top}))?[^{stop}]{{0,15}}?(?:{district})"
    to_city = f"^[^{stop}]{{0,20}}(?:{city})"
    return to_district, to_city


def address_to_district_sql(text: str) -> str:
    """The address up to its district or county; NULL when neither it nor a city is found."""
    to_district, to_city = address_patterns()
    return (
        f"coalesce(nullif(regexp_extract({text}, {literal(to_district)}, 0), ''), "
        f"nullif(regexp_extract({text}, {literal(to_city)}, 0), ''))"
    )


# Randomisation ----------------------------------------------------------------------------------


def _shuffle(column: Column, params: ShuffleParams) -> str:
    """Each non-NULL value moves to the next row in a keyed pseudo-random order (the last to the
    first): a permutation of the values the window sees, with NULL cells left where they are."""
    row_key = row_key_sql(params, column)
    order = _row_hash(column, params, "mask-shuffle")
    part = f"PARTITION BY {column.sql} IS NULL"
    window = f"({part} ORDER BY {order}, {row_key})"
    return (
        f"(CASE WHEN {column.sql} IS NULL THEN NULL "
        f"WHEN row_number() OVER {window} = count(*) OVER ({part}) "
        f"THEN first_value({column.sql}) OVER {window} "
        f"ELSE lead({column.sql}) OVER {window} END)"
    )


def _noise(column: Column, params: NoiseParams) -> str:
    """value × (1 + p·u), u uniform in [-1, 1] from the row's hash: the same row always gets the
    same noise, so repeating a query and averaging does not remove it."""
    share = params.percent / 100
    uniform = f"(CAST({_row_hash(column, params, 'mask-noise')} % 2000001 AS DOUBLE) / 1000000 - 1)"
    noisy = f"({column.as_number()} * (1 + {number(share)} * {uniform}))"
    return f"CAST(round({noisy}) AS BIGINT)" if column.is_integer else f"CAST({noisy} AS DOUBLE)"


def _date_shift(column: Column, params: DateShiftParams) -> str:
    """Move each date by 1..n days, earlier or later, the same for a row on every read."""
    days = number(params.days)
    pick = f"CAST({_row_hash(column, params, 'mask-date-shift')} % {number(2 * params.days)} AS INTEGER)"
    shift = f"({pick} - {days} + CAST({pick} >= {days} AS INTEGER))"  # never 0
    if column.base_type.startswith("TIMESTAMP"):
        return f"({column.sql} + to_days({shift}))"
    return f"({column.as_date()} + {shift})"


# Cryptographic (Python functions registered on the connection) ----------------------------------


def _udf(name: str) -> Callable[[Column, Any], str]:
    def build(column: Column, _params: NoParams) -> str:
        return f"{name}({column.text})"

    return build


# Each builder takes the parameters PARAMS parses for its method.
_BUILDERS: dict[MaskMethod, Callable[[Column, Any], str]] = {
    MaskMethod.MASK: _mask,
    MaskMethod.TRUNCATE: _truncate,
    MaskMethod.GENERALISE: _generalise,
    MaskMethod.NULL: _null,
    MaskMethod.SUBSTITUTE: _substitute,
    MaskMethod.SHUFFLE: _shuffle,
    MaskMethod.NOISE: _noise,
    MaskMethod.DATE_SHIFT: _date_shift,
    MaskMethod.HASH: _udf(keyed.HASH_FUNCTION),
    MaskMethod.PSEUDONYM: _udf(keyed.PSEUDONYM_FUNCTION),
    MaskMethod.ENCRYPT: _udf(keyed.ENCRYPT_FUNCTION),
}


# Row and column limits (限制返回行数、列数) ---------------------------------------------------------


@dataclass(frozen=True)
class ReleaseLimits:
    """A cap on the rows one read may return and on the columns a channel may see."""

    max_rows: int | None = None
    columns: frozenset[str] | None = None  # None: every column

    def rows(self, requested: int | None) -> int | None:
        """The row limit to apply to a read that asked for ``requested`` (None = all)."""
        if self.max_rows is None:
            return requested
        return self.max_rows if requested is None else min(requested, self.max_rows)

    def allowed(self, names: Sequence[str]) -> list[str]:
        """``names`` without the columns this release may not show, order kept."""
        return [n for n in names if self.columns is None or n in self.columns]
