"""Finding a sheet's header: the first row dense with names, widened by merged cells.

A header cell merged across columns (人口 over 男 and 女) means the row below is a second header
row; a cell merged down (地区 over both rows) names its column once. Names from several header
rows are joined with "/": 人口/男, 人口/女, 地区.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kuaishu.collect.raw import LoadError

MAX_HEADER_ROWS = 4


@dataclass(frozen=True)
class Merge:
    """A merged range, rows and columns counted from the sheet's first used cell."""

    r1: int
    c1: int
    r2: int
    c2: int


@dataclass
class Header:
    first: int  # index of the first header row among the sheet's rows
    last: int  # index of the last header row
    names: list[str | None]  # one per column position; None where the header is empty


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def _filled(row: list[str | None]) -> int:
    return sum(1 for value in row if value is not None and value.strip())


def find_header(rows: list[list[str | None]], merges: list[Merge]) -> Header:
    """The header among the first rows of a sheet."""
    counts = [_filled(row) for row in rows]
    if not any(counts):
        raise LoadError("工作表中没有数据。", code="empty_file")
    most = max(counts)
    need = max(2, math.ceil(most / 2)) if most > 1 else 1
    first = next(n for n, count in enumerate(counts) if count >= need)
    last = _header_end(rows, merges, first)
    grid = [list(row) for row in rows[first : last + 1]]
    for merge in merges:
        _spread(grid, merge, first, last)
    width = max(len(row) for row in grid)
    names: list[str | None] = []
    for column in range(width):
        parts: list[str] = []
        for row in grid:
            cell = row[column] if column < len(row) else None
            value = cell.strip() if cell else ""
            if value and (not parts or parts[-1] != value):
                parts.append(value)
        names.append("/".join(parts) or None)
    while names and names[-1] is None:
        names.pop()
    return Header(first=first, last=last, names=names)


def _header_end(rows: list[list[str | None]], merges: list[Merge], first: int) -> int:
    """The last header row: a merge across columns in the header has its parts on the row below."""
    last = first
    changed = True
    while changed:
        changed = False
        for merge in merges:
            if not first <= merge.r1 <= last:
                continue
            end = merge.r2
            if merge.c2 > merge.c1 and merge.r2 == merge.r1 and _texts_below(rows, merge):
                end = merge.r1 + 1
            end = min(end, first + MAX_HEADER_ROWS - 1, len(rows) - 1)
            if end > last:
                last, changed = end, True
    return last


def _texts_below(rows: list[list[str | None]], merge: Merge) -> bool:
    below = merge.r1 + 1
    if below >= len(rows):
        return False
    cells = rows[below][merge.c1 : merge.c2 + 1]
    if _filled(rows[below]) < 2:  # a lone cell below is a sub-heading, not a header row
        return False
    return any(value is not None and value.strip() and not _numeric(value) for value in cells)


def _numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _spread(grid: list[list[str | None]], merge: Merge, first: int, last: int) -> None:
    """Copy a merged cell's value over the part of its range inside the header rows."""
    if merge.r2 < first or merge.r1 > last:
        return
    top = merge.r1 - first
    if top < 0 or merge.c1 >= len(grid[top]):
        return
    value = grid[top][merge.c1]
    for r in range(max(top, 0), min(merge.r2, last) - first + 1):
        row = grid[r]
        for c in range(merge.c1, merge.c2 + 1):
            while len(row) <= c:
                row.append(None)
            if not row[c]:
                row[c] = value
