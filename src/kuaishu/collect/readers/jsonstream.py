"""Records inside a JSON envelope, one at a time, without loading the document.

The reader walks the document's outer objects key by key — values not on the way are decoded
and dropped one by one — until it reaches the records array; each element is then decoded by
itself. Memory is bounded by the largest single value, not by the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from kuaishu.collect.raw import LoadError
from kuaishu.collect.readers.stage import text_of

READ_CHARS = 1 << 20
SEARCH_DEPTH = 3


@dataclass
class Found:
    path: str  # where the records were, as a dotted path ("" for a top-level array)
    records: Iterator[dict[str, str | None]]


def cell(value: Any) -> str | None:
    """A record's value as text; nested objects and arrays stay JSON."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return text_of(value)


class _Tokens:
    """A window over the text; values are decoded with ``json.JSONDecoder.raw_decode``."""

    def __init__(self, fh: TextIO) -> None:
        self.fh = fh
        self.buf = ""
        self.pos = 0
        self.lines_before = 0  # newlines in text already dropped from the window
        self.eof = False
        self.decoder = json.JSONDecoder()

    def _more(self, size: int = READ_CHARS) -> bool:
        chunk = self.fh.read(size)
        if not chunk:
            self.eof = True
            return False
        self.lines_before += self.buf.count("\n", 0, self.pos)
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        return True

    def line(self) -> int:
        return self.lines_before + self.buf.count("\n", 0, self.pos) + 1

    def peek(self) -> str:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n\ufeff":
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def expect(self, chars: str) -> str:
        found = self.peek()
        if not found or found not in chars:
            raise self.malformed()
        self.pos += 1
        return found

    def value(self) -> Any:
        size = READ_CHARS
        while True:
            self.peek()
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError:
                if self.eof or not self._more(size):
                    raise self.malformed() from None
                size *= 2  # a large value: read ahead faster than re-parsing it each time
                continue
            if end == len(self.buf) and not self.eof and self._more(size):
                continue  # a number may go on past the window's end
            self.pos = end
            return value

    def malformed(self) -> LoadError:
        line = self.line()
        return LoadError(
            "JSON 格式错误：第 {where} 行（条）附近无法解析。",
            code="json_invalid",
            details={"at": line},
            where=line,
        )


def stream_records(source: Path, records_path: str | None) -> Found:
    """The records of ``source`` under ``records_path`` (dotted), or the first array of objects."""
    fh = source.open(encoding="utf-8-sig")
    tokens = _Tokens(fh)
    steps = [step for step in (records_path or "").split(".") if step]
    where: list[str] | None
    if steps:
        where = _descend(tokens, steps, records_path or "")
    else:
        where = _search(tokens, [], SEARCH_DEPTH)
        if where is None:
            fh.close()
            raise LoadError(
                "JSON 文件中没有找到记录数组（由对象组成的数组）；请用选项 records_path 指明，"
                "如 data.items。",
                code="records_path_not_found",
            )
    return Found(".".join(where or []), _elements(tokens, fh))


def _descend(tokens: _Tokens, steps: list[str], records_path: str) -> list[str]:
    for step in steps:
        if tokens.peek() != "{" or not _to_key(tokens, step):
            raise LoadError(
                "JSON 中没有“{path}”（在“{step}”处中断）。",
                code="records_path_not_found",
                details={"records_path": records_path, "missing": step},
                path=records_path,
                step=step,
            )
    if tokens.peek() != "[":
        raise LoadError(
            "JSON 中“{path}”不是数组，无法作为记录读取。",
            code="records_path_not_found",
            details={"records_path": records_path},
            path=records_path,
        )
    tokens.expect("[")
    return steps


def _to_key(tokens: _Tokens, wanted: str) -> bool:
    """Move into the object at the cursor up to the value of key ``wanted``."""
    tokens.expect("{")
    if tokens.peek() == "}":
        tokens.pos += 1
        return False
    while True:
        key = tokens.value()
        tokens.expect(":")
        if key == wanted:
            return True
        tokens.value()
        if tokens.expect(",}") == "}":
            return False


def _search(tokens: _Tokens, path: list[str], depth: int) -> list[str] | None:
    """Find the first array whose first element is an object; the cursor stops inside it."""
    if tokens.peek() == "[":
        return path if _array_of_objects(tokens) else None
    if tokens.peek() != "{" or depth == 0:
        tokens.value()
        return None
    tokens.expect("{")
    if tokens.peek() == "}":
        tokens.pos += 1
        return None
    while True:
        key = tokens.value()
        tokens.expect(":")
        found = _search(tokens, [*path, str(key)], depth - 1)
        if found is not None:
            return found
        if tokens.expect(",}") == "}":
            return None


def _array_of_objects(tokens: _Tokens) -> bool:
    """At ``[``: true (cursor left just inside) if the array holds objects, else skip it."""
    tokens.expect("[")
    if tokens.peek() == "{":
        return True
    if tokens.peek() == "]":
        tokens.pos += 1
        return False
    while True:
        tokens.value()
        if tokens.expect(",]") == "]":
            return False


def _elements(tokens: _Tokens, fh: TextIO) -> Iterator[dict[str, str | None]]:
    with fh:  # the cursor is just inside the records array
        if tokens.peek() == "]":
            return
        number = 0
        while True:
            number += 1
            record = tokens.value()
            if not isinstance(record, dict):
                raise LoadError(
                    "第 {n} 条记录不是对象（键值对），无法作为一行数据。",
                    code="json_not_records",
                    details={"record": number},
                    n=number,
                )
            yield {str(key): cell(value) for key, value in record.items()}
            if tokens.expect(",]") == "]":
                return
