"""Where the table is inside a text file: delimiter, header line, preamble and footnotes.

Statistics-bureau exports put a title, the indicator and the period above the header, and notes
and the data source below the data. Those lines have one filled cell where the table has many;
that is how they are told apart, and each one skipped is reported with its line number.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from kuaishu.collect.raw import LoadError, Skipped

DELIMITERS = (",", "\t", ";", "|")
SNIFF_RECORDS = 500
MAX_PREAMBLE = 30
MAX_FOOTER = 100
FOOTNOTE_MARKS = (
    "注：",
    "注:",
    "注 ",
    "数据来源",
    "资料来源",
    "说明：",
    "备注：",
    "\u3000",
    "*",
    "※",
)
PREAMBLE = "表头前的标题或说明行"
FOOTNOTE = "表尾的注释或来源说明"


@dataclass
class Record:
    start: int  # first physical line, 1-based within the text parsed
    end: int  # last physical line
    fields: list[str]
    offset: int  # character offset in the text where the record starts

    @property
    def filled(self) -> int:
        return sum(1 for value in self.fields if value.strip())

    @property
    def blank(self) -> bool:
        return not self.fields or self.filled == 0

    @property
    def text(self) -> str:
        return ",".join(value for value in self.fields if value.strip())[:200]


@dataclass
class Layout:
    delimiter: str
    width: int  # fields in most records
    header: list[str]
    header_line: int  # where the header record starts
    data_line: int  # first line after the header record
    preamble: list[Skipped] = field(default_factory=list)


def records(text: str, delimiter: str, limit: int | None = None) -> list[Record]:
    """The records of ``text`` with their lines; a record cut off at the end is left out."""
    found: list[Record] = []
    consumed = [0]
    reader = csv.reader(_lines(text, consumed), delimiter=delimiter, strict=False)
    previous_end, offset = 0, 0
    try:
        for fields in reader:
            found.append(Record(previous_end + 1, reader.line_num, fields, offset))
            previous_end, offset = reader.line_num, consumed[0]
            if limit and len(found) >= limit:
                break
    except csv.Error:
        pass  # the sample ends inside a quoted value; DuckDB reads the whole file strictly
    return found


def _lines(text: str, consumed: list[int]) -> Iterator[str]:
    """Lines split at ``\\n`` only (as DuckDB and the line count do), tracking the offset."""
    position = 0
    while position < len(text):
        end = text.find("\n", position)
        end = len(text) if end < 0 else end + 1
        consumed[0] = end
        yield text[position:end]
        position = end


def sniff_delimiter(text: str, *, prefer_tab: bool) -> tuple[str, int]:
    """The delimiter giving the most records of one width (above 1), and that width."""
    order = ("\t", ",", ";", "|") if prefer_tab else DELIMITERS
    best, best_width, best_score = order[0], 1, 0
    for delimiter in order:
        counts = Counter(
            len(r.fields) for r in records(text, delimiter, SNIFF_RECORDS) if not r.blank
        )
        if not counts:
            continue
        width, score = counts.most_common(1)[0]
        if width > 1 and score > best_score:
            best, best_width, best_score = delimiter, width, score
    return best, best_width


def find_layout(text: str, *, delimiter: str | None, prefer_tab: bool) -> Layout:
    """Delimiter, header and preamble, from the first lines of the file."""
    if delimiter:
        counts = Counter(len(r.fields) for r in records(text, delimiter, SNIFF_RECORDS))
        width = counts.most_common(1)[0][0] if counts else 1
    else:
        delimiter, width = sniff_delimiter(text, prefer_tab=prefer_tab)
    found = records(text, delimiter, SNIFF_RECORDS)
    header = _header(found, width)
    if header is None:
        raise LoadError("文件中没有表头，也没有数据。", code="empty_file")
    preamble = [
        Skipped(line=r.start, reason=PREAMBLE, text=r.text)
        for r in found
        if r.start < header.start and not r.blank
    ]
    return Layout(
        delimiter=delimiter,
        width=width,
        header=header.fields,
        header_line=header.start,
        data_line=header.end + 1,
        preamble=preamble,
    )


def _sparse(record: Record, width: int) -> bool:
    """Too few filled cells for a row of this table: a title, a unit line, a note."""
    return record.filled <= max(1, width // 4)


def _header(found: list[Record], width: int) -> Record | None:
    candidates = [r for r in found if not r.blank]
    if not candidates:
        return None
    if width <= 1:
        return candidates[0]
    for record in candidates[:MAX_PREAMBLE]:
        if not _sparse(record, width):
            return record
    return candidates[0]


def _footnote_like(record: Record, width: int) -> bool:
    if record.blank:
        return True
    first = record.fields[0] if record.fields else ""
    marked = first.startswith(FOOTNOTE_MARKS)
    if len(record.fields) != width:
        return _sparse(record, width) or marked
    return _sparse(record, width) and marked


def find_footer(tail: str, *, delimiter: str, width: int) -> tuple[int, list[Record]]:
    """Where the footnotes at the end of ``tail`` begin (a character offset), and them.

    Only lines that look like notes, from the end backwards; if everything in the tail looks
    like a note there is no telling where the data ends, and nothing is taken as a footer.
    """
    if width <= 1:
        return len(tail), []
    found = records(tail, delimiter)
    footer: list[Record] = []
    for record in reversed(found):
        if not _footnote_like(record, width) or len(footer) >= MAX_FOOTER:
            break
        footer.insert(0, record)
    if not footer or len(footer) == len(found):
        return len(tail), []
    return footer[0].offset, [r for r in footer if not r.blank]
