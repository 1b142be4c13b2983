"""File readers: any supported file → the ``raw`` table of :mod:`kuaishu.collect.raw`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from kuaishu.collect.raw import RAW_TABLE, LoadError, Progress, RawTable, check_headers, quote


def read_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    filename: str,
    options: dict[str, Any] | None = None,
    progress: Progress,
) -> RawTable:
    """Stage ``path`` (named ``filename`` by its sender) as text rows in ``raw``."""
    if path.stat().st_size == 0:
        raise LoadError("文件为空。", code="empty_file")
    con.execute(
        f"CREATE TABLE {RAW_TABLE} AS SELECT * FROM read_csv(?, all_varchar=true, header=true)",
        [str(path)],
    )
    columns = [row[0] for row in con.execute(f"DESCRIBE {RAW_TABLE}").fetchall()]
    check_headers(columns)
    rows = int(con.execute(f"SELECT count(*) FROM {RAW_TABLE}").fetchone()[0])  # type: ignore[index]
    progress(rows, rows)
    _ = quote
    return RawTable(columns=columns, rows=rows, line_sql="rowid + 2", encoding="utf-8")
