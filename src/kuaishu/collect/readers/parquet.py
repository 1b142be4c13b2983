"""Parquet: typed columns, staged as text like every other source (types come from the catalog)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from kuaishu.collect.raw import RAW_TABLE, LoadError, RawTable, quote
from kuaishu.collect.readers.common import Context, check_columns, execute_with_progress
from kuaishu.errors import storage_problem

NESTED = ("STRUCT", "MAP", "UNION")


def _as_text(source: str, name: str, kind: str) -> str:
    """Nested values as JSON text; everything else cast (dates ISO, numbers as written)."""
    column = quote(source)
    if kind.startswith(NESTED) or kind.endswith("]"):
        return f"CAST(to_json({column}) AS VARCHAR) AS {quote(name)}"
    return f"CAST({column} AS VARCHAR) AS {quote(name)}"


def read_parquet(con: duckdb.DuckDBPyConnection, path: Path, ctx: Context) -> RawTable:
    """Stage a Parquet file, every column cast to text."""
    try:
        described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
        rows_total = con.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchone()
    except duckdb.InterruptException:
        raise
    except duckdb.Error as error:
        raise _damaged(ctx.filename, error) from None
    columns = check_columns([str(row[0]) for row in described])
    total = int(rows_total[0]) if rows_total else None
    select = ", ".join(
        _as_text(str(row[0]), name, str(row[1]))
        for name, row in zip(columns, described, strict=True)
    )
    sql = f"CREATE TABLE {RAW_TABLE} AS SELECT {select} FROM read_parquet(?)"
    try:
        execute_with_progress(con, sql, [str(path)], progress=ctx.progress, total=total)
    except duckdb.InterruptException:
        raise
    except duckdb.Error as error:
        raise storage_problem(error) or _damaged(ctx.filename, error) from None
    counted = con.execute(f"SELECT count(*) FROM {RAW_TABLE}").fetchone()
    rows = int(counted[0]) if counted else 0
    ctx.progress(rows, rows)
    return RawTable(columns=columns, rows=rows, line_sql="rowid + 1", line_label="条")


def _damaged(filename: str, error: duckdb.Error) -> LoadError:
    return LoadError(
        "文件“{name}”不是完整的 Parquet 文件（可能已损坏或不完整）。",
        code="parquet_invalid",
        details={"file": filename, "reader": str(error).splitlines()[0][:300]},
        name=filename,
    )
