"""The change feed under a grant (数据订阅): rows added, changed and removed since a point, by
key — only the granted fields, only rows inside the grant's row filter, masked for sharing.

A cursor ``P.C`` says: steps before ``P`` are consumed, and of step ``P`` its first ``C``
changes. A row that moves into the grant's row filter reads as added, one that moves out as
removed, and a change to fields the grant does not show is no change at all to this consumer.
Every page read is an audited data access, recorded before the page leaves the server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy.orm import Session

from kuaishu.accounts.actor import Actor
from kuaishu.clean import keyed
from kuaishu.clean.sqltext import literal
from kuaishu.collect.raw import quote
from kuaishu.errors import NotFound, ValidationFailed
from kuaishu.share.enums import AccessMethod
from kuaishu.share.grants import served_by_grant
from kuaishu.share.models import ShareGrant
from kuaishu.store import changes
from kuaishu.store.changes import ADDED, CHANGE, CHANGED, NEW, OLD, OP, REMOVED, SIDE
from kuaishu.store.plan import TABLE, Output, columns_of
from kuaishu.store.query import ReadRequest
from kuaishu.store.reads import Served, record_read

LIMIT_MAX = 5_000
_CURSOR = re.compile(r"^(\d{1,12})\.(\d{1,15})$")


@dataclass(frozen=True, order=True)
class Cursor:
    position: int
    change: int = 0

    def __str__(self) -> str:
        return f"{self.position}.{self.change}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        found = _CURSOR.match(text.strip())
        if found is None or int(found.group(1)) < 1:
            raise ValidationFailed(
                "订阅游标“{cursor}”无效，应形如 3.120（第 3 步已读 120 条）。",
                code="feed_cursor_invalid",
                cursor=text,
            )
        return cls(int(found.group(1)), int(found.group(2)))


START = Cursor(1, 0)


def since_version(session: Session, grant: ShareGrant, number: int) -> Cursor:
    """The cursor just after version ``number`` became the served one."""
    position = changes.position_of(session, grant.entry_id, number)
    if position is None:
        raise NotFound(
            "数据版本 {n} 未曾发布，不能从它开始订阅。", code="feed_version_unknown", n=number
        )
    return Cursor(position + 1, 0)


@dataclass
class Page:
    """One page of changes, and where the next one starts."""

    cursor: Cursor
    next_cursor: Cursor
    up_to_date: bool
    outputs: tuple[Output, ...]
    keys: tuple[str, ...]
    changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def fields(self) -> list[dict[str, Any]]:
        return [o.field for o in self.outputs]

    def as_dict(self) -> dict[str, Any]:
        return {
            "cursor": str(self.cursor),
            "next_cursor": str(self.next_cursor),
            "up_to_date": self.up_to_date,
            "fields": self.fields,
            "keys": list(self.keys),
            "changes": self.changes,
        }


def read(
    session: Session,
    *,
    actor: Actor,
    grant: ShareGrant,
    cursor: Cursor,
    limit: int,
    method: AccessMethod = AccessMethod.SUBSCRIBE,
    purpose: str | None = None,
    details: dict[str, Any] | None = None,
) -> Page:
    """Up to ``limit`` changes from ``cursor``; the grant is checked afresh, as for every read."""
    target = served_by_grant(session, actor=actor, grant=grant, method=method)
    limit = max(1, min(limit, LIMIT_MAX))
    plan = target.plan(ReadRequest(), limit_max=None)
    shown = [o.name for o in plan.outputs]
    keys = tuple(c.name for c in target.columns if c.key and c.name in shown)
    page = Page(
        cursor=cursor, next_cursor=cursor, up_to_date=False, outputs=plan.outputs, keys=keys
    )
    position, after = cursor.position, cursor.change
    last = changes.last_position(session, grant.entry_id)
    if position > last + 1:
        raise ValidationFailed(
            "订阅游标“{cursor}”超出了已有的变更（共 {n} 步）。",
            code="feed_cursor_invalid",
            cursor=str(cursor),
            n=last,
        )
    for step in changes.steps_from(session, grant.entry_id, position):
        if step.position != position:
            position, after = step.position, 0
        path = changes.materialize(session, step)
        total = (step.added or 0) + (step.changed or 0) + (step.removed or 0)
        with _Reader(target, path) as con:
            while after < total and len(page.changes) < limit:
                window = limit - len(page.changes)
                for number, op, row in _visible(con, plan.outputs, plan.where, after, window):
                    page.changes.append(
                        {
                            "id": f"{step.position}.{number}",
                            "op": op,
                            "version": step.to_number,
                            "key": {k: row[k] for k in keys},
                            "row": row,
                        }
                    )
                after += window
        if after >= total:
            position, after = step.position + 1, 0
        if len(page.changes) >= limit:
            break
    page.next_cursor = Cursor(position, after)
    page.up_to_date = position > last
    record_read(
        session,
        actor,
        "data.changes",
        target,
        purpose,
        {
            "cursor": str(cursor),
            "next_cursor": str(page.next_cursor),
            "method": str(method),
            "rows": len(page.changes),
            **(details or {}),
        },
    )
    return page


class _Reader:
    """An in-memory DuckDB connection with the keyed masks, where ``data`` is the changes file
    shaped as the served version (a column the step's versions lacked reads as NULL)."""

    def __init__(self, target: Served, path: Path) -> None:
        self.target, self.path = target, path

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        con = changes.connect([self.path])
        keyed.register_udfs(con)
        path = literal(str(self.path))
        described = con.execute(f"DESCRIBE SELECT * FROM read_parquet({path})").fetchall()
        present = {str(r[0]) for r in described}
        columns = [
            quote(c.name) if c.name in present else f"CAST(NULL AS {c.type}) AS {quote(c.name)}"
            for c in columns_of(self.target.version.schema)
        ]
        con.execute(
            f"CREATE VIEW {TABLE} AS SELECT {CHANGE}, {SIDE}, {OP}, {', '.join(columns)} "
            f"FROM read_parquet({path})"
        )
        self.con = con
        return con

    def __exit__(self, *exc: object) -> None:
        self.con.close()


def _visible(
    con: duckdb.DuckDBPyConnection,
    outputs: Sequence[Output],
    where: Sequence[Any],
    after: int,
    window: int,
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """The changes numbered ``after + 1 … after + window`` as this reader sees them."""
    inside = " AND ".join(f"({c.sql})" for c in where) or "true"
    params: list[Any] = [p for c in where for p in c.params]
    selected = ", ".join(f"{o.sql} AS {quote(o.name)}" for o in outputs)
    sql = (
        f"SELECT {CHANGE}, {SIDE}, {OP}, coalesce({inside}, false), {selected} FROM {TABLE} "
        f"WHERE {CHANGE} > ? AND {CHANGE} <= ? ORDER BY {CHANGE}, {SIDE} DESC"
    )
    rows = con.execute(sql, [*params, after, after + window]).fetchall()
    names = [o.name for o in outputs]
    sides: dict[str, tuple[bool, tuple[Any, ...]]] = {}
    current: int | None = None
    for number, side, _op, within, *values in [*rows, (None, None, None, None)]:
        if number != current and current is not None:
            found = _seen(sides)
            if found is not None:
                yield current, found[0], dict(zip(names, found[1], strict=True))
            sides = {}
        if number is None:
            break
        current = number
        sides[side] = (bool(within), tuple(values))


def _seen(sides: dict[str, tuple[bool, tuple[Any, ...]]]) -> tuple[str, tuple[Any, ...]] | None:
    """What one change is to a reader bound by a row filter and a field list."""
    old, new = sides.get(OLD), sides.get(NEW)
    was = old is not None and old[0]
    now = new is not None and new[0]
    if was and now:
        assert old is not None and new is not None
        return (CHANGED, new[1]) if old[1] != new[1] else None
    if now:
        assert new is not None
        return ADDED, new[1]
    if was:
        assert old is not None
        return REMOVED, old[1]
    return None
