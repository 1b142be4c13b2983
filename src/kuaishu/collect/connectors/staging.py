"""Values as text, and batches of them appended to ``raw`` through Arrow (one INSERT a batch).

Connectors receive typed values (database rows, JSON records); the load's contract is text, with
types coming from the catalog's data items. Rendering is fixed so that a value converts back to
what it was: dates ISO, integers without a trailing ``.0``, booleans ``true``/``false``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from kuaishu.collect.raw import RAW_TABLE, LoadError, Progress, check_headers, quote

CHINA = timezone(timedelta(hours=8))
BATCH_VIEW = "_kuaishu_batch"


def _default(value: Any) -> Any:
    """orjson's fallback for values inside nested JSON (Decimal, bytes, …)."""
    text = text_of(value)
    return text if text is not None else None


def _float(value: float) -> str:
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _decimal(value: Decimal) -> str:
    if value.is_finite() and value == value.to_integral_value():
        return str(int(value))
    return format(value, "f")


def text_of(value: Any) -> str | None:
    """``value`` as the text a data item converts back from; None stays None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, datetime):
        # An instant is shown on the calendar departments work to (China time), offset kept.
        moment = value.astimezone(CHINA) if value.tzinfo else value
        return moment.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict | list | tuple):
        return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()
    return str(value)


class Stager:
    """Builds ``raw`` batch by batch; a column first seen in a later batch is added then."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        progress: Progress,
        *,
        where: str = "表头",
        total: int | None = None,
    ) -> None:
        self.con = con
        self.progress = progress
        self.where = where
        self.total = total
        self.columns: list[str] = []
        self._folded: dict[str, str] = {}
        self.rows = 0

    def _add_columns(self, names: Sequence[str]) -> None:
        fresh = [name for name in names if name not in self._folded.values()]
        if not fresh:
            return
        check_headers(self.columns + fresh, where=self.where)
        for name in fresh:
            # DuckDB folds identifier case; two names differing only in case cannot both exist.
            other = self._folded.get(name.lower())
            if other is not None:
                raise LoadError(
                    "{where}中列名“{a}”与“{b}”仅大小写不同，无法同时保存。",
                    code="duplicate_header",
                    details={"columns": [other, name]},
                    where=self.where,
                    a=other,
                    b=name,
                )
            self._folded[name.lower()] = name
        if not self.columns:
            spec = ", ".join(f"{quote(name)} VARCHAR" for name in fresh)
            self.con.execute(f"CREATE TABLE {RAW_TABLE} ({spec})")
        else:
            for name in fresh:
                self.con.execute(f"ALTER TABLE {RAW_TABLE} ADD COLUMN {quote(name)} VARCHAR")
        self.columns.extend(fresh)

    def add(self, columns: Sequence[str], data: Sequence[Sequence[str | None]]) -> None:
        """Append one batch given column by column (``data[i]`` holds ``columns[i]``'s values)."""
        self._add_columns(columns)
        count = len(data[0]) if data else 0
        if count:
            table = pa.table(
                [pa.array(values, type=pa.string()) for values in data], names=list(columns)
            )
            self.con.register(BATCH_VIEW, table)
            try:
                self.con.execute(f"INSERT INTO {RAW_TABLE} BY NAME SELECT * FROM {BATCH_VIEW}")
            finally:
                self.con.unregister(BATCH_VIEW)
        self.rows += count
        self.progress(self.rows, self.total)

    def add_records(self, records: Sequence[dict[str, Any]]) -> None:
        """Append JSON objects: the union of their keys, in first-seen order, are the columns."""
        names: dict[str, None] = {}
        for record in records:
            names.update(dict.fromkeys(record))
        columns = list(names)
        self.add(columns, [[text_of(record.get(name)) for record in records] for name in columns])
