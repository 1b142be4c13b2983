"""XLS, XLSX and ODS through calamine: the table inside a sheet laid out for people.

Government workbooks carry titles above the header, headers merged over two rows (人口 over
男/女), sub-heading rows that group the rows below them (北京市（92所）), merged cells filled
down and notes at the end. The header is the first row dense with names; sub-headings become a
``分组`` column; titles and notes are skipped and reported with their row numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain, islice
from pathlib import Path
from typing import Any

import duckdb

from kuaishu.collect.raw import LoadError, RawTable, Skipped
from kuaishu.collect.readers.common import Context, check_columns, too_wide
from kuaishu.collect.readers.detect import Kind
from kuaishu.collect.readers.layout import FOOTNOTE, PREAMBLE
from kuaishu.collect.readers.sheet_header import Header, Merge, column_letter, find_header
from kuaishu.collect.readers.stage import Stager, text_of
from kuaishu.collect.readers.zipcheck import check_zip

GROUP_COLUMN = "分组"
SUBHEADING = "分组标题（其内容放入“分组”列）"
HEAD_ROWS = 60
PROGRESS_EVERY = 5000


def read_sheet(con: duckdb.DuckDBPyConnection, path: Path, kind: Kind, ctx: Context) -> RawTable:
    """Stage one sheet of a workbook (option ``sheet``: a name or a 1-based number)."""
    if kind in (Kind.XLSX, Kind.ODS):
        check_zip(path, ctx.filename)
    sheet, notes = _open(path, ctx)
    if sheet.start is None:
        raise LoadError("工作表“{sheet}”为空。", code="empty_file", sheet=sheet.name)
    top, left = sheet.start
    merges = [
        Merge(r1 - top, c1 - left, r2 - top, c2 - left)
        for (r1, c1), (r2, c2) in (sheet.merged_cell_ranges or [])
    ]
    rows: Iterator[list[Any]] = iter(sheet.iter_rows())
    head = [[text_of(value) for value in row] for row in islice(rows, HEAD_ROWS)]
    header = find_header(head, merges)
    too_wide(len(header.names))
    reader = _SheetRows(con, header, merges, top, left)
    reader.preamble(head[: header.first])
    rest = chain(head[header.last + 1 :], ([text_of(v) for v in row] for row in rows))
    reader.read(rest, header.last + 1, ctx, total=sheet.height)
    return reader.result(sheet.name, notes)


def _open(path: Path, ctx: Context) -> tuple[Any, list[str]]:
    from python_calamine import CalamineError, CalamineWorkbook, PasswordError

    try:
        book = CalamineWorkbook.from_path(str(path))
    except PasswordError:
        raise LoadError(
            "文件“{name}”设有打开密码，请去掉密码后重新上传。",
            code="excel_encrypted",
            name=ctx.filename,
        ) from None
    except (CalamineError, OSError, ValueError) as error:
        raise LoadError(
            "文件“{name}”已损坏或不完整（可能上传或下载中断），无法作为 Excel 工作簿打开。",
            code="excel_corrupt",
            details={"file": ctx.filename, "reason": str(error)[:300]},
            name=ctx.filename,
        ) from None
    names = list(book.sheet_names)
    wanted = ctx.option("sheet")
    if wanted is None:
        index = 0
    elif wanted in names:
        index = names.index(wanted)
    elif wanted.isdigit() and 1 <= int(wanted) <= len(names):
        index = int(wanted) - 1
    else:
        raise LoadError(
            "工作簿中没有工作表“{sheet}”；现有：{names}。",
            code="sheet_not_found",
            details={"sheet": wanted, "sheets": names},
            sheet=wanted,
            names="、".join(names),
        )
    notes = [f"读取工作表“{names[index]}”。"]
    if wanted is None and len(names) > 1:
        notes.append(
            f"工作簿有 {len(names)} 个工作表，默认读取第一个；可用选项 sheet 指定其他工作表。"
        )
    try:
        return book.get_sheet_by_index(index), notes
    except (CalamineError, ValueError) as error:
        raise LoadError(
            "工作表“{sheet}”无法读取：文件可能已损坏。",
            code="excel_corrupt",
            details={"reason": str(error)[:300]},
            sheet=names[index],
        ) from None


class _SheetRows:
    """Data rows of one sheet, with sub-headings, merged cells and notes sorted out."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        header: Header,
        merges: list[Merge],
        top: int,
        left: int,
    ) -> None:
        self.header, self.top, self.left = header, top, left
        self.named = [n for n, name in enumerate(header.names) if name]
        columns = check_columns([header.names[n] or "" for n in self.named])
        self.stager = Stager(con, columns)
        self.group_at: int | None = None
        self.group: str | None = None
        self.pending: list[tuple[int, str, bool]] = []  # single-cell rows awaiting their role
        self.skipped: list[Skipped] = []
        self.subheadings = 0
        self.filled = 0
        self.fills: dict[int, list[Merge]] = {}
        self.active: list[tuple[Merge, str | None]] = []
        self.across = {(m.r1, m.c1) for m in merges if m.c2 > m.c1 and m.r2 == m.r1}
        for merge in merges:
            if merge.r2 > merge.r1 and merge.r1 > header.last:
                self.fills.setdefault(merge.r1, []).append(merge)

    def line(self, index: int) -> int:
        return self.top + index + 1

    def preamble(self, rows: list[list[str | None]]) -> None:
        for index, row in enumerate(rows):
            text = _row_text(row)
            if text:
                self.skipped.append(Skipped(line=self.line(index), reason=PREAMBLE, text=text))

    def read(
        self, rows: Iterable[list[str | None]], first: int, ctx: Context, *, total: int
    ) -> None:
        for index, row in enumerate(rows, start=first):
            self._fill_down(index, row)
            filled = [n for n, value in enumerate(row) if value is not None and value.strip()]
            if not filled:
                continue
            if len(filled) == 1 and self._lone_heading(index, filled[0], row):
                self.pending.append((index, str(row[filled[0]]), True))
                continue
            self._take_pending()
            self._check_unnamed(index, row, filled)
            values = [row[n] if n < len(row) else None for n in self.named]
            if self.group_at is not None:
                values.append(self.group)
            self.stager.append(values, self.line(index))
            if index % PROGRESS_EVERY == 0:
                ctx.progress(self.stager.rows + len(self.stager.lines), total)
        for index, text, _ in self.pending:
            self.skipped.append(Skipped(line=self.line(index), reason=FOOTNOTE, text=text[:200]))
        self.pending = []

    def _lone_heading(self, index: int, column: int, row: list[str | None]) -> bool:
        """A row with one text cell in a table of three or more columns: a title or a note."""
        if len(self.named) < 3:
            return False
        value = row[column]
        if not value or _number(value):
            return False
        return column == 0 or (index, column) in self.across

    def _take_pending(self) -> None:
        """Single-cell rows followed by data were sub-headings: the last one names the group."""
        if not self.pending:
            return
        if self.group_at is None:
            name = GROUP_COLUMN
            while name in self.stager.index:
                name += "_"
            self.group_at = self.stager.add_column(name)
        for index, text, _ in self.pending:
            self.skipped.append(Skipped(line=self.line(index), reason=SUBHEADING, text=text[:200]))
            self.subheadings += 1
        self.group = self.pending[-1][1].strip()
        self.pending = []

    def _fill_down(self, index: int, row: list[str | None]) -> None:
        """A cell merged over several rows holds its value for every row it covers."""
        self.active = [(m, v) for m, v in self.active if m.r2 >= index]
        for merge, value in self.active:
            for column in range(merge.c1, min(merge.c2 + 1, len(row))):
                if row[column] is None:
                    row[column] = value
                    self.filled += 1
        for merge in self.fills.pop(index, []):
            if merge.c1 < len(row):
                self.active.append((merge, row[merge.c1]))

    def _check_unnamed(self, index: int, row: list[str | None], filled: list[int]) -> None:
        names = self.header.names
        for column in filled:
            if column >= len(names) or not names[column]:
                letter = column_letter(self.left + column)
                raise LoadError(
                    "第 {line} 行 {column} 列有数据，但该列没有列名（表头为空）。",
                    code="empty_header",
                    details={"line": self.line(index), "column": letter},
                    line=self.line(index),
                    column=letter,
                )

    def result(self, sheet: str, notes: list[str]) -> RawTable:
        columns = self.stager.finish()
        header_rows = f"第 {self.line(self.header.first)} 行"
        if self.header.last > self.header.first:
            header_rows += f"至第 {self.line(self.header.last)} 行（合并表头，列名以“/”连接）"
        notes.append(f"表头在{header_rows}。")
        if self.subheadings:
            notes.append(
                f"{self.subheadings} 个分组标题行（如“{self._first_subheading()}”）"
                f"的内容已放入新增的“{columns[-1]}”列。"
            )
        if self.filled:
            notes.append(f"{self.filled} 个纵向合并单元格已按合并区域向下填充。")
        return RawTable(columns=columns, rows=self.stager.rows, skipped=self.skipped, notes=notes)

    def _first_subheading(self) -> str:
        return next(s.text for s in self.skipped if s.reason == SUBHEADING)


def _number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _row_text(row: list[str | None]) -> str:
    return " ".join(value.strip() for value in row if value and value.strip())[:200]
