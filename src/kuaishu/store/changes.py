"""The change feed of an entry: every move of its served version is a step, and a step's changes
are the rows added, changed and removed between the two versions, by key.

A step is recorded in the transaction that moves the version (one row, no data work). Its
changes are worked out by DuckDB — a full outer join of the two Parquet files on the key columns
(an ``EXCEPT ALL`` both ways for an entry without keys) — the first time someone asks, and in
any case before either version's files are removed, so retention never loses a change. The
result is one immutable Parquet file per step, written under a temporary name and renamed.

A changes file holds, per change, its ordinal (``__ks_change``), the side (``old``/``new``) and
the operation, then the stored columns: a change of a row has two records, its old and new
values, so a reader can tell a row that moved into or out of its own row filter.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.clean.sqltext import literal
from kuaishu.collect.raw import quote
from kuaishu.db import transaction as session_scope
from kuaishu.errors import AppError
from kuaishu.store import storage
from kuaishu.store.engine import confine, serving_config
from kuaishu.store.models import Dataset, DatasetChange, DatasetVersion, VersionState

CHANGE = "__ks_change"
SIDE = "__ks_side"
OP = "__ks_op"
ADDED, CHANGED, REMOVED = "added", "changed", "removed"
OLD, NEW = "old", "new"


def record_step(
    session: Session, entry_id: int, previous: int | None, version: DatasetVersion
) -> None:
    """The served version of ``entry_id`` moved from ``previous`` to ``version``."""
    if previous == version.id:
        return
    last = session.scalar(
        select(func.max(DatasetChange.position)).where(DatasetChange.entry_id == entry_id)
    )
    session.add(
        DatasetChange(
            entry_id=entry_id,
            position=(last or 0) + 1,
            from_version_id=previous,
            to_version_id=version.id,
            to_number=version.number,
        )
    )
    session.flush()


def steps_from(session: Session, entry_id: int, position: int) -> Sequence[DatasetChange]:
    """The steps at ``position`` and after, in order."""
    return session.scalars(
        select(DatasetChange)
        .where(DatasetChange.entry_id == entry_id, DatasetChange.position >= position)
        .order_by(DatasetChange.position)
    ).all()


def last_position(session: Session, entry_id: int) -> int:
    found = session.scalar(
        select(func.max(DatasetChange.position)).where(DatasetChange.entry_id == entry_id)
    )
    return int(found or 0)


def position_of(session: Session, entry_id: int, number: int) -> int | None:
    """The latest step that made version ``number`` the served one."""
    found = session.scalar(
        select(func.max(DatasetChange.position)).where(
            DatasetChange.entry_id == entry_id, DatasetChange.to_number == number
        )
    )
    return int(found) if found is not None else None


def changes_dir(entry_id: int) -> Path:
    return storage.data_root() / "changes" / str(entry_id)


def materialize(session: Session, step: DatasetChange) -> Path:
    """The step's changes file, worked out now if it has not been."""
    if step.path is not None:
        path = storage.resolve(step.path)
        if path.exists():
            return path
    old, new = versions_of(session, step)
    final, counts = _work_out(step.entry_id, step.position, old, new)
    step.path = storage.relative(final)
    step.added, step.changed, step.removed = counts
    session.flush()
    return final


def versions_of(
    session: Session, step: DatasetChange
) -> tuple[DatasetVersion | None, DatasetVersion]:
    """The step's two versions (None: it started from nothing); a 410 once either is retired."""
    new = session.get(DatasetVersion, step.to_version_id)
    old = session.get(DatasetVersion, step.from_version_id) if step.from_version_id else None
    assert new is not None
    if any(v is not None and v.state == VersionState.RETIRED for v in (old, new)):
        raise AppError(
            "第 {position} 步的变更已不再保留，请全量获取后从当前版本开始订阅。",
            code="feed_gap",
            status=410,
            position=step.position,
        )
    return old, new


def _work_out(
    entry_id: int, position: int, old: DatasetVersion | None, new: DatasetVersion
) -> tuple[Path, tuple[int, int, int]]:
    """Diff the two versions into the step's file: a temporary name, synced, then renamed."""
    folder = changes_dir(entry_id)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{position}.parquet"
    partial = folder / f".{position}-{uuid.uuid4().hex}.parquet"
    try:
        counts = diff(old, new, partial)
        with partial.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    return final, counts


def work_out_before_publishing(factory: sessionmaker[Session], entry_id: int) -> int:
    """Work out — outside any transaction — the pending steps that read a version the next
    publish will retire, so that the publishing transaction holds no lock while DuckDB diffs.
    (Retirement still works out anything left pending, inline.) The steps worked out."""
    with factory() as session:
        dataset = session.get(Dataset, entry_id)
        if dataset is None:
            return 0
        live = session.scalars(
            select(DatasetVersion)
            .where(
                DatasetVersion.entry_id == entry_id, DatasetVersion.state != VersionState.RETIRED
            )
            .order_by(DatasetVersion.number.desc())
        ).all()
        # The next version takes one of the kept places.
        going = {
            v.id
            for v in live[max(dataset.keep_versions, 1) - 1 :]
            if v.id != dataset.current_version_id
        }
        pending = [
            (step.id, step.position, *versions_of(session, step))
            for step in _pending(session, going)
        ]
    for step_id, position, old, new in pending:
        final, counts = _work_out(entry_id, position, old, new)
        with session_scope(factory) as session:
            step = session.get(DatasetChange, step_id)
            if step is not None and step.path is None:
                step.path = storage.relative(final)
                step.added, step.changed, step.removed = counts
    return len(pending)


def _pending(session: Session, version_ids: set[int]) -> Sequence[DatasetChange]:
    if not version_ids:
        return []
    return session.scalars(
        select(DatasetChange).where(
            DatasetChange.path.is_(None),
            DatasetChange.from_version_id.in_(version_ids)
            | DatasetChange.to_version_id.in_(version_ids),
        )
    ).all()


def materialize_touching(session: Session, version_ids: set[int]) -> None:
    """Work out every pending step that reads one of ``version_ids`` (before their files go)."""
    for step in _pending(session, version_ids):
        materialize(session, step)


def connect(reach: Iterable[Path]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection, set up and confined as the serving ones are: it reaches
    the files in ``reach`` and nothing else."""
    con = duckdb.connect(config=serving_config())
    confine(con, reach)
    return con


def diff(old: DatasetVersion | None, new: DatasetVersion, target: Path) -> tuple[int, int, int]:
    """Write the changes from ``old`` (None: nothing) to ``new`` into ``target``; the counts of
    rows added, changed and removed."""
    files = [storage.resolve(v.path) / storage.DATA_FILE for v in (new, old) if v is not None]
    con = connect([*files, target])
    try:
        new_file = literal(str(files[0]))
        con.execute(f"CREATE VIEW new AS SELECT * FROM read_parquet({new_file})")
        if old is None:
            con.execute("CREATE VIEW old AS SELECT * FROM new LIMIT 0")
        else:
            old_file = literal(str(files[1]))
            con.execute(f"CREATE VIEW old AS SELECT * FROM read_parquet({old_file})")
        old_columns = [str(r[0]) for r in con.execute("DESCRIBE old").fetchall()]
        new_columns = [str(r[0]) for r in con.execute("DESCRIBE new").fetchall()]
        keys = [k for k in new.key_columns if old is None or k in (old.key_columns or [])]
        same_shape = old_columns == new_columns
        if keys and all(k in old_columns for k in keys):
            _keyed_changes(con, keys, old_columns, new_columns)
        else:
            _keyless_changes(con, same_shape)
        con.execute(
            f"COPY (SELECT * FROM changes ORDER BY {CHANGE}, {SIDE} DESC) "
            f"TO {literal(str(target))} (FORMAT parquet, COMPRESSION zstd)"
        )
        found = dict(con.execute(f"SELECT {OP}, count(*) FROM ops GROUP BY {OP}").fetchall())
        return (int(found.get(ADDED, 0)), int(found.get(CHANGED, 0)), int(found.get(REMOVED, 0)))
    finally:
        con.close()


def _keyed_changes(
    con: duckdb.DuckDBPyConnection, keys: list[str], old_columns: list[str], new_columns: list[str]
) -> None:
    """Rows matched on the key columns: present only in new (added), only in old (removed), or
    in both with any common column differing (changed). One pass over the two files: the join
    keeps both sides' values of the (few) changed rows, which are then laid out old, new."""
    key_list = ", ".join(quote(k) for k in keys)
    compared = [c for c in new_columns if c in old_columns and c not in keys]
    differs = " OR ".join(f"o.{quote(c)} IS DISTINCT FROM n.{quote(c)}" for c in compared)
    if len(compared) != len(new_columns) - len(keys) or len(old_columns) != len(new_columns):
        differs = "true"  # a column came or went: every matched row reads differently
    olds = [c for c in old_columns if c not in keys]
    news = [c for c in new_columns if c not in keys]
    sides = [f"o.{quote(c)} AS __ks_o{i}" for i, c in enumerate(olds)]
    sides += [f"n.{quote(c)} AS __ks_n{i}" for i, c in enumerate(news)]
    con.execute(
        f"""CREATE TEMP TABLE ops AS
        SELECT {key_list}, {", ".join(sides) + "," if sides else ""}
               CASE WHEN o.__ks_o IS NULL THEN '{ADDED}'
                    WHEN n.__ks_n IS NULL THEN '{REMOVED}' ELSE '{CHANGED}' END AS {OP},
               row_number() OVER (ORDER BY {key_list}) AS {CHANGE}
        FROM (SELECT *, true AS __ks_o FROM old) AS o
        FULL OUTER JOIN (SELECT *, true AS __ks_n FROM new) AS n USING ({key_list})
        WHERE o.__ks_o IS NULL OR n.__ks_n IS NULL OR ({differs or "false"})"""
    )
    old_values = ", ".join([key_list, *(f"__ks_o{i} AS {quote(c)}" for i, c in enumerate(olds))])
    new_values = ", ".join([key_list, *(f"__ks_n{i} AS {quote(c)}" for i, c in enumerate(news))])
    con.execute(
        f"""CREATE VIEW changes AS
        SELECT {CHANGE}, '{OLD}' AS {SIDE}, {OP}, {old_values} FROM ops WHERE {OP} <> '{ADDED}'
        UNION ALL BY NAME
        SELECT {CHANGE}, '{NEW}' AS {SIDE}, {OP}, {new_values} FROM ops WHERE {OP} <> '{REMOVED}'"""
    )


def _keyless_changes(con: duckdb.DuckDBPyConnection, same_shape: bool) -> None:
    """Without keys a row is its values: what only the old version holds was removed, what only
    the new one holds was added (duplicates counted, ``EXCEPT ALL``)."""
    if same_shape:
        removed = "SELECT * FROM old EXCEPT ALL SELECT * FROM new"
        added = "SELECT * FROM new EXCEPT ALL SELECT * FROM old"
    else:
        removed, added = "SELECT * FROM old", "SELECT * FROM new"
    con.execute(f"CREATE TEMP TABLE gone AS {removed}")
    con.execute(f"CREATE TEMP TABLE came AS {added}")
    con.execute(
        f"""CREATE TEMP TABLE changes AS
        SELECT row_number() OVER () AS {CHANGE}, '{OLD}' AS {SIDE}, '{REMOVED}' AS {OP}, r.*
        FROM gone AS r
        UNION ALL BY NAME
        SELECT (SELECT count(*) FROM gone) + row_number() OVER () AS {CHANGE},
               '{NEW}' AS {SIDE}, '{ADDED}' AS {OP}, a.*
        FROM came AS a"""
    )
    con.execute(f"CREATE TEMP VIEW ops AS SELECT {OP} FROM changes")
