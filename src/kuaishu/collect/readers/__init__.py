"""File readers: any supported file → the ``raw`` table of :mod:`kuaishu.collect.raw`.

The format is taken from the bytes, not the name (:mod:`.detect`); then one reader per family:
delimited text (:mod:`.delimited`), spreadsheets (:mod:`.sheets`), JSON (:mod:`.jsonfile`), XML
(:mod:`.xmlfile`), Parquet (:mod:`.parquet`). Temporary files go to a folder beside the load's
DuckDB database and are gone when the read returns.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from kuaishu.collect.raw import LoadError, Progress, RawTable
from kuaishu.collect.readers.common import Context
from kuaishu.collect.readers.delimited import read_delimited
from kuaishu.collect.readers.detect import FAMILY, Kind, detect
from kuaishu.collect.readers.jsonfile import read_json
from kuaishu.collect.readers.parquet import read_parquet
from kuaishu.collect.readers.sheets import read_sheet
from kuaishu.collect.readers.xmlfile import read_xml

__all__ = ["read_file"]


def read_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    filename: str,
    options: dict[str, Any] | None = None,
    progress: Progress,
) -> RawTable:
    """Stage ``path`` (named ``filename`` by its sender) as text rows in ``raw``.

    Options: ``sheet`` (name or 1-based number), ``records_path`` (JSON, dotted), ``record_tag``
    (XML), ``delimiter`` and ``encoding`` (text) — each only needed when the guess is wrong.
    """
    if path.stat().st_size == 0:
        raise LoadError("文件为空。", code="empty_file")
    found = detect(path, filename)
    with _work_folder(con) as work:
        ctx = Context(filename=filename, progress=progress, work=work, options=options or {})
        raw = _read(con, path, found.kind, ctx)
    raw.notes[:0] = found.notes
    return raw


def _read(con: duckdb.DuckDBPyConnection, path: Path, kind: Kind, ctx: Context) -> RawTable:
    family = FAMILY[kind]
    if family == "text":
        return read_delimited(con, path, ctx)
    if family == "sheet":
        return read_sheet(con, path, kind, ctx)
    if family == "json":
        return read_json(con, path, kind, ctx)
    if family == "xml":
        return read_xml(con, path, ctx)
    return read_parquet(con, path, ctx)


@contextmanager
def _work_folder(con: duckdb.DuckDBPyConnection) -> Iterator[Path]:
    """Beside the load's database (the staging folder), or a system temporary folder."""
    row = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    base = Path(row[0]).parent if row and row[0] else None
    folder = Path(tempfile.mkdtemp(prefix="kuaishu-read-", dir=base))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
