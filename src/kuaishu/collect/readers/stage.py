"""Rows built in Python, appended to ``raw`` in Arrow batches (one INSERT a batch, never a row).

Used by the readers that cannot hand the file to DuckDB whole: spreadsheets, JSON found under a
records path, XML. Each row carries its place in the source in the ``_line`` column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta

import duckdb
import pyarrow as pa

from kuaishu.collect.raw import LINE_COLUMN, RAW_TABLE, check_headers, quote
from kuaishu.collect.readers.common import check_columns, same_name, too_wide

BATCH_VIEW = "_kuaishu_reader_batch"
# A batch is bounded in cells, not rows, so that a 10,000-column sheet stays small in memory.
BATCH_CELLS = 1_000_000


def text_of(value: object) -> str | None:
    """A cell or JSON value as text; integral floats lose their ``.0``, dates are ISO."""
    if value is None or isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        # Excel shows 15 significant digits; 0.1 + 0.2 is 0.3 to whoever typed it.
        return format(value, ".15g")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


class Stager:
    """Collects rows column by column and appends them to ``raw`` in batches."""

    def __init__(self, con: duckdb.DuckDBPyConnection, columns: Sequence[str] = ()) -> None:
        self.con = con
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.folded: dict[str, int] = {}
        self.cells: list[list[str | None]] = []
        self.lines: list[int] = []
        self.rows = 0
        self.defined: int | None = None  # columns already in ``raw``; None: no table yet
        for name in columns:
            self.add_column(name)

    def add_column(self, name: str) -> int:
        """A new column, NULL in every row staged before it appeared."""
        if name == LINE_COLUMN:
            check_columns([name], checked=True)
        too_wide(len(self.names) + 1)
        key = name.strip().casefold()
        if key in self.folded:
            other = self.folded[key]
            raise same_name(self.names[other], name, (other + 1, len(self.names) + 1))
        self.folded[key] = len(self.names)
        self.index[name] = len(self.names)
        self.names.append(name)
        self.cells.append([None] * len(self.lines))
        return self.index[name]

    def _define(self) -> None:
        """Create ``raw`` with every column known so far, or add those that came since.

        One CREATE for all columns: an ALTER per column costs time growing with the table's
        width, and 10,000 of them took half a minute.
        """
        if self.defined is None:
            columns = [f"{quote(LINE_COLUMN)} BIGINT", *(f"{quote(n)} VARCHAR" for n in self.names)]
            self.con.execute(f"CREATE TABLE {RAW_TABLE} ({', '.join(columns)})")
        else:
            for name in self.names[self.defined :]:
                self.con.execute(f"ALTER TABLE {RAW_TABLE} ADD COLUMN {quote(name)} VARCHAR")
        self.defined = len(self.names)

    def append(self, values: Sequence[str | None], line: int) -> None:
        """One row whose values are in column order (missing trailing values are NULL)."""
        for n, column in enumerate(self.cells):
            column.append(values[n] if n < len(values) else None)
        self._added(line)

    def append_record(self, record: Mapping[str, str | None], line: int) -> None:
        """One row given by column name; names not seen before become new columns."""
        for name in record:
            if name not in self.index:
                self.add_column(name)
        for name, column in zip(self.names, self.cells, strict=True):
            column.append(record.get(name))
        self._added(line)

    def _added(self, line: int) -> None:
        self.lines.append(line)
        if len(self.lines) * max(1, len(self.names)) >= BATCH_CELLS:
            self.flush()

    def flush(self) -> None:
        if self.defined != len(self.names):
            self._define()
        if not self.lines:
            return
        arrays = {LINE_COLUMN: pa.array(self.lines, pa.int64())}
        for name, column in zip(self.names, self.cells, strict=True):
            arrays[name] = pa.array(column, pa.string())
        batch = pa.table(arrays)
        self.con.register(BATCH_VIEW, batch)
        try:
            self.con.execute(f"INSERT INTO {RAW_TABLE} BY NAME SELECT * FROM {BATCH_VIEW}")
        finally:
            self.con.unregister(BATCH_VIEW)
        self.rows += len(self.lines)
        self.lines = []
        self.cells = [[] for _ in self.names]

    def finish(self) -> list[str]:
        """Append what is left; the column names, checked."""
        self.flush()
        cleaned = check_headers(self.names)
        for old, new in zip(self.names, cleaned, strict=True):
            if old != new:  # names are trimmed, as a header's are
                self.con.execute(
                    f"ALTER TABLE {RAW_TABLE} RENAME COLUMN {quote(old)} TO {quote(new)}"
                )
        return cleaned
