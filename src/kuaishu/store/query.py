"""The data API's query conventions, turned into a :class:`~kuaishu.store.plan.ReadPlan`.

Filters follow Datasette: ``?列名__运算=值`` (``?地区__in=北京,上海``, ``?人口__gte=1000``); a bare
``?列名=值`` means equality. Every name is checked against the version's columns and every value
converted to the column's type before it is bound, so a mistake is a 422 naming the column.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import orjson

from kuaishu.collect.raw import quote
from kuaishu.errors import AppError, ValidationFailed
from kuaishu.i18n import gettext_
from kuaishu.security.crypto import constant_time_equal, hmac_sm3, keyring
from kuaishu.store.plan import (
    After,
    Column,
    Condition,
    Output,
    ReadPlan,
    Shown,
    SortKey,
)

DEFAULT_LIMIT = 100
# Bounds of offset and limit: past any version's rows, within DuckDB's BIGINT (a larger number
# failed inside the engine as a 500).
ROWS_MAX = 10**15
INTEGER_RANGES = {
    "INTEGER": (-(2**31), 2**31 - 1),
    "BIGINT": (-(2**63), 2**63 - 1),
    "HUGEINT": (-(2**127), 2**127 - 1),
}
MAX_TERMS = 10
OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "isnull", "notnull")
COMPARISONS = {"eq": "=", "ne": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
AGGREGATES = ("count", "sum", "avg", "min", "max")
TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y", "是", ""})
FALSE_WORDS = frozenset({"0", "false", "f", "no", "n", "否"})
TYPE_WORDS = {
    "DOUBLE": "数值",
    "BIGINT": "整数",
    "DECIMAL": "金额",
    "DATE": "日期（YYYY-MM-DD）",
    "TIMESTAMP": "日期时间（YYYY-MM-DDTHH:MM:SS）",
    "BOOLEAN": "是/否值（true/false）",
}


class Total(StrEnum):
    """How the total is counted: exactly, cheaply (exact when that is cheap), or not at all."""

    EXACT = "exact"
    ESTIMATE = "estimate"
    NONE = "none"


@dataclass(frozen=True)
class ReadRequest:
    """A read as the caller asked for it, before it is checked against a version's columns."""

    filters: tuple[tuple[str, str], ...] = ()  # (parameter, value), e.g. ("人口__gte", "10")
    q: str = ""
    fields: tuple[str, ...] = ()
    sort: tuple[str, ...] = ()
    limit: int | None = None
    offset: int = 0
    cursor: str | None = None
    total: Total = Total.ESTIMATE
    distinct: bool = False
    group_by: tuple[str, ...] = ()
    aggregates: tuple[str, ...] = ()

    @property
    def grouped(self) -> bool:
        return bool(self.group_by or self.aggregates)

    def described(self) -> dict[str, Any]:
        """What the audit trail keeps of this read: the parts that were given."""
        facts: dict[str, Any] = {
            "filters": [list(f) for f in self.filters],
            "q": self.q,
            "fields": list(self.fields),
            "sort": list(self.sort),
            "group_by": list(self.group_by),
            "agg": list(self.aggregates),
            "distinct": self.distinct,
            "offset": self.offset,
            "limit": self.limit,
            "cursor": self.cursor is not None,
        }
        return {k: v for k, v in facts.items() if v}


def names(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``a,b`` or repeated parameters → ("a", "b")."""
    if value is None:
        return ()
    parts = [value] if isinstance(value, str) else list(value)
    return tuple(n.strip() for part in parts for n in part.split(",") if n.strip())


def invalid(message: str, code: str, **params: Any) -> ValidationFailed:
    details = {k: v for k, v in params.items() if isinstance(v, str | int | list)}
    return ValidationFailed(message, code=code, details=details, **params)


# Cursors ---------------------------------------------------------------------------------------

CURSOR_KEY = "page-cursor"  # the master key's purpose for cursor signatures


@dataclass(frozen=True)
class PageCursor:
    """Where the next page starts, and for which version and sort it was made. ``signed`` and
    ``signature`` are what :func:`check_cursor` verifies against the reader's binding."""

    version: int
    sort: tuple[str, ...]
    after: After
    signed: bytes = b""
    signature: bytes = b""


@dataclass(frozen=True)
class CursorBinding:
    """What a cursor is good for: one reader, through one grant or channel, one query."""

    reader: int | None  # the user
    scope: str  # "grant 12", or the owner's entry code and channel
    request: ReadRequest

    def message(self, signed: bytes) -> bytes:
        r = self.request
        query = {
            "filters": sorted([list(f) for f in r.filters]),
            "q": r.q,
            "fields": list(r.fields),
            "sort": list(r.sort),
            "distinct": r.distinct,
            "group_by": list(r.group_by),
            "agg": list(r.aggregates),
        }
        bound = orjson.dumps([self.reader, self.scope, query], option=orjson.OPT_SORT_KEYS)
        return bound + b"\x00" + signed


def _cursor_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError


def _mac(message: bytes) -> bytes:
    return hmac_sm3(keyring().key(CURSOR_KEY, 32), message)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(
    version: int, sort: Sequence[str], hidden: Sequence[Any], *, binding: CursorBinding
) -> str:
    """The token for the page after a row whose sort values and rowid are ``hidden``, signed
    (HMAC-SM3) for ``binding``: good for that reader, grant or channel, and query only."""
    raw = orjson.dumps([version, list(sort), list(hidden[:-1]), hidden[-1]], default=_cursor_value)
    return f"{_b64(raw)}.{_b64(_mac(binding.message(raw)))}"


def bad_cursor() -> AppError:
    return AppError("游标无效，请从第一页重新查询。", code="bad_cursor", status=400)


def decode_cursor(token: str) -> PageCursor:
    """The cursor ``token`` says, not yet verified (see :func:`check_cursor`)."""
    try:
        body, _, signature = token.partition(".")
        raw = _unb64(body)
        version, sort, values, rowid = orjson.loads(raw)
        if not (
            isinstance(version, int)
            and isinstance(rowid, int)
            and isinstance(values, list)
            and isinstance(sort, list)
        ):
            raise ValueError(token)
        return PageCursor(
            version=version,
            sort=tuple(str(s) for s in sort),
            after=After(values=tuple(values), rowid=rowid),
            signed=raw,
            signature=_unb64(signature),
        )
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise bad_cursor() from None


def check_cursor(cursor: PageCursor, binding: CursorBinding) -> None:
    """A 400 unless this server signed ``cursor`` for this reader, grant or channel and query:
    a forged, altered or borrowed cursor reads nothing (not another version, not another row)."""
    if not constant_time_equal(_mac(binding.message(cursor.signed)), cursor.signature):
        raise AppError(
            "游标无效，或不属于本次查询（读者、授权或查询条件不同），请从第一页重新查询。",
            code="bad_cursor",
            status=400,
        )


# Values ----------------------------------------------------------------------------------------


def _type_word(column: Column) -> str:
    return TYPE_WORDS.get(column.type.split("(")[0], column.type)


def coerce(column: Column, raw: str) -> Any:
    """``raw`` as a value of ``column``'s type; a 422 naming the column when it is not one."""
    kind = column.type.split("(")[0]
    text = raw.strip()
    try:
        if column.is_text:
            return raw
        if kind == "BOOLEAN":
            word = text.lower()
            if word in TRUE_WORDS - {""} or word in FALSE_WORDS:
                return word in TRUE_WORDS
            raise ValueError(raw)
        if kind == "DATE":
            return date.fromisoformat(text)
        if kind == "TIMESTAMP":
            return datetime.fromisoformat(text)
        if kind == "DECIMAL":
            number = Decimal(text)
            if not number.is_finite():
                raise ValueError(raw)
            return number
        if kind in INTEGER_RANGES:
            low, high = INTEGER_RANGES[kind]
            whole = int(text)
            if not low <= whole <= high:  # past the column's range
                raise ValueError(raw)
            return whole
        return float(text)
    except (ValueError, InvalidOperation):
        raise invalid(
            "字段“{column}”的值“{value}”不是有效的{kind}。",
            "bad_value",
            column=column.name,
            value=raw[:100],
            kind=gettext_(_type_word(column)),
        ) from None


def _listed(column: Column, raw: str) -> list[Any]:
    """The values of ``__in``: a JSON array, or comma-separated."""
    if raw.lstrip().startswith("["):
        try:
            items = orjson.loads(raw)
        except orjson.JSONDecodeError:
            items = None
        if not isinstance(items, list):
            raise invalid("in 的值不是有效的 JSON 数组。", "bad_value", column=column.name)
        texts = [str(i) for i in items]
    else:
        texts = [part for part in raw.split(",") if part.strip()]
    if not texts:
        raise invalid("in 至少需要一个值。", "bad_value", column=column.name)
    return [coerce(column, t.strip() if not column.is_text else t) for t in texts]


# Building the plan -----------------------------------------------------------------------------


class PlanBuilder:
    """Checks a :class:`ReadRequest` against a version's columns and makes its plan."""

    def __init__(
        self,
        columns: Sequence[Column],
        *,
        masks: Mapping[str, Shown] | None = None,
        row_key: str | None = None,
    ) -> None:
        self.columns = list(columns)
        self.by_name = {c.name: c for c in columns}
        self.masks = dict(masks or {})
        self.row_key = row_key  # SQL identifying a stored row, for masks drawn per row

    def column(self, name: str, parameter: str | None = None) -> Column:
        found = self.by_name.get(name)
        if found is None:
            raise invalid(
                "没有名为“{name}”的字段。",
                "unknown_column",
                name=name,
                parameter=parameter or name,
                columns=list(self.by_name),
            )
        return found

    def unmasked(self, name: str, parameter: str) -> Column:
        """A column a filter, sort or statistic may use: a masked one would answer questions
        about the values it hides (筛选 身份证号=… reveals who is in the data)."""
        column = self.column(name, parameter)
        if column.name in self.masks:
            raise invalid(
                "“{name}”已脱敏，不能用于筛选、排序、分组或统计。",
                "masked_column",
                name=column.name,
                parameter=parameter,
            )
        return column

    def output(self, column: Column) -> Output:
        mask = self.masks.get(column.name)
        if mask is None:
            return Output(
                name=column.name,
                sql=column.ref,
                type=column.type,
                item_type=column.item_type,
                text=column.is_text,
            )
        shown = mask.type(column.type)
        return Output(
            name=column.name,
            sql=mask.sql(column.ref, column.type, self.row_key),
            type=shown,
            item_type=column.item_type,
            text=shown == "VARCHAR",
            windowed=mask.windowed,
        )

    def build(
        self,
        request: ReadRequest,
        *,
        limit_max: int | None,
        cursor: PageCursor | None = None,
    ) -> ReadPlan:
        """The plan of ``request``; ``limit_max`` None means no page limit (downloads)."""
        where = tuple(self.filter(p, v) for p, v in request.filters)
        where += self.search(request.q)
        if request.grouped:
            outputs, group_by = self.grouping(request)
        else:
            chosen = [self.column(n, "fields") for n in request.fields] or self.columns
            outputs, group_by = tuple(self.output(c) for c in chosen), ()
        base = ReadPlan(
            outputs=outputs,
            where=where,
            group_by=group_by,
            aggregated=request.grouped,
            distinct=request.distinct and not request.grouped,
        )
        if request.offset > ROWS_MAX:
            raise invalid(
                "offset 过大（最大 {n}）。", "offset_too_large", n=ROWS_MAX, field="offset"
            )
        if request.offset < 0:
            raise invalid(
                "offset 应为 0 到 {n} 之间的整数。", "bad_offset", n=ROWS_MAX, field="offset"
            )
        plan = replace(
            base,
            order=self.order(request, base),
            limit=self.limit(request.limit, limit_max),
            offset=request.offset,
        )
        return self.continued(plan, request, cursor)

    def limit(self, asked: int | None, limit_max: int | None) -> int | None:
        if asked is not None and asked > ROWS_MAX:
            raise invalid("每页最多 {n} 行。", "limit_too_large", n=limit_max or ROWS_MAX)
        if asked is not None and asked < 1:
            raise invalid(
                "limit 应为 1 到 {n} 之间的整数。", "bad_limit", n=ROWS_MAX, field="limit"
            )
        if limit_max is None:
            return asked
        if asked is not None and asked > limit_max:
            raise invalid("每页最多 {n} 行。", "limit_too_large", n=limit_max, field="limit")
        return asked or min(DEFAULT_LIMIT, limit_max)

    def equal(self, name: str, raw: str) -> Condition:
        column = self.column(name)
        return Condition(f"{column.ref} = ?", (coerce(column, raw),))

    def filter(self, parameter: str, raw: str) -> Condition:
        name, op = parameter, "eq"
        if "__" in parameter:
            head, tail = parameter.rsplit("__", 1)
            if tail in OPERATORS:
                name, op = head, tail
            elif head in self.by_name and parameter not in self.by_name:
                raise invalid(
                    "不支持的筛选运算“{op}”；可用：{ops}。",
                    "bad_operator",
                    op=tail,
                    ops=", ".join(OPERATORS),
                    parameter=parameter,
                )
        column = self.unmasked(name, parameter)
        ref = column.ref
        if op in COMPARISONS:
            return Condition(f"{ref} {COMPARISONS[op]} ?", (coerce(column, raw),))
        if op == "in":
            values = _listed(column, raw)
            return Condition(f"{ref} IN ({', '.join('?' * len(values))})", tuple(values))
        if op == "contains":
            return Condition(f"contains(lower(CAST({ref} AS VARCHAR)), ?)", (raw.lower(),))
        word = raw.strip().lower()
        if word not in TRUE_WORDS and word not in FALSE_WORDS:
            raise invalid(
                "“{parameter}”的值应为 1（是）或 0（否）。", "bad_value", parameter=parameter
            )
        wants_null = (op == "isnull") == (word in TRUE_WORDS)
        return Condition(f"{ref} IS {'' if wants_null else 'NOT '}NULL")

    def search(self, q: str) -> tuple[Condition, ...]:
        """Every word of ``q`` appears in some text column (case-insensitive)."""
        terms = q.lower().split()[:MAX_TERMS]
        texts = [c for c in self.columns if c.is_text and c.name not in self.masks]
        if not terms:
            return ()
        if not texts:
            return (Condition("FALSE"),)
        any_column = " OR ".join(f"contains(lower({c.ref}), ?)" for c in texts)
        return tuple(Condition(any_column, (term,) * len(texts)) for term in terms)

    def grouping(self, request: ReadRequest) -> tuple[tuple[Output, ...], tuple[str, ...]]:
        if request.fields:
            raise invalid("fields 不能与 group_by 或 agg 同用。", "fields_with_group")
        groups = [self.unmasked(n, "group_by") for n in request.group_by]
        outputs = [self.output(c) for c in groups]
        for spec in request.aggregates or ("count",):
            outputs.append(self.aggregate(spec))
        return tuple(outputs), tuple(c.ref for c in groups)

    def aggregate(self, spec: str) -> Output:
        """``count``, ``count:列``, ``sum:列``, ``avg:列``, ``min:列``, ``max:列``."""
        func, _, name = spec.partition(":")
        func = func.strip().lower()
        if func not in AGGREGATES or (func != "count" and not name):
            raise invalid(
                "不支持的统计“{agg}”；可用：count、count:字段、sum:字段、avg:字段、min:字段、max:字段。",
                "bad_aggregate",
                agg=spec,
            )
        if not name:
            return Output(name="count", sql="count(*)", type="BIGINT")
        column = self.unmasked(name.strip(), "agg")
        label = f"{func}({column.name})"
        if func == "count":
            return Output(name=label, sql=f"count({column.ref})", type="BIGINT")
        if func in ("sum", "avg") and not column.is_numeric:
            raise invalid(
                "“{name}”不是数值字段，不能做 {func} 统计。",
                "bad_aggregate",
                name=column.name,
                func=func,
            )
        sql = f"{func}({column.ref})"
        kind = column.type
        if func == "avg":
            kind = "DOUBLE"
        elif func == "sum" and not kind.startswith("DECIMAL"):
            # The sum of integers is a HUGEINT, which JSON encoders refuse; of doubles a DOUBLE.
            kind = "DOUBLE" if kind in ("DOUBLE", "FLOAT") else "BIGINT"
            sql = f"TRY_CAST({sql} AS {kind})"
        return Output(name=label, sql=sql, type=kind, text=column.is_text and func != "count")

    def order(self, request: ReadRequest, plan: ReadPlan) -> tuple[SortKey, ...]:
        keys: list[SortKey] = []
        outputs = {o.name: o for o in plan.outputs}
        for spec in request.sort:
            descending = spec.startswith("-")
            name = spec[1:] if descending else spec
            if plan.keyed:
                column = self.unmasked(name, "sort")
                keys.append(SortKey(name, column.ref, column.type, descending))
            elif name in outputs:
                keys.append(SortKey(name, quote(name), outputs[name].type, descending))
            else:
                raise invalid(
                    "分组或去重查询只能按输出的字段排序：“{name}”。", "bad_sort", name=name
                )
        if not plan.keyed:
            # Groups and distinct rows come back in a stable order, ties broken by what is shown
            # — never by the stored rows' order, which a masked column's raw values could set.
            named = {k.name for k in keys}
            keys += [
                SortKey(o.name, quote(o.name), o.type) for o in plan.outputs if o.name not in named
            ]
        return tuple(keys)

    def continued(
        self, plan: ReadPlan, request: ReadRequest, cursor: PageCursor | None
    ) -> ReadPlan:
        if cursor is None:
            return plan
        if not plan.keyed or request.offset:
            raise invalid(
                "游标分页不能与 offset、distinct、group_by 或 agg 同用。", "cursor_not_supported"
            )
        if cursor.sort != tuple(request.sort) or len(cursor.after.values) != len(plan.order):
            raise AppError(
                "游标与本次查询的排序不一致，请从第一页重新查询。", code="bad_cursor", status=400
            )
        if not _typed_like(plan.order, cursor.after):
            raise AppError("游标无效，请从第一页重新查询。", code="bad_cursor", status=400)
        return replace(plan, after=cursor.after)


def _typed_like(order: Sequence[SortKey], after: After) -> bool:
    """Whether a cursor's values are of their sort columns' types (as :func:`encode_cursor`
    writes them), so a wrongly typed value is a bad cursor, not an engine error."""
    low, high = INTEGER_RANGES["BIGINT"]
    if isinstance(after.rowid, bool) or not low <= after.rowid <= high:
        return False
    for key, value in zip(order, after.values, strict=True):
        kind = key.type.split("(")[0]
        if value is None or kind not in _CURSOR_TYPES:
            continue
        if isinstance(value, bool) != (kind == "BOOLEAN") or not _CURSOR_TYPES[kind](value):
            return False
    return True


def _iso(parse: Any) -> Any:
    def check(value: Any) -> bool:
        try:
            parse(value)
        except (TypeError, ValueError):
            return False
        return True

    return check


def _decimal(value: Any) -> bool:
    try:
        return isinstance(value, str | int | float) and Decimal(str(value)).is_finite()
    except InvalidOperation:
        return False


_CURSOR_TYPES: dict[str, Any] = {
    "VARCHAR": lambda v: isinstance(v, str),
    "BOOLEAN": lambda v: isinstance(v, bool),
    "DOUBLE": lambda v: isinstance(v, int | float),
    "FLOAT": lambda v: isinstance(v, int | float),
    **{
        kind: (lambda v, r=r: isinstance(v, int) and r[0] <= v <= r[1])
        for kind, r in INTEGER_RANGES.items()
    },
    "DECIMAL": _decimal,
    "DATE": _iso(date.fromisoformat),
    "TIMESTAMP": _iso(datetime.fromisoformat),
}
