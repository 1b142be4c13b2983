"""The one read plan: every query, lookup and download of a served version is a :class:`ReadPlan`
rendered to one SELECT, so what a column shows is decided in one place for every output.

An output is the stored column, or — in a masked channel — the column's :class:`Shown` masking
expression, so every format of every read shows the same masked value. Filters, sort keys and the
paging cursor work on the stored values of unmasked columns only (a masked one is refused by the
plan builder) and take every user value as a bound parameter; identifiers are always quoted.

A mask computed over other rows (the shuffle) is computed over the reader's whole view — the
version within the reader's row scope — before any filter, window or key of the read applies, so a
lookup, a filtered page and a download show a row alike (docs/decisions/0015-one-read-path.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from kuaishu.collect.raw import quote

TABLE = "data"
ROWID = f"{TABLE}.rowid"
ROW_ALIAS = '"__ks_rowid"'  # the rowid under a name no output can take (outputs are item names)
NUMERIC_TYPES = ("DOUBLE", "BIGINT", "INTEGER", "HUGEINT", "FLOAT", "DECIMAL")
# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
FORMULA_STARTS = "('=', '+', '-', '@', chr(9), chr(13))"
FORMULA_CHARS = ("=", "+", "-", "@", "\t", "\r")  # the same, for text written in Python


@dataclass(frozen=True)
class Column:
    """A stored column of a version, as ``DatasetVersion.schema`` describes it."""

    name: str
    type: str  # the DuckDB type
    item_type: str | None = None  # the data item's type code (C, N, D, …)
    key: bool = False

    @property
    def ref(self) -> str:
        """Qualified, so a stored column never resolves to an output alias of the same name."""
        return f"{TABLE}.{quote(self.name)}"

    @property
    def is_text(self) -> bool:
        return self.type == "VARCHAR"

    @property
    def is_numeric(self) -> bool:
        return self.type.startswith(NUMERIC_TYPES)


def row_key_sql(columns: Sequence[Column]) -> str:
    """What identifies a stored row in every version: its key columns, or — without keys — all
    its values. Masks drawn per row (noise, date shift, shuffle order) hash this, never the
    rowid, so a row unchanged between versions shows the same masked value in both, and the
    change feed (which reads only the changed rows) shows what a query shows."""
    keys = [c for c in columns if c.key] or list(columns)
    return f"row({', '.join(c.ref for c in keys)})"


def columns_of(schema: Sequence[dict[str, Any]]) -> list[Column]:
    return [
        Column(
            name=str(c["name"]),
            type=str(c["type"]),
            item_type=c.get("item_type"),
            key=bool(c.get("key")),
        )
        for c in schema
    ]


class Shown(Protocol):
    """How a masked column shows: an expression over the stored value, and its type."""

    def sql(self, column_sql: str, column_type: str, row_key: str | None = None) -> str:
        """``row_key``: SQL identifying a row (its stored key) for masks drawn per row."""
        ...

    def type(self, column_type: str) -> str: ...

    @property
    def windowed(self) -> bool:
        """The expression is a window over other rows (so rows have no order of their own)."""
        ...


@dataclass(frozen=True)
class Output:
    """One output column: its name, the expression computing it, what it is."""

    name: str
    sql: str
    type: str
    item_type: str | None = None
    text: bool = False  # text cells get formula neutralisation in spreadsheet formats
    windowed: bool = False  # computed over other rows (the shuffle mask)

    @property
    def field(self) -> dict[str, Any]:
        """How a response describes this column to the reader."""
        return {"name": self.name, "type": self.type, "item_type": self.item_type}


@dataclass(frozen=True)
class Condition:
    sql: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True)
class SortKey:
    """An ORDER BY term; ``sql`` is a stored column (rows) or an output alias (groups)."""

    name: str
    sql: str
    type: str
    descending: bool = False


@dataclass(frozen=True)
class After:
    """Where a keyset page starts: the sort values and rowid of the previous page's last row."""

    values: tuple[Any, ...]
    rowid: int


@dataclass(frozen=True)
class ReadPlan:
    """Columns, filters, grouping, order and window of one read."""

    outputs: tuple[Output, ...]
    where: tuple[Condition, ...] = ()
    # The reader's view (a grant's row filter): also in ``where``, and the rows a windowed mask
    # is computed over, whatever else the read filters.
    scope: tuple[Condition, ...] = ()
    group_by: tuple[str, ...] = ()
    aggregated: bool = False  # outputs are aggregates (over groups, or over all rows)
    order: tuple[SortKey, ...] = ()
    distinct: bool = False
    limit: int | None = None
    offset: int = 0
    after: After | None = None

    @property
    def keyed(self) -> bool:
        """Rows map one-to-one to stored rows, so a page can end in a keyset cursor."""
        return not self.aggregated and not self.distinct

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.outputs]

    def window(self, limit: int | None, offset: int = 0) -> ReadPlan:
        return replace(self, limit=limit, offset=offset)

    def select(self, *, formula_safe: bool = False, cursor_columns: bool = False) -> Rendered:
        """The SELECT of this plan; with ``cursor_columns`` the sort values and rowid follow."""
        parts = [_output_sql(o, formula_safe) for o in self.outputs]
        # A window function (the shuffle mask) gives no insertion order to take a window from.
        windowed = any(o.windowed for o in self.outputs)
        if self.keyed and not self.order and self.limit is not None and not windowed:
            return self._first_rows(parts, cursor_columns=cursor_columns)
        if cursor_columns and self.keyed:
            parts += [k.sql for k in self.order] + [ROWID]
        source, params = self._source(windowed)
        where, where_params = self._where()
        params += where_params
        sql = f"SELECT {'DISTINCT ' if self.distinct else ''}{', '.join(parts)} FROM {source}"
        sql += where
        if self.group_by:
            sql += " GROUP BY " + ", ".join(self.group_by)
        sql += self._order_by()
        if self.limit is not None:
            sql += " LIMIT ?"
            params.append(self.limit)
        if self.offset:
            sql += " OFFSET ?"
            params.append(self.offset)
        return Rendered(sql, params)

    def _source(self, windowed: bool) -> tuple[str, list[Any]]:
        """The table, or — with a windowed mask — the reader's view with the masks computed over
        all of it, under the table's name (so stored columns and ``rowid`` resolve alike)."""
        if not windowed:
            return TABLE, []
        computed = [f"{o.sql} AS {quote(_view_name(o))}" for o in self.outputs if o.windowed]
        conditions = " AND ".join(f"({c.sql})" for c in self.scope)
        params = [p for c in self.scope for p in c.params]
        inner = f"SELECT {TABLE}.*, {ROWID} AS rowid, {', '.join(computed)} FROM {TABLE}"
        if conditions:
            inner += f" WHERE {conditions}"
        return f"({inner}) AS {TABLE}", params

    def _first_rows(self, parts: list[str], *, cursor_columns: bool) -> Rendered:
        """Rows in storage order without a sort: the window is taken inside (DuckDB keeps
        insertion order, so a LIMIT stops at the first matches and an equality on a key column
        uses its index), then ordered by rowid outside. ``ORDER BY rowid LIMIT`` over the whole
        table would be a top-N that scans every row group — 85 ms for one key in 10 M rows."""
        where, params = self._where()
        inner = f"SELECT {', '.join(parts)}, {ROWID} AS {ROW_ALIAS} FROM {TABLE}{where} LIMIT ?"
        params.append(self.limit)
        if self.offset:
            inner += " OFFSET ?"
            params.append(self.offset)
        names = [quote(o.name) for o in self.outputs]
        if cursor_columns:
            names.append(ROW_ALIAS)
        sql = f"SELECT {', '.join(names)} FROM ({inner}) AS page ORDER BY {ROW_ALIAS}"
        return Rendered(sql, params)

    def count(self) -> Rendered:
        """How many rows (or groups) the plan yields, ignoring its window."""
        whole = replace(self, order=(), limit=None, offset=0, after=None)
        if self.keyed:
            where, params = whole._where()
            return Rendered(f"SELECT count(*) FROM {TABLE}{where}", params)
        inner = whole.select()
        return Rendered(f"SELECT count(*) FROM ({inner.sql})", inner.params)

    def sampled_count(self, percent: float) -> Rendered:
        """Matching rows and all rows in a block sample of ``percent`` of the table."""
        whole = replace(self, after=None)
        where, params = whole._where()
        matched = f"count(*) FILTER ({where.strip()})" if where else "count(*)"
        sample = f"SELECT * FROM {TABLE} USING SAMPLE {float(percent)}% (system, 7)"
        return Rendered(f"SELECT {matched}, count(*) FROM ({sample}) AS {TABLE}", params)

    def _where(self) -> tuple[str, list[Any]]:
        conditions = list(self.where)
        if self.after is not None:
            conditions.append(keyset_condition(self.order, self.after))
        if not conditions:
            return "", []
        params: list[Any] = []
        for condition in conditions:
            params.extend(condition.params)
        return " WHERE " + " AND ".join(f"({c.sql})" for c in conditions), params

    def _order_by(self) -> str:
        terms = [f"{k.sql}{' DESC' if k.descending else ''} NULLS LAST" for k in self.order]
        if self.keyed:
            # Ties, and reads without a sort, go in storage (source) order. Always said, never
            # assumed: the bundled DuckDB returns a CASE projection out of insertion order.
            terms.append(ROWID)
        return " ORDER BY " + ", ".join(terms) if terms else ""


@dataclass(frozen=True)
class Rendered:
    sql: str
    params: list[Any] = field(default_factory=list)


def formula_safe(sql: str) -> str:
    """Prefix a text cell that a spreadsheet would run as a formula with a single quote."""
    return f"CASE WHEN left({sql}, 1) IN {FORMULA_STARTS} THEN '''' || {sql} ELSE {sql} END"


def _view_name(output: Output) -> str:
    """The name a windowed mask has in the reader's view (no item name starts with ``__ks_``)."""
    return f"__ks_view_{output.name}"


def _output_sql(output: Output, safe: bool) -> str:
    sql = f"{TABLE}.{quote(_view_name(output))}" if output.windowed else output.sql
    expression = formula_safe(sql) if safe and output.text else sql
    return f"{expression} AS {quote(output.name)}"


def keyset_condition(order: Sequence[SortKey], after: After) -> Condition:
    """Rows strictly after ``after`` in ``order`` (NULLS LAST), then by rowid.

    Expanded as (k1 after v1) OR (k1 = v1 AND k2 after v2) OR … OR (all equal AND rowid > r).
    """
    alternatives: list[str] = []
    params: list[Any] = []
    equal: list[str] = []
    equal_params: list[Any] = []
    for key, value in zip(order, after.values, strict=True):
        if value is not None:  # nothing sorts after NULL at this level (NULLS LAST)
            op = "<" if key.descending else ">"
            alternatives.append(
                " AND ".join(
                    [*equal, f"({key.sql} {op} CAST(? AS {key.type}) OR {key.sql} IS NULL)"]
                )
            )
            params += [*equal_params, value]
        if value is None:
            equal.append(f"{key.sql} IS NULL")
        else:
            equal.append(f"{key.sql} = CAST(? AS {key.type})")
            equal_params.append(value)
    alternatives.append(" AND ".join([*equal, f"{ROWID} > ?"]))
    params += [*equal_params, after.rowid]
    return Condition(" OR ".join(f"({a})" for a in alternatives), tuple(params))
