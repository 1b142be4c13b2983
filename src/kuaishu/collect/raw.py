"""The contract between a source and the load: rows staged as text in a DuckDB table.

Every reader and connector ends the same way: a DuckDB table named ``raw`` holding the source's
rows, every column VARCHAR and named as in the source, plus an expression that gives each row's
place in the source (a line or record number) for error messages and the quarantine. Types come
from the catalog's data items, never from guessing (DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kuaishu.errors import AppError

RAW_TABLE = "raw"
LINE_COLUMN = "_line"


class LoadError(AppError):
    """A load that cannot go on: the input is not what it should be. Nothing is published."""

    status = 422
    code = "load_failed"
    message = "数据加载失败。"


class LoadCancelled(AppError):
    status = 409
    code = "load_cancelled"
    message = "加载已被取消。"


@dataclass
class Skipped:
    """Source lines that are not data (preamble, footnote, sub-heading), reported, never silent."""

    line: int
    reason: str
    text: str


@dataclass
class RawTable:
    """What a reader staged: columns in source order, and how to find each row in the source."""

    columns: list[str]
    rows: int
    line_sql: str = LINE_COLUMN  # SQL giving each row's source line; ``rowid + n`` for bulk CSV
    line_label: str = "行"  # 行 (line) or 条 (record), for messages
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    encoding: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. an incremental cursor's new value


# Called with rows read so far (and the expected total, when known); raises LoadCancelled to stop.
Progress = Callable[[int, int | None], None]


def no_progress(_rows: int, _total: int | None) -> None:
    return None


def out_of_memory(error: BaseException) -> LoadError | None:
    """DuckDB ran out of the memory a load may use: said as such, not as a bad line."""
    if not str(error).lstrip().lower().startswith("out of memory error"):
        return None
    from kuaishu.settings import get_settings

    limit = get_settings().load_memory_mb
    return LoadError(
        "读取文件所需内存超过一次加载的上限（{mb} MB）。请减少列数或拆分文件后重试。",
        code="load_out_of_memory",
        details={"memory_mb": limit},
        mb=limit,
    )


def check_headers(columns: list[str], *, where: str = "表头") -> list[str]:
    """Source column names, trimmed; empty or duplicate names are an error naming them."""
    cleaned = [str(c).strip() if c is not None else "" for c in columns]
    if not cleaned:
        raise LoadError("文件中没有数据列。", code="no_columns")
    empty = [n + 1 for n, c in enumerate(cleaned) if not c]
    if empty:
        raise LoadError(
            "{where}第 {cols} 列的列名为空。",
            code="empty_header",
            details={"columns": empty},
            where=where,
            cols="、".join(map(str, empty)),
        )
    seen: dict[str, int] = {}
    for n, name in enumerate(cleaned, start=1):
        if name in seen:
            raise LoadError(
                "{where}中列名“{name}”重复（第 {a} 列和第 {b} 列）。",
                code="duplicate_header",
                details={"name": name, "columns": [seen[name], n]},
                where=where,
                name=name,
                a=seen[name],
                b=n,
            )
        seen[name] = n
    return cleaned


def quote(identifier: str) -> str:
    """A DuckDB identifier, quoted (column names are the department's own, often Chinese)."""
    return '"' + identifier.replace('"', '""') + '"'
