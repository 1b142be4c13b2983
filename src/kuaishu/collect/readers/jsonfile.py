"""JSON and JSON Lines: records are objects, their keys become columns, their values text.

A top-level array and JSON Lines go through DuckDB (parallel, any size). Records inside an
envelope — ``{"result": {"records": [...]}}``, located by the option ``records_path`` or, without
it, as the first array of objects — are read by :mod:`.jsonstream` one record at a time.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from kuaishu.clean.sqltext import literal
from kuaishu.collect.raw import RAW_TABLE, LoadError, RawTable
from kuaishu.collect.readers.common import (
    Context,
    check_columns,
    execute_with_progress,
    utf8_source,
)
from kuaishu.collect.readers.detect import Kind
from kuaishu.collect.readers.jsonstream import stream_records
from kuaishu.collect.readers.stage import Stager
from kuaishu.errors import storage_problem

MAX_OBJECT_BYTES = 256 << 20
WHERE = re.compile(r"(?:line|record/value) (\d+)")


def read_json(con: duckdb.DuckDBPyConnection, path: Path, kind: Kind, ctx: Context) -> RawTable:
    """Stage the records of a JSON or JSON Lines file."""
    source, encoding = utf8_source(path, ctx, suffix=".json")
    records_path = ctx.option("records_path")
    if kind == Kind.JSONL:
        raw = _read_with_duckdb(con, source, "newline_delimited", ctx)
    elif _first_char(source) == "[" and not records_path:
        raw = _read_with_duckdb(con, source, "array", ctx)
    else:
        raw = _read_streaming(con, source, records_path, ctx)
    raw.encoding = encoding
    return raw


def _first_char(source: Path) -> str:
    with source.open(encoding="utf-8-sig", errors="replace") as fh:
        return fh.read(4096).lstrip()[:1]


def _malformed(error: duckdb.Error) -> LoadError:
    message = str(error)
    found = WHERE.search(message)
    where = int(found.group(1)) if found else "?"
    return LoadError(
        "JSON 格式错误：第 {where} 行（条）附近无法解析。",
        code="json_invalid",
        details={"at": where, "reader": message.splitlines()[0][:300]},
        where=where,
    )


def _keys(con: duckdb.DuckDBPyConnection, source: Path, fmt: str) -> list[str]:
    """Every key in every record, in the order they first appear; refuses non-object records."""
    objects = (
        "SELECT json, row_number() OVER () AS rn FROM "
        f"read_json_objects(?, format = '{fmt}', maximum_object_size = {MAX_OBJECT_BYTES})"
    )
    try:
        count, odd, first_odd = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE json_type(json) <> 'OBJECT'), "
            f"min(rn) FILTER (WHERE json_type(json) <> 'OBJECT') FROM ({objects})",
            [str(source)],
        ).fetchone() or (0, 0, None)
        if odd:
            raise LoadError(
                "第 {n} 条记录不是对象（键值对），无法作为一行数据。",
                code="json_not_records",
                details={"record": first_odd},
                n=first_odd,
            )
        if not count:
            raise LoadError("文件中没有数据记录。", code="no_rows")
        rows = con.execute(
            f"WITH objs AS ({objects}), keys AS (SELECT rn, unnest(json_keys(json)) AS key, "
            "generate_subscripts(json_keys(json), 1) AS pos FROM objs) "
            "SELECT key FROM keys GROUP BY key ORDER BY min(rn), arg_min(pos, rn)",
            [str(source)],
        ).fetchall()
    except duckdb.InterruptException:
        raise
    except duckdb.Error as error:
        raise _malformed(error) from None
    return [str(row[0]) for row in rows]


def _read_with_duckdb(
    con: duckdb.DuckDBPyConnection, source: Path, fmt: str, ctx: Context
) -> RawTable:
    columns = check_columns(_keys(con, source, fmt))
    struct = "{" + ", ".join(f"{literal(name)}: 'VARCHAR'" for name in columns) + "}"
    sql = (
        f"CREATE TABLE {RAW_TABLE} AS SELECT * FROM read_json(?, format = '{fmt}', "
        f"records = true, columns = {struct}, maximum_object_size = {MAX_OBJECT_BYTES})"
    )
    try:
        execute_with_progress(con, sql, [str(source)], progress=ctx.progress, total=None)
    except duckdb.InterruptException:
        raise
    except duckdb.Error as error:
        raise storage_problem(error) or _malformed(error) from None
    row = con.execute(f"SELECT count(*) FROM {RAW_TABLE}").fetchone()
    rows = int(row[0]) if row else 0
    ctx.progress(rows, rows)
    return RawTable(columns=columns, rows=rows, line_sql="rowid + 1", line_label="条")


def _read_streaming(
    con: duckdb.DuckDBPyConnection, source: Path, records_path: str | None, ctx: Context
) -> RawTable:
    stager = Stager(con)
    found = stream_records(source, records_path)
    for number, record in enumerate(found.records, start=1):
        stager.append_record(record, number)
        if number % 10_000 == 0:
            ctx.progress(number, None)
    columns = check_columns(stager.finish(), checked=True)
    if not stager.rows:
        raise LoadError("文件中没有数据记录。", code="no_rows")
    notes = [f"从 JSON 的“{found.path}”读取记录。"] if found.path else []
    return RawTable(columns=columns, rows=stager.rows, line_label="条", notes=notes)
