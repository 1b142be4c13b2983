"""Download formats, each a generator of byte chunks that does its work only once iterated.

CSV, JSON, JSON Lines and filtered Parquet are written by DuckDB's own writers (``COPY (plan) TO``)
into a temporary file that is then streamed and deleted — about ten times faster than encoding
in Python. XML and XLSX are encoded from Arrow record batches; XLSX goes through xlsxwriter's
constant-memory mode. Nothing is ever held whole in memory.

Every format returns the stored values exactly (ADR 0009): the CSV is DuckDB's, byte for byte, with
no BOM and no formula guard; XLSX text is written as text cells (never a formula, no apostrophe)
and whole numbers past 15 digits as text. The "Excel" CSV (``variant=excel``) is the one that
changes what it writes: a BOM, and a quote before header names and text cells a spreadsheet would
run as a formula.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote as percent_encode
from xml.sax.saxutils import escape, quoteattr

import xlsxwriter

from kuaishu.collect.raw import quote
from kuaishu.store import engine, storage
from kuaishu.store.plan import FORMULA_CHARS, TABLE, Output, ReadPlan

CHUNK = 1 << 20
BOM = b"\xef\xbb\xbf"
# Excel's last row is 1,048,576; one is the header. Past it the rows continue on a new sheet.
SHEET_ROWS = 1_048_575
SHEET_NAME = "数据"
# Excel keeps 15 significant digits of a number: a longer whole number (an ID) is written as text.
EXACT_DIGITS = 15


class Format(StrEnum):
    CSV = "csv"
    JSON = "json"
    JSONL = "jsonl"
    XML = "xml"
    XLSX = "xlsx"
    PARQUET = "parquet"


class Variant(StrEnum):
    """A named way of writing a format for one program: ``excel`` is the CSV for Excel."""

    EXCEL = "excel"


MEDIA_TYPES = {
    Format.CSV: "text/csv; charset=utf-8",
    Format.JSON: "application/json",
    Format.JSONL: "application/x-ndjson",
    Format.XML: "application/xml; charset=utf-8",
    Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    Format.PARQUET: "application/vnd.apache.parquet",
}
COPY_OPTIONS = {
    Format.CSV: "FORMAT csv, HEADER, DELIMITER ','",
    Format.JSON: "FORMAT json, ARRAY true",
    Format.JSONL: "FORMAT json",
    Format.PARQUET: "FORMAT parquet, COMPRESSION zstd",
}


def content_disposition(filename: str, fallback: str) -> str:
    """``attachment`` with an ASCII name for old clients and the UTF-8 name (RFC 6266, 5987)."""
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", fallback)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{percent_encode(filename, safe='')}"


@contextmanager
def scratch() -> Iterator[Path]:
    """A private folder in the data dir (not /tmp, which may be a small RAM disk), then gone."""
    root = storage.data_root() / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="export-", dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def read_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            yield block


def chunks(
    fmt: Format,
    folder: str,
    plan: ReadPlan,
    *,
    bom: bool = False,
    variant: Variant | None = None,
) -> Iterator[bytes]:
    """The download of ``plan`` over the version in ``folder`` as ``fmt`` (``variant`` applies to
    CSV only)."""
    if fmt == Format.PARQUET and _whole(plan, folder):
        return read_chunks(storage.resolve(folder) / storage.DATA_FILE)
    if fmt == Format.XML:
        return xml_chunks(folder, plan)
    if fmt == Format.XLSX:
        return xlsx_chunks(folder, plan)
    if fmt == Format.CSV and variant == Variant.EXCEL:
        options = COPY_OPTIONS[fmt].replace(", HEADER", ", HEADER false")
        return copied(folder, plan, options, True, BOM + excel_header(plan.names))
    return copied(folder, plan, COPY_OPTIONS[fmt], False, BOM if bom else b"")


def excel_header(names: list[str]) -> bytes:
    """The Excel CSV's header line, with the cells' formula guard on each name."""
    line = io.StringIO()
    guarded = ["'" + name if name.startswith(FORMULA_CHARS) else name for name in names]
    csv.writer(line, lineterminator="\n").writerow(guarded)
    return line.getvalue().encode()


def _whole(plan: ReadPlan, folder: str) -> bool:
    """The stored Parquet is the answer: every stored column as stored, every row, in order."""
    import pyarrow.parquet as pq

    if plan.where or plan.order or plan.group_by or plan.distinct or plan.limit or plan.offset:
        return False
    stored = pq.read_schema(storage.resolve(folder) / storage.DATA_FILE).names
    plain = all(o.sql == f"{TABLE}.{quote(o.name)}" for o in plan.outputs)
    return plain and plan.names == stored


def copied(
    folder: str, plan: ReadPlan, options: str, safe: bool, prefix: bytes = b""
) -> Iterator[bytes]:
    with scratch() as tmp:
        target = tmp / "export"
        engine.copy_to(folder, plan.select(formula_safe=safe), target, options)
        if prefix:
            yield prefix
        yield from read_chunks(target)


# XML -------------------------------------------------------------------------------------------

# XML 1.0 (5th edition) name characters, written as escapes for the regular expression.
_NAME_START = (
    r"A-Z_a-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d"
    r"\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd"
)
_NAME_CHAR = _NAME_START + r"\-.0-9\u00b7\u0300-\u036f\u203f-\u2040"
_NOT_NAME_CHAR = re.compile(f"[^{_NAME_CHAR}]")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def element_names(names: list[str]) -> list[str]:
    """An XML element name for each column: invalid characters become ``_``, kept unique."""
    made: list[str] = []
    for name in names:
        element = _NOT_NAME_CHAR.sub("_", name) or "_"
        if not re.match(f"[{_NAME_START}]", element):
            element = "_" + element
        base, n = element, 2
        while element in made:
            element, n = f"{base}_{n}", n + 1
        made.append(element)
    return made


def xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return escape(_NOT_XML.sub("\ufffd", str(value)))


def xml_chunks(folder: str, plan: ReadPlan) -> Iterator[bytes]:
    """``<dataset><fields>…</fields><rows><row><列名>值</列名>…</row></rows></dataset>``."""
    names = plan.names
    elements = element_names(names)
    head = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    head.append('<dataset xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n<fields>\n')
    for output, element in zip(plan.outputs, elements, strict=True):
        head.append(
            f"<field name={quoteattr(output.name)} element={quoteattr(element)} "
            f"type={quoteattr(output.type)}/>\n"
        )
    head.append("</fields>\n<rows>\n")
    yield "".join(head).encode()
    opened = [f"<{e}>" for e in elements]
    closed = [f"</{e}>" for e in elements]
    nil = [f'<{e} xsi:nil="true"/>' for e in elements]
    cur = engine.cursor(folder)
    try:
        for batch in engine.batches(cur, plan.select()):
            columns = [column.to_pylist() for column in batch.columns]
            parts: list[str] = []
            for row in zip(*columns, strict=True):
                parts.append("<row>")
                for i, value in enumerate(row):
                    if value is None:
                        parts.append(nil[i])
                    else:
                        parts.append(opened[i] + xml_text(value) + closed[i])
                parts.append("</row>\n")
            yield "".join(parts).encode()
    finally:
        cur.close()
    yield b"</rows>\n</dataset>\n"


# XLSX ------------------------------------------------------------------------------------------

Writer = Callable[[Any, int, int, Any], object]


def _cell_writers(book: Any, outputs: tuple[Output, ...]) -> list[Writer]:
    """One writer per column, chosen by type: text is never read as a formula or a number."""
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    moment = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})

    def text(ws: Any, r: int, c: int, v: Any) -> object:
        return ws.write_string(r, c, v if isinstance(v, str) else str(v))

    def number(ws: Any, r: int, c: int, v: Any) -> object:
        if isinstance(v, int | Decimal) and len(str(abs(v)).replace(".", "")) > EXACT_DIGITS:
            return ws.write_string(r, c, str(v))  # a number would lose digits
        return ws.write_number(r, c, float(v) if isinstance(v, Decimal) else v)

    def when(ws: Any, r: int, c: int, v: Any) -> object:
        return ws.write_datetime(r, c, v, moment if isinstance(v, datetime) else day)

    def boolean(ws: Any, r: int, c: int, v: Any) -> object:
        return ws.write_boolean(r, c, v)

    writers: list[Writer] = []
    for output in outputs:
        kind = output.type.split("(")[0]
        if kind in ("DATE", "TIMESTAMP"):
            writers.append(when)
        elif kind == "BOOLEAN":
            writers.append(boolean)
        elif kind in ("DOUBLE", "FLOAT", "BIGINT", "INTEGER", "DECIMAL"):
            writers.append(number)
        else:
            writers.append(text)
    return writers


def _new_sheet(book: Any, number: int, names: list[str], bold: Any) -> Any:
    sheet = book.add_worksheet(SHEET_NAME if number == 1 else f"{SHEET_NAME}{number}")
    sheet.freeze_panes(1, 0)
    for c, name in enumerate(names):
        sheet.write_string(0, c, name, bold)
    return sheet


def write_xlsx(folder: str, plan: ReadPlan, target: Path) -> int:
    """Write ``plan`` to ``target`` row by row; returns the data rows written."""
    book = xlsxwriter.Workbook(
        str(target),
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    bold = book.add_format({"bold": True})
    writers = _cell_writers(book, plan.outputs)
    sheets, sheet = 1, _new_sheet(book, 1, plan.names, bold)
    row, written = 0, 0
    cur = engine.cursor(folder)
    try:
        for batch in engine.batches(cur, plan.select()):
            columns = [column.to_pylist() for column in batch.columns]
            for values in zip(*columns, strict=True):
                if row == SHEET_ROWS:
                    sheets += 1
                    sheet, row = _new_sheet(book, sheets, plan.names, bold), 0
                row += 1
                for c, value in enumerate(values):
                    if value is not None:
                        writers[c](sheet, row, c, value)
                written += 1
    finally:
        cur.close()
        book.close()
    return written


def xlsx_chunks(folder: str, plan: ReadPlan) -> Iterator[bytes]:
    with scratch() as tmp:
        target = tmp / "export.xlsx"
        write_xlsx(folder, plan, target)
        yield from read_chunks(target)
