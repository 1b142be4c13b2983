"""Text files: which encoding, verified rather than guessed, and one streaming pass over the bytes.

Charset detectors give GBK low confidence, so the guess is checked by decoding: UTF-8 first (it
almost never decodes text in another encoding), then GBK, then GB18030. The pass counts lines,
finds NUL bytes, and — for anything but UTF-8, or when a footer must go — writes a UTF-8 copy in
chunks of a few megabytes with a strict incremental decoder, so memory stays flat for any size.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kuaishu.collect.raw import LoadError

SAMPLE_BYTES = 1 << 20
TAIL_BYTES = 64 * 1024
CHUNK_BYTES = 4 << 20
MAX_LINE_BYTES = 64 << 20
# Three Chinese characters in a row as UTF-8: in a GBK file, the start of a line that is not GBK.
UTF8_RUN = re.compile(rb"(?:[\xe4-\xe9][\x80-\xbf]{2}){3}")
OTHER_GUESSES = {"big5": "big5", "big5hkscs": "big5hkscs", "cp950": "big5", "utf_16": "utf-16"}


@dataclass(frozen=True)
class Encoding:
    codec: str  # what Python decodes the whole file with
    label: str  # what the load reports: utf-8, utf-8-sig, gbk, gb18030, utf-16, big5
    bom: int = 0  # bytes of byte-order mark at the start
    body: str = ""  # what Python decodes bytes after the mark with (default: ``codec``)

    @property
    def plain(self) -> str:
        return self.body or self.codec

    @property
    def direct(self) -> bool:
        """DuckDB reads UTF-8 (with or without BOM) itself, in parallel."""
        return self.label in ("utf-8", "utf-8-sig")

    @property
    def wide(self) -> bool:
        return self.label == "utf-16"


def read_head(path: Path, size: int = SAMPLE_BYTES) -> tuple[bytes, bool]:
    """The first ``size`` bytes, and whether that is the whole file."""
    with path.open("rb") as fh:
        head = fh.read(size + 1)
    return head[:size], len(head) <= size


def line_of(data: bytes, position: int) -> int:
    return data.count(b"\n", 0, position) + 1


def guess_encoding(head: bytes, whole: bool, forced: str | None = None) -> Encoding:
    """The encoding of a text file, from its first megabyte, verified by a strict decode."""
    if forced:
        return _forced(forced)
    if head.startswith(codecs.BOM_UTF8):
        return Encoding("utf-8-sig", "utf-8-sig", 3, "utf-8")
    if head.startswith(codecs.BOM_UTF16_LE):
        return Encoding("utf-16", "utf-16", 2, "utf-16-le")
    if head.startswith(codecs.BOM_UTF16_BE):
        return Encoding("utf-16", "utf-16", 2, "utf-16-be")
    sample = head if whole else head[: head.rfind(b"\n") + 1] or head
    try:
        sample.decode("utf-8")
        return Encoding("utf-8", "utf-8")
    except UnicodeDecodeError as error:
        _mixed_if_utf8_before(sample, error.start)
    for codec in ("gbk", "gb18030"):
        try:
            sample.decode(codec)
            return Encoding("gb18030", codec)
        except UnicodeDecodeError as error:
            failed_at = error.start
    _mixed_if_utf8_line(sample, failed_at)
    guessed = _detector_guess(sample)
    if guessed is not None:
        return guessed
    raise LoadError(
        "无法识别文件的字符编码：第 {line} 行既不是 UTF-8，也不是 GBK/GB18030。"
        "请另存为 UTF-8 或 GBK 编码后重新上传。",
        code="unknown_encoding",
        details={"line": line_of(sample, failed_at)},
        line=line_of(sample, failed_at),
    )


def _forced(name: str) -> Encoding:
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        raise LoadError("不支持的字符编码“{name}”。", code="unknown_encoding", name=name) from None
    if codec in ("utf-8", "utf-8-sig"):
        return Encoding(codec, codec)
    if codec in ("gbk", "gb2312", "gb18030"):
        return Encoding("gb18030", "gbk" if codec != "gb18030" else codec)
    return Encoding(codec, codec)


def _mixed_if_utf8_before(sample: bytes, bad: int) -> None:
    """Real UTF-8 text before the first byte that is not UTF-8: two encodings in one file."""
    prefix = sample[: sample.rfind(b"\n", 0, bad) + 1]
    if sum(1 for ch in prefix.decode("utf-8") if ord(ch) > 0x7F) >= 4:
        raise _mixed(line_of(sample, bad), "UTF-8")


def _mixed_if_utf8_line(sample: bytes, bad: int) -> None:
    """GBK lines, then a UTF-8 line where GB18030 fails: two encodings, not an unknown one."""
    begin = sample.rfind(b"\n", 0, bad) + 1
    end = sample.find(b"\n", bad)
    line = sample[begin : end if end >= 0 else len(sample)]
    try:
        sample[:begin].decode("gb18030")
        line.decode("utf-8")
    except UnicodeDecodeError:
        return
    raise _mixed(line_of(sample, bad), "gbk")


def _mixed(line: int, label: str) -> LoadError:
    return LoadError(
        "文件中混有不同的字符编码：第 {line} 行不是 {encoding} 编码（前面的行是）。"
        "请把整个文件统一另存为一种编码后重新上传。",
        code="mixed_encoding",
        details={"line": line, "encoding": label},
        line=line,
        encoding=label.upper(),
    )


def _detector_guess(sample: bytes) -> Encoding | None:
    """charset-normalizer's guess, taken only for the few encodings we know and if it decodes."""
    from charset_normalizer import from_bytes

    best = from_bytes(sample[:200_000]).best()
    label = OTHER_GUESSES.get(best.encoding) if best else None
    if label is None:
        return None
    try:
        sample.decode(label)
    except UnicodeDecodeError:
        return None
    return Encoding(label, label)


def decode_head(head: bytes, whole: bool, encoding: Encoding) -> str:
    """The sample as text, cut at its last complete line unless it is the whole file."""
    decoder = codecs.getincrementaldecoder(encoding.codec)("replace")
    text = decoder.decode(head, final=whole)
    return text if whole else text[: text.rfind("\n") + 1]


def read_tail(path: Path, size: int, encoding: Encoding) -> tuple[int, str]:
    """The last lines as text, and the byte offset where they start (at a line start)."""
    start = max(encoding.bom, size - TAIL_BYTES)
    if encoding.wide:
        start += (start - encoding.bom) % 2
    with path.open("rb") as fh:
        fh.seek(start)
        data = fh.read()
    text = data.decode(encoding.plain, errors="replace")
    if start > encoding.bom:
        cut = text.find("\n") + 1
        start += byte_length(text[:cut], encoding)
        text = text[cut:]
    return start, text


def byte_length(text: str, encoding: Encoding) -> int:
    return len(text.encode(encoding.plain, errors="replace"))


@dataclass
class Scanned:
    lines: int  # physical lines in the whole file
    output: Path | None  # the UTF-8 copy DuckDB reads instead, if one was written


Tick = Callable[[int], None]


def scan(
    path: Path, encoding: Encoding, *, stop: int | None, output: Path | None, tick: Tick
) -> Scanned:
    """Count lines and refuse NUL bytes; copy (as UTF-8) the bytes before ``stop`` if asked."""
    if encoding.direct:
        return _scan_utf8(path, stop=stop, output=output, tick=tick)
    assert output is not None
    return _transcode(path, encoding, stop=stop, output=output, tick=tick)


def _nul(line: int) -> LoadError:
    return LoadError(
        "第 {line} 行含有空字符（NUL，字节 0x00）：文件可能已损坏，或不是文本文件。",
        code="nul_byte",
        details={"line": line},
        line=line,
    )


def _scan_utf8(path: Path, *, stop: int | None, output: Path | None, tick: Tick) -> Scanned:
    lines, position, last = 0, 0, b"\n"
    with path.open("rb") as fh, output.open("wb") if output else _Null() as out:
        while chunk := fh.read(CHUNK_BYTES):
            nul = chunk.find(b"\0")
            if nul >= 0:
                raise _nul(lines + line_of(chunk, nul))
            if output is not None and stop is not None and position < stop:
                out.write(chunk[: stop - position])
            lines += chunk.count(b"\n")
            position += len(chunk)
            last = chunk[-1:]
            tick(lines)
    return Scanned(lines + (last != b"\n"), output)


def _transcode(
    path: Path, encoding: Encoding, *, stop: int | None, output: Path, tick: Tick
) -> Scanned:
    decoder = codecs.getincrementaldecoder(encoding.codec)("strict")
    lines, position, carry, last = 0, 0, b"", "\n"
    with path.open("rb") as fh, output.open("w", encoding="utf-8", newline="") as out:
        while True:
            chunk = fh.read(CHUNK_BYTES)
            final = not chunk
            data, carry = _whole_lines(carry + chunk, final or encoding.wide)
            keep = data if stop is None else data[: max(0, stop - position)]
            position += len(data)
            try:
                text = decoder.decode(keep, final=final)
            except UnicodeDecodeError as error:
                before = keep[: max(0, error.start)].decode(encoding.codec, errors="replace")
                raise _mixed(lines + before.count("\n") + 1, encoding.label) from None
            if "\0" in text:
                raise _nul(lines + text.count("\n", 0, text.index("\0")) + 1)
            if not encoding.wide:
                _refuse_utf8_lines(keep, lines, encoding.label)
            out.write(text)
            # Lines past ``stop`` (the footer) are counted, not written.
            rest = data[len(keep) :].decode(encoding.plain, errors="replace")
            lines += text.count("\n") + rest.count("\n")
            last = (rest or text or last)[-1:] or last
            tick(lines)
            if final:
                break
    return Scanned(lines + (last != "\n"), output)


def _whole_lines(data: bytes, final: bool) -> tuple[bytes, bytes]:
    """Split at the last newline so no line (and no character) spans two chunks."""
    if final:
        return data, b""
    cut = data.rfind(b"\n") + 1
    if cut == 0 and len(data) > MAX_LINE_BYTES:
        raise LoadError(
            "文件中有一行超过 {size} MB，无法读取：可能不是按行组织的文本文件。",
            code="line_too_long",
            size=MAX_LINE_BYTES >> 20,
        )
    return data[:cut], data[cut:]


def _refuse_utf8_lines(data: bytes, lines_before: int, label: str) -> None:
    """A line that is valid UTF-8 Chinese inside a GBK file was pasted from another file."""
    for match in UTF8_RUN.finditer(data):
        begin = data.rfind(b"\n", 0, match.start()) + 1
        end = data.find(b"\n", match.end())
        try:
            data[begin : end if end >= 0 else len(data)].decode("utf-8")
        except UnicodeDecodeError:
            continue
        raise LoadError(
            "文件中混有不同的字符编码：第 {line} 行是 UTF-8 编码，而文件其余部分是 {encoding}。"
            "请把整个文件统一另存为一种编码后重新上传。",
            code="mixed_encoding",
            details={"line": lines_before + line_of(data, begin), "encoding": label},
            line=lines_before + line_of(data, begin),
            encoding=label.upper(),
        )


class _Null:
    """A file that swallows what is written (the scan without a copy)."""

    def __enter__(self) -> _Null:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def write(self, _data: bytes) -> int:
        return 0
