"""Helpers for the job tests: entries, generated CSV files, queued loads, waiting on runs."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import duckdb
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.collect import services
from kuaishu.collect.enums import FINISHED
from kuaishu.collect.models import LoadRun
from kuaishu.db import transaction
from kuaishu.store import services as versions
from kuaishu.store import storage
from kuaishu.store.models import DatasetVersion
from tests import factories

ITEMS = [("编号", "C"), ("地区", "C"), ("人口", "N"), ("日期", "D")]
T = TypeVar("T")


@dataclass
class Entry:
    id: int
    code: str


def make_entry(factory: sessionmaker[Session], *, keep: int | None = None) -> Entry:
    """A published entry keyed by 编号; ``keep`` sets how many versions it keeps on disk."""
    with transaction(factory) as session:
        entry = factories.published_entry(session, items=ITEMS, keys=("编号",))
        if keep is not None:
            versions.dataset_for(session, entry.id).keep_versions = keep
        return Entry(id=entry.id, code=entry.code)


def write_csv(path: Path, rows: int, *, start: int = 0) -> Path:
    """``rows`` generated rows, written by DuckDB (millions take a second or two)."""
    with duckdb.connect() as con:
        con.execute(
            f"""COPY (
                SELECT printf('ID%010d', i) AS 编号,
                       '地区' || (i % 97) AS 地区,
                       (i * 7 % 100000) AS 人口,
                       DATE '2020-01-01' + CAST(i % 1000 AS INTEGER) AS 日期
                FROM range({start}, {start + rows}) t(i)
            ) TO '{path}' (HEADER, DELIMITER ',')"""  # noqa: S608 - our integers, our path
        )
    return path


def queue_file(factory: sessionmaker[Session], entry: Entry, csv: Path) -> int:
    """A queued load of a copy of ``csv`` (the run takes its input file away)."""
    copy = csv.with_name(f"{csv.stem}-{time.monotonic_ns()}{csv.suffix}")
    shutil.copyfile(csv, copy)
    with transaction(factory) as session:
        entry_row = services.loadable_entry(session, entry_id=entry.id)
        run = services.queue_load(
            session, actor=factories.ROOT, entry=entry_row, upload=copy, filename=csv.name
        )
        return run.id


def run_of(factory: sessionmaker[Session], run_id: int) -> LoadRun:
    with transaction(factory) as session:
        return services.get_run(session, run_id)


def wait_for(what: Callable[[], T | None], *, timeout: float = 120, message: str = "") -> T:
    """Poll ``what`` until it gives something; fail (not hang) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = what()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting: {message}"
        time.sleep(0.05)


def finished(factory: sessionmaker[Session], run_id: int, timeout: float = 120) -> LoadRun:
    def done() -> LoadRun | None:
        run = run_of(factory, run_id)
        return run if run.status in FINISHED else None

    return wait_for(done, timeout=timeout, message=f"run {run_id} to finish")


def served(factory: sessionmaker[Session], entry: Entry) -> DatasetVersion:
    with transaction(factory) as session:
        return versions.current_version(session, entry.id)


def rows_of(version: DatasetVersion) -> int:
    """Rows in the version's Parquet file, read as any engine would."""
    path = storage.resolve(version.path) / storage.DATA_FILE
    with duckdb.connect() as con:
        found = con.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchone()
    assert found is not None
    return int(found[0])


def version_folders(entry: Entry) -> set[str]:
    """Folders a reader could take for a version (staging folders start with a dot)."""
    folder = storage.versions_dir(entry.id)
    if not folder.exists():
        return set()
    return {storage.relative(p) for p in folder.iterdir() if not p.name.startswith(".")}


def staging_folders(entry: Entry) -> list[Path]:
    folder = storage.versions_dir(entry.id)
    return [p for p in folder.iterdir() if p.name.startswith(".")] if folder.exists() else []


def referenced(factory: sessionmaker[Session], entry: Entry) -> set[str]:
    with transaction(factory) as session:
        return versions.referenced_paths(session, entry.id)


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def kuaishu_env(engine: Engine, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``kuaishu`` subprocess on this test's database and data folder."""
    env = {**os.environ, "KUAISHU_DATABASE_URL": url_of(engine), "KUAISHU_DATA_DIR": str(data_dir)}
    env.update(extra)
    return env


KUAISHU = [sys.executable, "-m", "kuaishu.cli"]
