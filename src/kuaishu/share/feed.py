"""The change feed under a grant (数据订阅): rows added, changed and removed since a point, by
key — only the granted fields, only rows inside the grant's row filter, masked for sharing.

A cursor ``P.C`` says: steps before ``P`` are consumed, and of step ``P`` its first ``C``
changes. A row that moves into the grant's row filter reads as added, one that moves out as
removed, and a change to fields the grant does not show is no change at all to this consumer.
Every page read is an audited data access, recorded before the page leaves the server.

Each change carries a ``row_id``: a keyed digest (HMAC-SM3, one key per grant) of the row's
stored key — stable across versions, distinct for distinct rows, and not reversible — so a
consumer can apply changes to its copy even when the key column itself is masked (two people
whose masked ID numbers are alike are still two rows). Masks are drawn per row from the stored
key (``plan.row_key_sql``), so a changed row shows in the feed as it shows in a query; a mask
computed over other rows (shuffle) moves values of rows that did not change, so under such a
mask the step's changes are worked out from the two versions as this grant sees them.
"""

from __future__ import annotations

import os
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson
from sqlalchemy.orm import Session

from kuaishu.accounts.actor import Actor
from kuaishu.clean import keyed
from kuaishu.clean.masking import MaskMethod
from kuaishu.clean.sqltext import literal
from kuaishu.collect.raw import quote
from kuaishu.errors import NotFound, ValidationFailed
from kuaishu.security.crypto import hmac_sm3, keyring, sm3_hex
from kuaishu.share.enums import AccessMethod
from kuaishu.share.grants import served_by_grant
from kuaishu.share.models import ShareGrant
from kuaishu.store import changes, storage
from kuaishu.store.changes import ADDED, CHANGE, CHANGED, NEW, OLD, OP, REMOVED, SIDE
from kuaishu.store.models import DatasetChange
from kuaishu.store.plan import TABLE, Output, ReadPlan, columns_of, row_key_sql
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
    ids = RowIds(grant.id)
    for step in changes.steps_from(session, grant.entry_id, position):
        if step.position != position:
            position, after = step.position, 0
        with _StepReader(session, target, plan, step) as found:
            while after < found.total and len(page.changes) < limit:
                window = limit - len(page.changes)
                for number, op, key, row in found.visible(after, window):
                    page.changes.append(
                        {
                            "id": f"{step.position}.{number}",
                            "op": op,
                            "version": step.to_number,
                            "row_id": ids.of(key),
                            "key": {k: row[k] for k in keys},
                            "row": row,
                        }
                    )
                after += window
        if after >= found.total:
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


class RowIds:
    """Each row's id in this grant's feed: HMAC-SM3 of its stored key under a key of the grant's
    own, so ids are stable across versions and distinct for distinct rows, yet neither reveal the
    key nor link one consumer's copy to another's."""

    def __init__(self, grant_id: int) -> None:
        self.key = keyring().key(f"feed-row:{grant_id}", 32)

    def of(self, stored_key: Any) -> str:
        values = stored_key.values() if isinstance(stored_key, dict) else stored_key
        return hmac_sm3(self.key, orjson.dumps(list(values), default=str)).hex()[:32]


class _Step(ABC):
    """One step's changes as a reader sees them: ``total`` numbered changes (some of which the
    reader may not see), read a window at a time."""

    def __init__(self, con: duckdb.DuckDBPyConnection, total: int) -> None:
        self.con, self.total = con, total

    @abstractmethod
    def visible(self, after: int, window: int) -> Iterator[tuple[int, str, Any, dict[str, Any]]]:
        """(number, operation, stored key, shown row) of changes ``after + 1 … after + window``."""


class _StoredStep(_Step):
    """The step's changes file, masked here row by row: right for every mask that depends on
    the row alone (all but shuffle), since each is drawn from the row's stored key."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, total: int, plan: ReadPlan, row_key: str
    ) -> None:
        super().__init__(con, total)
        self.plan, self.row_key = plan, row_key

    def visible(self, after: int, window: int) -> Iterator[tuple[int, str, Any, dict[str, Any]]]:
        """The changes numbered ``after + 1 … after + window`` as this reader sees them."""
        inside, params = _inside(self.plan)
        selected = ", ".join(f"{o.sql} AS {quote(o.name)}" for o in self.plan.outputs)
        sql = (
            f"SELECT {CHANGE}, {SIDE}, {OP}, coalesce({inside}, false), {self.row_key}, "
            f"{selected} FROM {TABLE} "
            f"WHERE {CHANGE} > ? AND {CHANGE} <= ? ORDER BY {CHANGE}, {SIDE} DESC"
        )
        rows = self.con.execute(sql, [*params, after, after + window]).fetchall()
        names = [o.name for o in self.plan.outputs]
        sides: dict[str, tuple[bool, Any, tuple[Any, ...]]] = {}
        current: int | None = None
        for number, side, _op, within, key, *values in [*rows, (None,) * 5]:
            if number != current and current is not None:
                found = _seen(sides)
                if found is not None:
                    op, stored_key, shown = found
                    yield current, op, stored_key, dict(zip(names, shown, strict=True))
                sides = {}
            if number is None:
                break
            current = number
            sides[side] = (bool(within), key, tuple(values))


class _GrantStep(_Step):
    """The step as this grant sees it, worked out from the two versions read through the grant's
    plan: under a mask over other rows (shuffle) a row that did not change can show a new value,
    which only the whole versions tell. Kept per step and plan, so pages number alike."""

    def __init__(self, con: duckdb.DuckDBPyConnection, total: int, plan: ReadPlan) -> None:
        super().__init__(con, total)
        self.names = [o.name for o in plan.outputs]

    def visible(self, after: int, window: int) -> Iterator[tuple[int, str, Any, dict[str, Any]]]:
        shown = ", ".join(quote(n) for n in self.names)
        rows = self.con.execute(
            f"SELECT {CHANGE}, {OP}, __ks_key, {shown} FROM {TABLE} "
            f"WHERE {CHANGE} > ? AND {CHANGE} <= ? ORDER BY {CHANGE}",
            [after, after + window],
        ).fetchall()
        for number, op, key, *values in rows:
            yield int(number), str(op), key, dict(zip(self.names, values, strict=True))


class _StepReader:
    """The reader of ``step`` for ``plan``: an in-memory DuckDB connection with the keyed masks,
    closed on leaving."""

    def __init__(self, session: Session, target: Served, plan: ReadPlan, step: DatasetChange):
        self.session, self.target, self.plan, self.step = session, target, plan, step

    def __enter__(self) -> _Step:
        row_key = row_key_sql(columns_of(self.target.version.schema))
        if any(o.windowed for o in self.plan.outputs):
            path = _grant_changes(self.session, self.target, self.plan, self.step, row_key)
            self.con = changes.connect([path])  # confined to the one file it reads
            keyed.register_udfs(self.con)
            self.con.execute(
                f"CREATE VIEW {TABLE} AS SELECT * FROM read_parquet({literal(str(path))})"
            )
            found = self.con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
            return _GrantStep(self.con, int(found[0]) if found else 0, self.plan)
        path = changes.materialize(self.session, self.step)
        self.con = changes.connect([path])
        keyed.register_udfs(self.con)
        _shaped(self.con, self.target, path, f"{CHANGE}, {SIDE}, {OP}, ")
        step = self.step
        total = (step.added or 0) + (step.changed or 0) + (step.removed or 0)
        return _StoredStep(self.con, total, self.plan, row_key)

    def __exit__(self, *exc: object) -> None:
        self.con.close()


def _shaped(con: duckdb.DuckDBPyConnection, target: Served, path: Path, extra: str = "") -> None:
    """``data``: the Parquet file at ``path`` shaped as the served version (a column the file
    lacks reads as NULL), with the ``extra`` columns first."""
    file = literal(str(path))
    described = con.execute(f"DESCRIBE SELECT * FROM read_parquet({file})").fetchall()
    present = {str(r[0]) for r in described}
    columns = [
        quote(c.name) if c.name in present else f"CAST(NULL AS {c.type}) AS {quote(c.name)}"
        for c in columns_of(target.version.schema)
    ]
    con.execute(
        f"CREATE OR REPLACE VIEW {TABLE} AS SELECT {extra}{', '.join(columns)} "
        f"FROM read_parquet({file})"
    )


def _inside(plan: ReadPlan) -> tuple[str, list[Any]]:
    """The reader's row filter as SQL and its parameters."""
    inside = " AND ".join(f"({c.sql})" for c in plan.where) or "true"
    return inside, [p for c in plan.where for p in c.params]


def _grant_changes(
    session: Session, target: Served, plan: ReadPlan, step: DatasetChange, row_key: str
) -> Path:
    """The file of ``step``'s changes as ``plan`` shows them, worked out once."""
    inside, params = _inside(plan)
    shape = [[o.name, o.sql] for o in plan.outputs]
    digest = sm3_hex(orjson.dumps([shape, inside, params, row_key], default=str))[:24]
    final = changes.changes_dir(step.entry_id) / f"{step.position}.{digest}.parquet"
    if final.exists():
        return final
    old, new = changes.versions_of(session, step)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.parent / f".{step.position}.{digest}-{uuid.uuid4().hex}.parquet"
    reach = [storage.resolve(v.path) / storage.DATA_FILE for v in (new, old) if v is not None]
    con = changes.connect([*reach, partial])
    try:
        keyed.register_udfs(con)
        masks = target.masking.masks if target.masking else {}
        random = {n for n, m in masks.items() if m.method == MaskMethod.ENCRYPT}
        shown = ", ".join(f"{o.sql} AS __ks_v{i}" for i, o in enumerate(plan.outputs))
        # Encryption draws a fresh nonce per read: a row changed when its stored value did.
        compared = ", ".join(
            f"{quote(o.name) if o.name in random else f'__ks_v{i}'} AS __ks_c{i}"
            for i, o in enumerate(plan.outputs)
        )
        for side, version in (("n", new), ("o", old)):
            if version is None:
                con.execute("CREATE TEMP TABLE side_o AS SELECT * FROM side_n LIMIT 0")
                continue
            _shaped(con, target, storage.resolve(version.path) / storage.DATA_FILE)
            con.execute(
                f"""CREATE TEMP TABLE side_{side} AS
                SELECT __ks_key, row_number() OVER (PARTITION BY __ks_key) AS __ks_dup,
                       __ks_in, {", ".join(f"__ks_v{i}" for i in range(len(plan.outputs)))},
                       {compared}
                FROM (SELECT {row_key} AS __ks_key, coalesce({inside}, false) AS __ks_in,
                             {shown}, {TABLE}.* FROM {TABLE})""",
                params,
            )
        width = range(len(plan.outputs))
        differs = " OR ".join(f"o.__ks_c{i} IS DISTINCT FROM n.__ks_c{i}" for i in width)
        was, now = "coalesce(o.__ks_in, false)", "coalesce(n.__ks_in, false)"
        values = ", ".join(
            f"CASE WHEN {now} THEN n.__ks_v{i} ELSE o.__ks_v{i} END AS {quote(o.name)}"
            for i, o in zip(width, plan.outputs, strict=True)
        )
        con.execute(
            f"""COPY (
            SELECT row_number() OVER (ORDER BY __ks_key, __ks_dup) AS {CHANGE}, * FROM (
                SELECT CASE WHEN {was} AND {now} THEN '{CHANGED}'
                            WHEN {now} THEN '{ADDED}' ELSE '{REMOVED}' END AS {OP},
                       coalesce(n.__ks_key, o.__ks_key) AS __ks_key,
                       {values},
                       coalesce(n.__ks_dup, o.__ks_dup) AS __ks_dup
                FROM side_o AS o FULL OUTER JOIN side_n AS n
                  ON o.__ks_key IS NOT DISTINCT FROM n.__ks_key AND o.__ks_dup = n.__ks_dup
                WHERE ({was} OR {now}) AND NOT ({was} AND {now} AND NOT ({differs or "false"}))
            ) ORDER BY {CHANGE}) TO {literal(str(partial))} (FORMAT parquet, COMPRESSION zstd)"""
        )
        with partial.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, final)
    finally:
        con.close()
        partial.unlink(missing_ok=True)
    return final


def _seen(
    sides: dict[str, tuple[bool, Any, tuple[Any, ...]]],
) -> tuple[str, Any, tuple[Any, ...]] | None:
    """What one change is to a reader bound by a row filter and a field list: the operation,
    the row's stored key and the values shown."""
    old, new = sides.get(OLD), sides.get(NEW)
    was = old is not None and old[0]
    now = new is not None and new[0]
    if was and now:
        assert old is not None and new is not None
        return (CHANGED, new[1], new[2]) if old[2] != new[2] else None
    if now:
        assert new is not None
        return ADDED, new[1], new[2]
    if was:
        assert old is not None
        return REMOVED, old[1], old[2]
    return None
