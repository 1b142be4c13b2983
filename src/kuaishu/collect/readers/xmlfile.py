"""XML: the repeating element is the record; its attributes and children's text are the columns.

``<rows><row id="1"><name>…</name></row>…</rows>`` gives columns ``id`` and ``name``. The record
element is the shallowest one that repeats under one parent (or the option ``record_tag``). The
text is decoded in Python (expat reads no GBK) and fed to a pull parser a megabyte at a time;
each record is dropped from the tree once staged, so memory stays flat.

expat (2.4+) limits entity expansion and ElementTree never fetches external entities, so the
billion-laughs and external-entity attacks do not apply.
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from kuaishu.collect.raw import LoadError, RawTable
from kuaishu.collect.readers.common import Context, check_columns
from kuaishu.collect.readers.stage import Stager

READ_CHARS = 1 << 20
SNIFF_ELEMENTS = 5000
DECLARED = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def read_xml(con: duckdb.DuckDBPyConnection, path: Path, ctx: Context) -> RawTable:
    """Stage the records of an XML file."""
    encoding = _encoding(path)
    tag = ctx.option("record_tag") or _record_tag(path, encoding)
    stager = Stager(con)
    repeated: set[str] = set()
    depth: int | None = None
    for number, (element, level) in enumerate(_closed(path, encoding, tag), start=1):
        depth = level if depth is None else depth
        if level != depth:
            continue
        stager.append_record(_record(element, repeated), number)
        if number % 10_000 == 0:
            ctx.progress(number, None)
    columns = check_columns(stager.finish(), checked=True)
    if not stager.rows:
        raise LoadError(
            "XML 文件中没有“{tag}”记录。", code="xml_no_records", details={"tag": tag}, tag=tag
        )
    notes = [f"以 XML 元素“{tag}”为一条记录读取。"]
    if repeated:
        notes.append(f"记录中重复出现的元素（{'、'.join(sorted(repeated))}）已以“；”连接。")
    return RawTable(
        columns=columns, rows=stager.rows, line_label="条", notes=notes, encoding=encoding
    )


def _encoding(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(200)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    declared = DECLARED.match(head)
    if not declared:
        return "utf-8"
    name = declared.group(1).decode("ascii").lower()
    try:
        codecs.lookup(name)
    except LookupError:
        raise LoadError(
            "XML 声明的字符编码“{name}”不受支持。", code="unknown_encoding", name=name
        ) from None
    return "gb18030" if name in ("gbk", "gb2312") else name


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _events(path: Path, encoding: str) -> Iterator[tuple[str, ET.Element, int]]:
    """(event, element, depth) as the file is read; depth 0 is the root."""
    parser: ET.XMLPullParser[Any] = ET.XMLPullParser(events=("start", "end"))
    depth = [0]
    try:
        with path.open(encoding=encoding, errors="strict") as fh:
            while chunk := fh.read(READ_CHARS):
                parser.feed(chunk)
                yield from _with_depth(parser, depth)
            parser.close()
            yield from _with_depth(parser, depth)
    except ET.ParseError as error:
        line = error.position[0]
        raise LoadError(
            "XML 格式错误：第 {line} 行无法解析。",
            code="xml_invalid",
            details={"line": line, "reader": str(error)[:300]},
            line=line,
        ) from None
    except UnicodeDecodeError:
        raise LoadError(
            "XML 文件的内容不是声明的 {encoding} 编码。",
            code="mixed_encoding",
            encoding=encoding.upper(),
        ) from None


def _with_depth(
    parser: ET.XMLPullParser[Any], depth: list[int]
) -> Iterator[tuple[str, ET.Element, int]]:
    for event, element in parser.read_events():  # type: ignore[misc] # start/end events only
        assert isinstance(element, ET.Element)
        if event == "start":
            yield "start", element, depth[0]
            depth[0] += 1
        else:
            depth[0] -= 1
            yield "end", element, depth[0]


def _record_tag(path: Path, encoding: str) -> str:
    """The shallowest element that repeats under one parent (the most repeated on a tie)."""
    children: list[Counter[str]] = []
    best: tuple[int, int, str] | None = None  # (depth, -count, tag)
    for seen, (event, element, depth) in enumerate(_events(path, encoding)):
        if event == "start":
            children.append(Counter())
            continue
        children.pop()
        if children:
            counts = children[-1]
            tag = _local(element.tag)
            counts[tag] += 1
            if counts[tag] >= 2 and (best is None or (depth, -counts[tag]) < best[:2]):
                best = (depth, -counts[tag], tag)
        if seen > SNIFF_ELEMENTS:
            break
    if best is None:
        raise LoadError(
            "未能识别 XML 中重复出现的记录元素；请用选项 record_tag 指明。",
            code="xml_no_records",
        )
    return best[2]


def _closed(path: Path, encoding: str, tag: str) -> Iterator[tuple[ET.Element, int]]:
    """Each finished ``tag`` element with its depth, detached from the tree after use."""
    stack: list[ET.Element] = []
    for event, element, depth in _events(path, encoding):
        if event == "start":
            stack.append(element)
            continue
        stack.pop()
        if _local(element.tag) == tag:
            yield element, depth
            if stack:
                stack[-1].remove(element)


def _record(element: ET.Element, repeated: set[str]) -> dict[str, str | None]:
    row: dict[str, str | None] = {}

    def put(name: str, value: str | None) -> None:
        if name in row:
            repeated.add(name)
            row[name] = "；".join(v for v in (row[name], value) if v is not None)
        else:
            row[name] = value

    for key, value in element.attrib.items():
        put(_local(key), value)
    for child in element:
        name = _local(child.tag)
        for key, value in child.attrib.items():
            put(f"{name}@{_local(key)}", value)
        if len(child):
            for grandchild in child:
                put(f"{name}/{_local(grandchild.tag)}", "".join(grandchild.itertext()) or None)
        else:
            put(name, child.text)
    if not len(element) and not element.attrib:
        put(_local(element.tag), element.text)
    return row
