"""Incremental loads: the version being served, which an incremental load extends.

A version is a full snapshot. An incremental load therefore stages the served version's rows
(back as text, under the source columns they came from) after the new rows, and the whole passes
through conversion like any load. Where the entry has key items, a new row replaces the served
row with the same key (a growing ``updated_at`` column brings changed rows again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy.orm import Session

from kuaishu.clean.sqltext import literal
from kuaishu.collect.models import LoadRun, Source
from kuaishu.collect.raw import RAW_TABLE, LoadError, quote
from kuaishu.store import storage
from kuaishu.store.models import Dataset, DatasetVersion


@dataclass(frozen=True)
class Previous:
    """The served version, as an incremental load of the same source continues from it."""

    data_path: Path
    number: int
    rows: int
    column: str  # the incremental column its cursor belongs to
    cursor: str  # the last value it took
    sources: dict[str, str] = field(default_factory=dict)  # data item → source column
    keys: list[str] = field(default_factory=list)  # key data items


def previous_of(session: Session, source: Source | None) -> Previous | None:
    """The served version when it was made by ``source`` with a cursor on the same column."""
    column = (source.config or {}).get("incremental_column") if source else None
    if source is None or not column:
        return None
    dataset = session.get(Dataset, source.entry_id)
    version = (
        session.get(DatasetVersion, dataset.current_version_id)
        if dataset and dataset.current_version_id
        else None
    )
    if version is None or version.run_id is None:
        return None
    run = session.get(LoadRun, version.run_id)
    made: dict[str, Any] = (version.lineage or {}).get("incremental") or {}
    if run is None or run.source_id != source.id or made.get("column") != column:
        return None
    if made.get("cursor") is None:
        return None
    return Previous(
        data_path=storage.resolve(version.path) / storage.DATA_FILE,
        number=version.number,
        rows=version.row_count,
        column=str(column),
        cursor=str(made["cursor"]),
        sources={c["name"]: c["source"] for c in version.schema if c.get("source")},
        keys=list(version.key_columns or []),
    )


def served_base(session: Session, entry_id: int) -> Previous | None:
    """The served version as the base of an appending load (fixed quarantine rows, additions)."""
    dataset = session.get(Dataset, entry_id)
    version = (
        session.get(DatasetVersion, dataset.current_version_id)
        if dataset and dataset.current_version_id
        else None
    )
    if version is None:
        return None
    return Previous(
        data_path=storage.resolve(version.path) / storage.DATA_FILE,
        number=version.number,
        rows=version.row_count,
        column="",
        cursor="",
        sources={c["name"]: c["source"] for c in version.schema if c.get("source")},
        keys=list(version.key_columns or []),
    )


def append_previous(
    con: duckdb.DuckDBPyConnection, previous: Previous, columns: list[str]
) -> tuple[int, int]:
    """Stage the served rows after the new ones in ``raw``; returns (rows kept, rows replaced).

    ``columns`` are ``raw``'s columns; a source column only the old rows have is added.
    """
    path = literal(str(previous.data_path))
    wanted = dict(previous.sources)
    if not wanted:
        raise LoadError(
            "当前版本 {n} 没有记录源列，无法增量追加；请改为全量加载。",
            code="incremental_base_unusable",
            n=previous.number,
        )
    for column in wanted.values():
        if column not in columns:
            con.execute(f"ALTER TABLE {RAW_TABLE} ADD COLUMN {quote(column)} VARCHAR")
            columns.append(column)
    select = ", ".join(
        f"CAST(p.{quote(item)} AS VARCHAR) AS {quote(column)}" for item, column in wanted.items()
    )
    keys = [(item, wanted[item]) for item in previous.keys if item in wanted]
    replaced_by_new = ""
    if keys and len(keys) == len(previous.keys):
        match = " AND ".join(
            f"trim(r.{quote(column)}) = CAST(p.{quote(item)} AS VARCHAR)" for item, column in keys
        )
        replaced_by_new = f"WHERE NOT EXISTS (SELECT 1 FROM {RAW_TABLE} r WHERE {match})"
    before = _count(con)
    con.execute(
        f"INSERT INTO {RAW_TABLE} BY NAME SELECT {select} "
        f"FROM read_parquet({path}) p {replaced_by_new}"
    )
    kept = _count(con) - before
    return kept, previous.rows - kept


def _count(con: duckdb.DuckDBPyConnection) -> int:
    found = con.execute(f"SELECT count(*) FROM {RAW_TABLE}").fetchone()
    return int(found[0]) if found else 0
