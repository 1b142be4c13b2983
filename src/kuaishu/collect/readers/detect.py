"""What a file really is, from its first bytes, and whether that agrees with its name.

The name is only a claim: departments rename exports, systems write HTML into ``.xls`` files, and
uploads get truncated. Formats fall into families (text, spreadsheet, JSON, XML, Parquet). A file
whose content is of another family than its name says is refused, naming both; within a family
(an ``.xls`` that is really ``.xlsx``, a ``.json`` holding JSON Lines) it is read as what it is,
with a note.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePath
from typing import NoReturn

from kuaishu.collect.raw import LoadError

HEAD_BYTES = 64 * 1024


class Kind(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    XLS = "xls"
    ODS = "ods"
    JSON = "json"
    JSONL = "jsonl"
    XML = "xml"
    PARQUET = "parquet"


FAMILY = {
    Kind.CSV: "text",
    Kind.XLSX: "sheet",
    Kind.XLS: "sheet",
    Kind.ODS: "sheet",
    Kind.JSON: "json",
    Kind.JSONL: "json",
    Kind.XML: "xml",
    Kind.PARQUET: "parquet",
}
EXTENSIONS = {
    ".csv": Kind.CSV,
    ".tsv": Kind.CSV,
    ".tab": Kind.CSV,
    ".txt": Kind.CSV,
    ".xlsx": Kind.XLSX,
    ".xlsm": Kind.XLSX,
    ".xls": Kind.XLS,
    ".et": Kind.XLS,  # WPS 表格 saves BIFF workbooks under its own extension
    ".ods": Kind.ODS,
    ".json": Kind.JSON,
    ".jsonl": Kind.JSONL,
    ".ndjson": Kind.JSONL,
    ".xml": Kind.XML,
    ".parquet": Kind.PARQUET,
    ".pq": Kind.PARQUET,
}
KIND_NAMES = {
    Kind.CSV: "CSV/TSV 文本",
    Kind.XLSX: "Excel 工作簿（.xlsx）",
    Kind.XLS: "Excel 97-2003 工作簿（.xls）",
    Kind.ODS: "OpenDocument 电子表格（.ods）",
    Kind.JSON: "JSON",
    Kind.JSONL: "JSON Lines",
    Kind.XML: "XML",
    Kind.PARQUET: "Parquet",
}
# Contents we recognise but do not read: named in the error so the sender knows what they sent.
FOREIGN = (
    (b"\x89PNG\r\n\x1a\n", "PNG 图片"),
    (b"\xff\xd8\xff", "JPEG 图片"),
    (b"GIF87a", "GIF 图片"),
    (b"GIF89a", "GIF 图片"),
    (b"%PDF-", "PDF 文档"),
    (b"\x1f\x8b", "gzip 压缩文件"),
    (b"Rar!\x1a\x07", "RAR 压缩包"),
    (b"7z\xbc\xaf\x27\x1c", "7z 压缩包"),
    (b"\x7fELF", "可执行程序"),
    (b"MZ\x90\x00", "Windows 可执行程序"),
)
SUPPORTED = "CSV、TSV、XLS、XLSX、JSON、JSON Lines、XML、Parquet"
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


@dataclass
class Detected:
    kind: Kind
    notes: list[str] = field(default_factory=list)


def declared_kind(filename: str) -> Kind | None:
    return EXTENSIONS.get(PurePath(filename).suffix.lower())


def detect(path: Path, filename: str) -> Detected:
    """The file's real kind; refuses a file of another family than its name, or of none."""
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    declared = declared_kind(filename)
    found = _sniff(path, head, declared)
    if not isinstance(found, Kind):  # a StrEnum is a str too: test for the Kind
        _refuse(filename, declared, found)
    if declared is None or declared == found:
        return Detected(found)
    if FAMILY[declared] != FAMILY[found]:
        _refuse(filename, declared, KIND_NAMES[found])
    return Detected(
        found,
        [
            f"文件“{filename}”的扩展名表明是{KIND_NAMES[declared]}，"
            f"内容实际是{KIND_NAMES[found]}，已按实际格式读取。"
        ],
    )


def _refuse(filename: str, declared: Kind | None, actual: str) -> NoReturn:
    if declared is None:
        raise LoadError(
            "文件“{name}”的内容是{actual}，不是支持的数据文件格式（{supported}）。",
            code="unsupported_format",
            details={"file": filename, "actual": actual},
            name=filename,
            actual=actual,
            supported=SUPPORTED,
        )
    raise LoadError(
        "文件“{name}”的扩展名表明是{declared}，但内容实际是{actual}。请确认文件后重新上传。",
        code="format_mismatch",
        details={"file": filename, "declared": str(declared), "actual": actual},
        name=filename,
        declared=KIND_NAMES[declared],
        actual=actual,
    )


def _sniff(path: Path, head: bytes, declared: Kind | None) -> Kind | str:
    """A Kind, or the name of what the content is when it is nothing we read."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _zip_kind(path, declared)
    if head.startswith(OLE2):
        return Kind.XLS
    if head.startswith(b"PAR1"):
        return Kind.PARQUET
    for magic, name in FOREIGN:
        if head.startswith(magic):
            return name
    return _text_kind(head)


def _zip_kind(path: Path, declared: Kind | None) -> Kind | str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            mimetype = archive.read("mimetype")[:80] if "mimetype" in names else b""
    except (zipfile.BadZipFile, OSError, EOFError, KeyError):
        # A zip whose directory is missing: most likely a workbook cut short in transfer. The
        # spreadsheet reader says so; a damaged archive claiming to be anything else is refused.
        return Kind.XLSX if declared in (None, Kind.XLSX, Kind.XLS) else "损坏的 ZIP 压缩包"
    if "xl/workbook.xml" in names:
        return Kind.XLSX
    if b"opendocument.spreadsheet" in mimetype:
        return Kind.ODS
    if "word/document.xml" in names:
        return "Word 文档"
    if "ppt/presentation.xml" in names:
        return "PowerPoint 演示文稿"
    return "ZIP 压缩包"


def _text_kind(head: bytes) -> Kind | str:
    if head.startswith(BOMS[1]) or head.startswith(BOMS[2]):
        return Kind.CSV  # UTF-16 text, as Excel's “Unicode 文本” writes it
    body = head[3:] if head.startswith(BOMS[0]) else head
    if _binary(body):
        return "二进制数据"
    start = body.lstrip()[:512]
    if start.startswith(b"["):
        return Kind.JSON
    if start.startswith(b"{"):
        return Kind.JSONL if _json_lines(body) else Kind.JSON
    if start.startswith(b"<"):
        lowered = start.lower()
        if b"<html" in lowered or b"<!doctype html" in lowered or b"<table" in lowered:
            return "HTML 网页（常见于系统导出的“伪 Excel”，请在 Excel 中另存为 .xlsx）"
        return Kind.XML
    return Kind.CSV


def _binary(sample: bytes) -> bool:
    """Mostly control bytes: not text in any encoding we read (a stray NUL is reported by line)."""
    if not sample:
        return False
    controls = sum(1 for byte in sample[:4096] if byte < 9 or 13 < byte < 32)
    return controls > len(sample[:4096]) // 10


def _json_lines(body: bytes) -> bool:
    """One object per line: the first line is a whole object, and another line follows it."""
    lines = [line for line in body.splitlines()[:3] if line.strip()]
    try:
        first = json.loads(lines[0])
    except (ValueError, IndexError):
        return False
    if not isinstance(first, dict):
        return False
    if len(lines) > 1:
        return lines[1].lstrip().startswith(b"{")
    # A single line: an envelope around a records array is JSON, a flat object is one record.
    return not any(isinstance(v, list | dict) for v in first.values())
