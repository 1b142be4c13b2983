"""Running read plans on served versions: read-only DuckDB files, opened once per process.

A version never changes, so its ``serve.duckdb`` is opened read-only (many worker processes may
open the same file) and kept in a small LRU cache; each request takes its own cursor.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from kuaishu.clean import keyed
from kuaishu.clean.sqltext import literal
from kuaishu.settings import get_settings
from kuaishu.store import storage
from kuaishu.store.plan import ReadPlan, Rendered
from kuaishu.store.query import Total

CACHE_SIZE = 16
BATCH_ROWS = 65_536
# Up to this many stored rows an exact count costs a few milliseconds: "estimate" counts exactly.
EXACT_BELOW = 1_000_000
SAMPLE_ROWS = 200_000


class Connections:
    """Open read-only connections by file; the least recently used is dropped past ``size``."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.open: OrderedDict[str, tuple[tuple[int, int], duckdb.DuckDBPyConnection]] = (
            OrderedDict()
        )

    def cursor(self, path: Path) -> duckdb.DuckDBPyConnection:
        """A new cursor on ``path``; the file's identity guards against a replaced folder."""
        key = str(path)
        stat = os.stat(path)
        identity = (stat.st_ino, stat.st_mtime_ns)
        with self.lock:
            found = self.open.get(key)
            if found is not None and found[0] == identity:
                self.open.move_to_end(key)
                return found[1].cursor()
            if found is not None:
                # The file was replaced (a version folder made again after a crash): close the
                # old connection first, or DuckDB would hand back its cached, stale database.
                del self.open[key]
                found[1].close()
            con = _connect(path)
            self.open[key] = (identity, con)
            self.open.move_to_end(key)
            while len(self.open) > self.size:
                # Dropped, not closed: cursors other requests still hold keep working.
                self.open.popitem(last=False)
            return con.cursor()

    def clear(self) -> None:
        with self.lock:
            self.open.clear()


def spill_dir() -> Path:
    """Where DuckDB spills what does not fit in memory: under the data dir, never inside an
    immutable version folder."""
    spill = storage.data_root() / "tmp" / "duckdb"
    spill.mkdir(parents=True, exist_ok=True)
    return spill


def serving_config() -> dict[str, str | bool | int | float | list[str]]:
    """DuckDB settings of every connection reading versions: the serving memory limit, and a
    spill folder under the data dir — never inside an immutable version folder."""
    return {
        "memory_limit": f"{get_settings().serve_memory_mb}MB",
        "temp_directory": str(spill_dir()),
    }


def confine(con: duckdb.DuckDBPyConnection, reach: Iterable[Path], *, lock: bool = True) -> None:
    """From now on ``con`` reaches only the files and folders in ``reach`` (a folder with all it
    holds), besides the database files it has open, and loads no extension: external access off,
    which DuckDB never lets a statement turn back on, nor widen what is allowed. With ``lock`` no
    setting at all can change any more. Even an expression injected into a read then reads and
    writes nothing else (docs/decisions/0016-parameters-and-duckdb-lockdown.md)."""
    folders: set[str] = set()
    files: set[str] = set()
    for path in reach:
        if path.is_dir():
            folders.add(str(path.resolve()).rstrip(os.sep) + os.sep)  # a prefix, not "v1" ⊂ "v10"
        else:
            files.add(str(path.resolve()))
    con.execute(f"SET allowed_directories = [{', '.join(map(literal, sorted(folders)))}]")
    con.execute(f"SET allowed_paths = [{', '.join(map(literal, sorted(files)))}]")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET enable_external_access = false")
    if lock:
        con.execute("SET lock_configuration = true")


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path), read_only=True, config=serving_config())
    # The keyed masks (SM3 hash, pseudonym, SM4) are functions of the connection; its cursors
    # inherit them. Decryption is never registered on a serving connection.
    keyed.register_udfs(con)
    # A read reaches its version's database (open already), nothing else. DuckDB spills to its
    # temp_directory whatever the allowed list says, and the list leaves it out, so no expression
    # can read what other reads spilled.
    confine(con, [])
    return con


CONNECTIONS = Connections()


def cursor(folder: str) -> duckdb.DuckDBPyConnection:
    """A cursor on the version stored in ``folder`` (relative to the data dir)."""
    return CONNECTIONS.cursor(storage.resolve(folder) / storage.SERVE_FILE)


@dataclass(frozen=True)
class Page:
    """One page of rows; ``last`` holds the sort values and rowid of its last row when more follow."""

    rows: list[tuple[Any, ...]]
    more: bool
    last: tuple[Any, ...] | None
    total: int | None = None
    total_exact: bool = False


def fetch_page(cur: duckdb.DuckDBPyConnection, plan: ReadPlan) -> Page:
    """The plan's window, asking one row more to know whether another page follows."""
    limit = plan.limit if plan.limit is not None else BATCH_ROWS
    rendered = plan.window(limit + 1, plan.offset).select(cursor_columns=True)
    rows: list[tuple[Any, ...]] = cur.execute(rendered.sql, rendered.params).fetchall()
    more = len(rows) > limit
    del rows[limit:]
    if not plan.keyed:
        return Page(rows=rows, more=more, last=None)
    width = len(plan.outputs)
    last = rows[-1][width:] if more and rows else None
    return Page(rows=[row[:width] for row in rows], more=more, last=last)


def count(cur: duckdb.DuckDBPyConnection, plan: ReadPlan) -> int:
    rendered = plan.count()
    found = cur.execute(rendered.sql, rendered.params).fetchone()
    return int(found[0]) if found else 0


def total(
    cur: duckdb.DuckDBPyConnection, plan: ReadPlan, mode: Total, *, stored_rows: int, page: Page
) -> tuple[int | None, bool]:
    """The plan's total as ``mode`` asks, and whether it is exact."""
    if mode == Total.NONE:
        return None, False
    if plan.offset == 0 and plan.after is None and not page.more:
        return len(page.rows), True  # the first page holds everything
    if plan.keyed and not plan.where:
        return stored_rows, True
    return estimated(cur, plan, mode, stored_rows=stored_rows)


def estimated(
    cur: duckdb.DuckDBPyConnection, plan: ReadPlan, mode: Total, *, stored_rows: int
) -> tuple[int, bool]:
    """Exact when asked or cheap; else scaled up from a block sample (rows, not groups)."""
    if plan.keyed and not plan.where:
        return stored_rows, True
    if mode == Total.EXACT or stored_rows <= EXACT_BELOW or not plan.keyed:
        return count(cur, plan), True
    percent = min(100.0, max(0.1, 100.0 * SAMPLE_ROWS / stored_rows))
    rendered = plan.sampled_count(percent)
    matched, sampled = cur.execute(rendered.sql, rendered.params).fetchone() or (0, 0)
    if not sampled:
        return count(cur, plan), True
    return round(int(matched) * stored_rows / int(sampled)), False


def batches(
    cur: duckdb.DuckDBPyConnection, rendered: Rendered, rows: int = BATCH_ROWS
) -> pa.RecordBatchReader:
    """The rows of ``rendered`` as Arrow record batches, produced as they are read."""
    return cur.sql(rendered.sql, params=rendered.params).to_arrow_reader(rows)


def copy_to(folder: str, rendered: Rendered, target: Path, options: str) -> int:
    """DuckDB's own writer, ``COPY (plan) TO target``, on a connection of its own: it reads the
    version and writes into ``target``'s folder only (a serving connection writes nothing)."""
    con = duckdb.connect(config=serving_config())
    try:
        source = storage.resolve(folder) / storage.SERVE_FILE
        con.execute(f"ATTACH {literal(str(source))} AS version (READ_ONLY)")
        con.execute("USE version")
        keyed.register_udfs(con)
        confine(con, [target.parent])  # a private folder made for this export
        result = con.execute(
            f"COPY ({rendered.sql}) TO {literal(str(target))} ({options})", rendered.params
        )
        found = result.fetchone()
        return int(found[0]) if found else 0
    finally:
        con.close()
