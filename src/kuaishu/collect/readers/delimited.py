"""CSV and TSV: the layout from the first megabyte, the rows by DuckDB's parallel reader.

DuckDB reads the whole file (or its UTF-8 copy) strictly: a row with the wrong number of fields,
an unclosed quote or a byte that is not UTF-8 stops the load with the line. Each row's source line
is ``rowid + n`` when the line count proves there are no blank lines or multi-line values inside
the data; otherwise one pass over the file records where the rows really start.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePath

import duckdb

from kuaishu.clean.sqltext import literal
from kuaishu.collect.raw import RAW_TABLE, LoadError, RawTable, Skipped, out_of_memory
from kuaishu.collect.readers import lines as relines
from kuaishu.collect.readers.common import (
    Context,
    check_columns,
    execute_with_progress,
)
from kuaishu.collect.readers.layout import FOOTNOTE, Layout, find_footer, find_layout
from kuaishu.collect.readers.textfile import (
    Encoding,
    byte_length,
    decode_head,
    guess_encoding,
    read_head,
    read_tail,
    scan,
)
from kuaishu.errors import AppError, storage_problem

MAX_LINE_BYTES = 64 << 20
ERROR_LINE = re.compile(r"CSV Error on Line: (\d+)")
FIELD_COUNTS = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def read_delimited(con: duckdb.DuckDBPyConnection, path: Path, ctx: Context) -> RawTable:
    """Stage a delimited text file as ``raw``."""
    size = path.stat().st_size
    head, whole = read_head(path)
    encoding = guess_encoding(head, whole, ctx.option("encoding"))
    text = decode_head(head, whole, encoding)
    if not text.strip():
        raise LoadError("文件为空。", code="empty_file")
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise LoadError(
            "第 {line} 行含有空字符（NUL，字节 0x00）：文件可能已损坏，或不是文本文件。",
            code="nul_byte",
            details={"line": line},
            line=line,
        )
    suffix = PurePath(ctx.filename).suffix.lower()
    layout = find_layout(
        text, delimiter=ctx.option("delimiter"), prefer_tab=suffix in (".tsv", ".tab")
    )
    header = check_columns(layout.header)
    tail_start, tail = (encoding.bom, text) if whole else read_tail(path, size, encoding)
    foot_at, footnotes = find_footer(tail, delimiter=layout.delimiter, width=layout.width)
    stop = tail_start + byte_length(tail[:foot_at], encoding) if footnotes else None
    copy = ctx.work / "input.utf8.csv" if stop is not None or not encoding.direct else None
    estimate = _estimate_lines(text, size)

    def tick(_lines: int) -> None:
        ctx.progress(0, estimate)  # rows are not read yet; this lets a cancel through

    scanned = scan(path, encoding, stop=stop, output=copy, tick=tick)
    footer_lines = _lines_in(tail[foot_at:])
    first_footer = scanned.lines - footer_lines + 1
    # A footnote's ``start`` counts lines from the start of ``tail``, not of the footer.
    foot_line = tail.count("\n", 0, foot_at) + 1
    skipped = layout.preamble + [
        Skipped(line=first_footer + r.start - foot_line, reason=FOOTNOTE, text=r.text)
        for r in footnotes
    ]
    source = copy or path
    expected = max(0, first_footer - layout.data_line)
    rows = _load(con, source, layout, header, ctx, expected, multiline=_multiline(text, layout))
    line_sql = f"rowid + {layout.data_line}"
    if rows != expected:
        line_sql = relines.relocate(con, source, layout, rows)
    return RawTable(
        columns=header,
        rows=rows,
        line_sql=line_sql,
        skipped=skipped,
        notes=_notes(layout, encoding, skipped),
        encoding=encoding.label,
    )


def _estimate_lines(text: str, size: int) -> int:
    return max(1, int(size * max(1, text.count("\n")) / max(1, len(text.encode("utf-8")))))


def _lines_in(text: str) -> int:
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def _multiline(text: str, layout: Layout) -> bool:
    """Whether the sample has quoted values spanning lines (DuckDB then counts records)."""
    from kuaishu.collect.readers.layout import records

    return any(r.end > r.start for r in records(text, layout.delimiter))


def _notes(layout: Layout, encoding: Encoding, skipped: list[Skipped]) -> list[str]:
    names = {",": "逗号", "\t": "制表符", ";": "分号", "|": "竖线"}
    notes = [
        f"按 {encoding.label.upper()} 编码、{names.get(layout.delimiter, layout.delimiter)}分隔读取；"
        f"表头在第 {layout.header_line} 行。"
    ]
    if skipped:
        notes.append(f"跳过 {len(skipped)} 行非数据内容（标题、说明、注释），行号见日志。")
    return notes


def _load(
    con: duckdb.DuckDBPyConnection,
    source: Path,
    layout: Layout,
    header: list[str],
    ctx: Context,
    expected: int,
    *,
    multiline: bool,
) -> int:
    columns = "{" + ", ".join(f"{literal(name)}: 'VARCHAR'" for name in header) + "}"
    sql = (
        f"CREATE TABLE {RAW_TABLE} AS SELECT * FROM read_csv(?, delim = ?, quote = '\"', "
        f"escape = '\"', header = true, skip = {layout.header_line - 1}, columns = {columns}, "
        "auto_detect = false, strict_mode = true, null_padding = false, ignore_errors = false, "
        f"encoding = 'utf-8', max_line_size = {MAX_LINE_BYTES}, buffer_size = {2 * MAX_LINE_BYTES})"
    )
    try:
        execute_with_progress(
            con, sql, [str(source), layout.delimiter], progress=ctx.progress, total=expected
        )
    except duckdb.InterruptException:
        raise
    except duckdb.Error as error:
        raise _explain(error, source, layout, multiline) from None
    row = con.execute(f"SELECT count(*) FROM {RAW_TABLE}").fetchone()
    rows = int(row[0]) if row else 0
    ctx.progress(rows, rows)
    return rows


def _explain(error: duckdb.Error, source: Path, layout: Layout, multiline: bool) -> AppError:
    """DuckDB's English error as a LoadError naming the problem and the source line."""
    host = storage_problem(error) or out_of_memory(error)
    if host is not None:  # the server's disk or memory, not the file
        return host
    message = str(error)
    problem = " ".join(message.splitlines()[:4]).lower()
    found = ERROR_LINE.search(message)
    line = int(found.group(1)) if found else None
    if line is not None and multiline:
        line = relines.physical_line(source, layout.delimiter, line)
    details = {"line": line, "reader": message.splitlines()[0][:300]}
    counts = FIELD_COUNTS.search(message)
    if counts:
        expected, got = int(counts.group(1)), int(counts.group(2))
        return LoadError(
            "第 {line} 行有 {found} 个字段，而表头有 {expected} 列。"
            "请检查该行是否多了或少了分隔符，或含有未加引号的分隔符。",
            code="field_count",
            details={**details, "expected": expected, "found": got},
            line=line,
            found=got,
            expected=expected,
        )
    if "invalid unicode" in problem:
        return LoadError(
            "文件中混有不同的字符编码：第 {line} 行不是 {encoding} 编码（前面的行是）。"
            "请把整个文件统一另存为一种编码后重新上传。",
            code="mixed_encoding",
            details={**details, "encoding": "utf-8"},
            line=line,
            encoding="UTF-8",
        )
    if "quote" in problem:
        return LoadError(
            "第 {line} 行的引号不成对：值中的双引号应写成两个双引号。",
            code="bad_quote",
            details=details,
            line=line,
        )
    if "maximum line size" in problem:
        return LoadError(
            "第 {line} 行过长（超过 {size} MB），无法读取。",
            code="line_too_long",
            details=details,
            line=line,
            size=MAX_LINE_BYTES >> 20,
        )
    return LoadError(
        "文件第 {line} 行无法按 CSV 读取。",
        code="csv_invalid",
        details=details,
        line=line if line is not None else "?",
    )
