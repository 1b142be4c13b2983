"""What every reader is given, and running one long DuckDB statement with progress and cancel."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from kuaishu.collect.raw import LINE_COLUMN, LoadError, Progress, check_headers
from kuaishu.settings import get_settings

POLL_SECONDS = 0.5
# The default of KUAISHU_MAX_COLUMNS. A 10,000-column CSV ran DuckDB out of a load's memory
# (640 MB) on its first rows; 2,000 read in well under it. Past the limit, refuse plainly.
MAX_COLUMNS = 2_000


@dataclass
class Context:
    filename: str
    progress: Progress
    work: Path  # a folder for temporary files (a UTF-8 copy), removed after the read
    options: dict[str, Any] = field(default_factory=dict)

    def option(self, name: str) -> str | None:
        value = self.options.get(name)
        return str(value) if value not in (None, "") else None


def too_wide(count: int) -> None:
    """Refuse a file wider than the configured limit, before anything of it is read."""
    limit = get_settings().max_columns
    if count > limit:
        raise LoadError(
            "文件有 {count} 列，超过上限 {limit} 列。请拆分后再加载。",
            code="too_many_columns",
            details={"columns": count, "limit": limit},
            count=count,
            limit=limit,
        )


def same_name(first: str, second: str, columns: tuple[int, int]) -> LoadError:
    """DuckDB's names ignore case: ``Name`` and ``name`` cannot both be columns."""
    return LoadError(
        "列名“{a}”与“{b}”仅大小写不同（第 {x} 列和第 {y} 列），无法同时作为列名。",
        code="duplicate_header",
        details={"name": second, "columns": list(columns)},
        a=first,
        b=second,
        x=columns[0],
        y=columns[1],
    )


def check_columns(names: list[str], *, checked: bool = False) -> list[str]:
    """Source column names fit for ``raw``: present, unique (ignoring case), not too many."""
    too_wide(len(names))
    cleaned = names if checked else check_headers(names)
    seen: dict[str, int] = {}
    for n, name in enumerate(cleaned, start=1):
        key = name.casefold()
        if key in seen:
            raise same_name(cleaned[seen[key] - 1], name, (seen[key], n))
        seen[key] = n
    if LINE_COLUMN in cleaned:
        raise LoadError(
            "列名“{name}”为系统保留，请在源文件中改名后重试。",
            code="reserved_column",
            details={"name": LINE_COLUMN},
            name=LINE_COLUMN,
        )
    return cleaned


def utf8_source(path: Path, ctx: Context, *, suffix: str) -> tuple[Path, str]:
    """The file itself if it is UTF-8, else a UTF-8 copy in the work folder; and its encoding."""
    from kuaishu.collect.readers.textfile import guess_encoding, read_head, scan

    head, whole = read_head(path)
    encoding = guess_encoding(head, whole, ctx.option("encoding"))
    if encoding.direct:
        return path, encoding.label
    scanned = scan(
        path,
        encoding,
        stop=None,
        output=ctx.work / f"input.utf8{suffix}",
        tick=lambda _lines: ctx.progress(0, None),
    )
    assert scanned.output is not None
    return scanned.output, encoding.label


def execute_with_progress(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: list[Any],
    *,
    progress: Progress,
    total: int | None,
) -> None:
    """Run one statement in a thread while this one reports progress every half second.

    The progress callback raises LoadCancelled when the user cancels: the statement is then
    interrupted and the cancellation goes on up.
    """
    failure: list[BaseException] = []
    done = threading.Event()

    def work() -> None:
        try:
            con.execute(sql, params)
        except BaseException as error:  # handed to the caller's thread below
            failure.append(error)
        finally:
            done.set()

    thread = threading.Thread(target=work, name="kuaishu-read", daemon=True)
    thread.start()
    try:
        while not done.wait(POLL_SECONDS):
            percent = con.query_progress()
            rows = int(total * percent / 100) if total and percent > 0 else 0
            progress(rows, total)
    except BaseException:
        con.interrupt()
        thread.join()
        raise
    thread.join()
    if failure:
        raise failure[0]
