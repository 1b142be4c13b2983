"""Source line numbers when rows and lines part ways: blank lines and values spanning lines.

DuckDB skips blank lines and counts a quoted multi-line value as one line. Both are rare, and
the line count after the scan tells whether the file has any; only then does one pass here read
the file with Python's csv module to find where each row really starts.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from kuaishu.collect.raw import LINE_COLUMN, RAW_TABLE, LoadError, quote
from kuaishu.collect.readers.layout import Layout

SHIFTS_VIEW = "_kuaishu_line_shifts"


def _records(source: Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Each record with the physical line it starts on."""
    with source.open(encoding="utf-8-sig", newline="\n") as fh:
        reader = csv.reader(fh, delimiter=delimiter, strict=False)
        end = 0
        for fields in reader:
            yield end + 1, fields
            end = reader.line_num


def physical_line(source: Path, delimiter: str, counted: int) -> int:
    """The physical line of the record DuckDB calls line ``counted`` (it counts records)."""
    for n, (start, _fields) in enumerate(_records(source, delimiter), start=1):
        if n == counted:
            return start
    return counted


def relocate(con: duckdb.DuckDBPyConnection, source: Path, layout: Layout, rows: int) -> str:
    """Add a ``_line`` column with each row's real start line; return the SQL for it."""
    starts: list[int] = []  # row numbers where the line offset changes
    shifts: list[int] = []
    row = 0
    for start, fields in _records(source, layout.delimiter):
        if start < layout.data_line or not fields:
            continue
        if not shifts or start - row != shifts[-1]:
            starts.append(row)
            shifts.append(start - row)
        row += 1
        if row == rows:
            break
    if row != rows:
        raise LoadError(
            "无法确定各行在文件中的行号：读到 {found} 行，应为 {rows} 行。",
            code="csv_invalid",
            details={"found": row, "rows": rows},
            found=row,
            rows=rows,
        )
    con.register(SHIFTS_VIEW, pa.table({"start": starts, "shift": shifts}))
    try:
        con.execute(
            f"CREATE TABLE _raw_lined AS SELECT r.*, r.rowid + s.shift AS {quote(LINE_COLUMN)} "
            f"FROM {RAW_TABLE} r ASOF JOIN {SHIFTS_VIEW} s ON r.rowid >= s.start ORDER BY r.rowid"
        )
    finally:
        con.unregister(SHIFTS_VIEW)
    con.execute(f"DROP TABLE {RAW_TABLE}")
    con.execute(f"ALTER TABLE _raw_lined RENAME TO {RAW_TABLE}")
    return LINE_COLUMN
