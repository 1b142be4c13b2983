"""An XLSX is a zip: check it is whole and not a bomb before any spreadsheet library opens it.

A zip bomb declares (or hides) gigabytes behind a few kilobytes. The declared sizes and ratios
are checked first; then every member is inflated once, counting, because Python's zipfile stops
at the declared size and checks the CRC — so a member that lies about its size is caught too.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from kuaishu.collect.raw import LoadError

MAX_MEMBERS = 10_000
MAX_TOTAL_BYTES = 2 << 30  # unpacked; a workbook past this does not fit the load's memory anyway
MAX_RATIO = 200  # real sheets compress 5–30 times; a few hundred is already suspicious
RATIO_FROM_BYTES = 16 << 20  # small members may compress absurdly well (an empty style sheet)
READ_BYTES = 1 << 20


def _corrupt(filename: str, reason: str) -> LoadError:
    return LoadError(
        "文件“{name}”已损坏或不完整（可能上传或下载中断），无法作为 Excel 工作簿打开。",
        code="excel_corrupt",
        details={"file": filename, "reason": reason},
        name=filename,
    )


def _bomb(filename: str, member: str, size: int, ratio: float) -> LoadError:
    return LoadError(
        "文件“{name}”疑似压缩炸弹：其中“{member}”解压后达 {mb} MB（压缩比 {ratio}:1），拒绝读取。",
        code="zip_bomb",
        details={"file": filename, "member": member, "bytes": size, "ratio": round(ratio)},
        name=filename,
        member=member,
        mb=size >> 20,
        ratio=round(ratio),
    )


def check_zip(path: Path, filename: str) -> None:
    """Refuse a truncated or damaged workbook, and one that would unpack to absurd sizes."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise _corrupt(filename, str(error)) from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise _bomb(filename, f"{len(members)} 个文件", 0, 0)
        total = 0
        for member in members:
            ratio = member.file_size / max(1, member.compress_size)
            if member.file_size > RATIO_FROM_BYTES and ratio > MAX_RATIO:
                raise _bomb(filename, member.filename, member.file_size, ratio)
            total += member.file_size
            if total > MAX_TOTAL_BYTES:
                raise _bomb(filename, member.filename, total, ratio)
        for member in members:
            _inflate(archive, member, filename)


def _inflate(archive: zipfile.ZipFile, member: zipfile.ZipInfo, filename: str) -> None:
    try:
        with archive.open(member) as fh:
            while fh.read(READ_BYTES):
                pass
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as error:
        raise _corrupt(filename, f"{member.filename}: {error}") from None
