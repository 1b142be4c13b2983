"""Web probe (网页表格): the tables of an HTML page, read with the standard library's parser.

Merged cells are unfolded onto the grid: a ``rowspan`` repeats its value down (a region named
once for several rows), a ``colspan`` in the header repeats the label across so that stacked
header rows combine ("人口-男"); a row that is one cell across the whole table is a sub-heading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import duckdb
import pyarrow as pa

from kuaishu.collect.connectors.fetch import Request, send
from kuaishu.collect.connectors.http_api import check_url
from kuaishu.collect.models import Source
from kuaishu.collect.raw import LINE_COLUMN, RAW_TABLE, LoadError, Progress, RawTable, Skipped
from kuaishu.errors import ValidationFailed
from kuaishu.security import egress

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.I)
_GB = {"gb2312", "gbk", "gb18030", "x-gbk", "cp936"}


@dataclass
class Cell:
    text: str
    header: bool
    rowspan: int = 1
    colspan: int = 1


@dataclass
class Table:
    rows: list[list[Cell]] = field(default_factory=list)
    head_rows: int = 0  # rows inside <thead>

    def text(self) -> str:
        return " ".join(cell.text for row in self.rows for cell in row)


def _span(value: str | None) -> int:
    try:
        return max(1, min(int(str(value).strip()), 1000))
    except ValueError:
        return 1


@dataclass
class _Open:
    """A table being read, with the cell being read in it (a nested table pauses that cell)."""

    table: Table
    cell: Cell | None = None
    parts: list[str] = field(default_factory=list)
    in_head: bool = False


class TableParser(HTMLParser):
    """Collects every <table> in document order; a nested table is a table of its own."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[Table] = []
        self._open: list[_Open] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            table = Table()
            self.tables.append(table)
            self._open.append(_Open(table))
            return
        if not self._open:
            return
        now = self._open[-1]
        if tag == "thead":
            now.in_head = True
        elif tag == "tr":
            self._close_cell()
            now.table.rows.append([])
            now.table.head_rows += now.in_head
        elif tag in ("td", "th"):
            self._close_cell()
            found = dict(attrs)
            now.cell = Cell(
                "", tag == "th", _span(found.get("rowspan")), _span(found.get("colspan"))
            )
        elif tag in ("br", "p", "div", "li") and now.cell is not None:
            now.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if not self._open:
            return
        if tag == "table":
            self._close_cell()
            self._open.pop()
        elif tag in ("td", "th", "tr"):
            self._close_cell()
        elif tag == "thead":
            self._open[-1].in_head = False

    def handle_data(self, data: str) -> None:
        if self._open and self._open[-1].cell is not None:
            self._open[-1].parts.append(data)

    def _close_cell(self) -> None:
        now = self._open[-1]
        if now.cell is None:
            return
        now.cell.text = " ".join("".join(now.parts).split())
        if not now.table.rows:
            now.table.rows.append([])
        now.table.rows[-1].append(now.cell)
        now.cell, now.parts = None, []


def grid(table: Table) -> list[list[str]]:
    """The table as a rectangle of texts, merged cells unfolded (see the module's docstring)."""
    rows: list[list[str]] = []
    pending: dict[tuple[int, int], str] = {}  # cells a rowspan from above still covers
    for r, cells in enumerate(table.rows):
        row: list[str] = []
        col = 0
        for cell in cells:
            while (r, col) in pending:
                row.append(pending.pop((r, col)))
                col += 1
            for offset in range(cell.colspan):
                row.append(cell.text)
                for down in range(1, cell.rowspan):
                    pending[(r + down, col + offset)] = cell.text
            col += cell.colspan
        while (r, col) in pending:
            row.append(pending.pop((r, col)))
            col += 1
        rows.append(row)
    width = max((len(row) for row in rows), default=0)
    return [row + [""] * (width - len(row)) for row in rows]


def _header_rows(table: Table) -> int:
    """Rows in <thead>, or the leading rows made only of <th>, or else the first row."""
    if table.head_rows:
        return table.head_rows
    count = 0
    for cells in table.rows:
        if cells and all(cell.header for cell in cells):
            count += 1
        else:
            break
    return max(count, 1)


def header_names(header: list[list[str]]) -> list[str]:
    """One name per column: stacked labels joined by "-", blanks named, repeats numbered."""
    names: list[str] = []
    for col in range(len(header[0]) if header else 0):
        parts: list[str] = []
        for row in header:
            if row[col] and (not parts or parts[-1] != row[col]):
                parts.append(row[col])
        names.append("-".join(parts) or f"列{col + 1}")
    seen: dict[str, int] = {LINE_COLUMN: 1}  # DuckDB folds case: count "A" and "a" together
    unique: list[str] = []
    for name in names:
        seen[name.lower()] = seen.get(name.lower(), 0) + 1
        count = seen[name.lower()]
        unique.append(name if count == 1 else f"{name}_{count}")
    return unique


def decode(content: bytes, charset: str | None) -> str:
    """Page text: the declared charset (header, then <meta>), else UTF-8, else GB18030."""
    found = _META_CHARSET.search(content[:4096])
    declared = (charset or (found.group(1).decode() if found else "")).lower()
    if declared in _GB:
        declared = "gb18030"  # the superset: pages declared GB2312 use GBK characters
    for encoding in (declared, "utf-8", "gb18030"):
        if not encoding:
            continue
        try:
            return content.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return content.decode("utf-8", "replace")


def choose(tables: list[Table], config: dict[str, Any], url: str) -> Table:
    tables = [t for t in tables if any(t.rows)]
    match = str(config.get("table_match") or "")
    if match:
        for table in tables:
            if match in table.text():
                return table
        raise LoadError(
            "网页“{url}”中没有包含“{text}”的表格。", code="web_table_not_found", url=url, text=match
        )
    index = int(config.get("table_index") or 0)
    if index >= len(tables):
        raise LoadError(
            "网页“{url}”中没有第 {n} 个表格（共 {count} 个）。",
            code="web_table_not_found",
            url=url,
            n=index + 1,
            count=len(tables),
        )
    return tables[index]


def check_config(config: dict[str, Any]) -> None:
    check_url(config.get("url"))
    index = config.get("table_index", 0)
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValidationFailed(
            "来源配置项“{key}”的值无效。", code="source_config_invalid", key="table_index"
        )


def read_web(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    *,
    progress: Progress,
    allowed: egress.AllowList,
) -> RawTable:
    """Fetch the page and stage the chosen table's rows under its header."""
    config = source.config or {}
    check_config(config)
    url = str(config["url"])
    timeout = float(config.get("timeout") or 30)
    with egress.http_client(allowed, timeout=timeout) as client:
        fetched = send(client, Request(method="GET", url=url), timeout=timeout)
    parser = TableParser()
    parser.feed(decode(fetched.content, fetched.charset))
    parser.close()
    table = choose(parser.tables, config, url)
    cells = grid(table)
    heading = _header_rows(table)
    columns = header_names(cells[:heading])
    skipped: list[Skipped] = []
    data: list[list[str | None]] = []
    lines: list[int] = []
    for number, row in enumerate(cells[heading:], start=heading + 1):
        filled = [text for text in row if text]
        if not filled:
            continue
        if len(table.rows[number - 1]) == 1 and table.rows[number - 1][0].colspan == len(row) > 1:
            skipped.append(Skipped(line=number, reason="子标题行", text=filled[0]))
            continue
        data.append([text or None for text in row])
        lines.append(number)
    if not data:
        raise LoadError("网页“{url}”的表格中没有数据行。", code="no_rows", url=url)
    arrays = [pa.array(list(values), type=pa.string()) for values in zip(*data, strict=True)]
    staged = pa.table([*arrays, pa.array(lines, type=pa.int64())], names=[*columns, LINE_COLUMN])
    con.register("_kuaishu_page", staged)
    try:
        con.execute(f"CREATE TABLE {RAW_TABLE} AS SELECT * FROM _kuaishu_page")
    finally:
        con.unregister("_kuaishu_page")
    progress(len(data), len(data))
    return RawTable(columns=columns, rows=len(data), line_sql=LINE_COLUMN, skipped=skipped)
