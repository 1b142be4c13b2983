"""Database sources (前置机): a table or a SELECT on a department's database, read in batches.

Rows are streamed (a server-side cursor where the driver has one) and appended to ``raw`` one
Arrow batch at a time, so memory stays bounded by the batch. The source is opened read-only.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote as url_quote

import duckdb
from sqlalchemy import URL, Engine, TextClause, bindparam, create_engine, make_url, text
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlalchemy.types import NullType

from kuaishu.collect.connectors.previous import Previous, append_previous
from kuaishu.collect.connectors.staging import Stager, text_of
from kuaishu.collect.models import Source
from kuaishu.collect.raw import LoadError, Progress, RawTable
from kuaishu.errors import ValidationFailed
from kuaishu.security import egress
from kuaishu.settings import get_settings
from kuaishu.store import storage

BATCH_ROWS = 10_000
CONNECT_SECONDS = 10
PASSWORD_SLOT = "{password}"  # noqa: S105 - a placeholder in the URL, not a password
_SELECT = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)


@dataclass(frozen=True)
class DatabaseConfig:
    url: str
    table: str | None
    query: str | None
    incremental_column: str | None
    batch_rows: int


def _invalid(message: str, code: str, **params: Any) -> ValidationFailed:
    return ValidationFailed(message, code=code, **params)


def parse_config(config: dict[str, Any]) -> DatabaseConfig:
    """The settings of a database source, checked: a URL, and a table or a single SELECT."""
    table = str(config.get("table") or "").strip() or None
    query = str(config.get("query") or "").strip().rstrip(";").strip() or None
    if (table is None) == (query is None):
        raise _invalid(
            "数据库来源须指定表名（table）或查询语句（query）之一。", "source_table_or_query"
        )
    if query is not None and (not _SELECT.match(query) or ";" in query):
        raise _invalid(
            "查询语句只能是一条 SELECT（或 WITH … SELECT）语句。", "source_query_not_select"
        )
    column = str(config.get("incremental_column") or "").strip() or None
    batch = config.get("batch_rows", BATCH_ROWS)
    if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= 1_000_000:
        raise _invalid("batch_rows 应为 1 到 1000000 之间的整数。", "source_config_invalid")
    url = str(config.get("url") or "")
    try:
        parsed = make_url(url.replace(PASSWORD_SLOT, "x"))
    except ArgumentError as error:
        raise _invalid("数据库地址“{url}”无法识别。", "source_url_invalid", url=url) from error
    guard(parsed)
    egress.check_database_url(parsed)
    return DatabaseConfig(
        url=url, table=table, query=query, incremental_column=column, batch_rows=batch
    )


def guard(url: URL) -> None:
    """Refuse the platform's own database: a source must never read kuaishu's accounts or keys."""
    forbidden = ValidationFailed(
        "不能把平台自身的数据库或数据目录作为采集来源。", code="source_forbidden"
    )
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise _invalid("SQLite 来源须指定数据库文件路径。", "source_url_invalid")
        path = Path(url.database).resolve()
        if path.is_relative_to(storage.data_root()):
            raise forbidden
        return
    own = make_url(get_settings().resolved_database_url)
    if (url.get_backend_name(), url.host, url.port or 0, url.database) == (
        own.get_backend_name(),
        own.host,
        own.port or 0,
        own.database,
    ):
        raise forbidden


def resolve_url(config_url: str, secret: str | None) -> URL:
    """The URL with its password: the ``{password}`` slot filled, or the sealed secret added."""
    if PASSWORD_SLOT in config_url:
        if secret is None:
            raise LoadError("数据库地址需要密码，但来源未保存密钥。", code="source_secret_missing")
        url = make_url(config_url.replace(PASSWORD_SLOT, url_quote(secret, safe="")))
    else:
        url = make_url(config_url)
        if secret and url.password is None:
            url = url.set(password=secret)
    guard(url)
    return url


def _engine(url: URL, allowed: egress.AllowList) -> Engine:
    shown = url.render_as_string(hide_password=True)
    url, pinned = egress.database_target(url, allowed)
    try:
        if url.get_backend_name() == "sqlite":
            path = Path(str(url.database))
            if not path.is_file():
                raise LoadError(
                    "数据库文件“{path}”不存在。", code="source_unreachable", path=str(path)
                )
            # mode=ro: the department's file is never written, nor created when missing.
            target = f"file:{url_quote(str(path.resolve()))}?mode=ro"
            return create_engine(
                "sqlite://",
                creator=lambda: sqlite3.connect(target, uri=True, check_same_thread=False),
                poolclass=NullPool,
            )
        connect_args: dict[str, Any] = dict(pinned)
        if url.get_backend_name() == "postgresql":
            connect_args["connect_timeout"] = CONNECT_SECONDS
        return create_engine(url, poolclass=NullPool, connect_args=connect_args)
    except (NoSuchModuleError, ImportError) as error:
        raise LoadError(
            "平台未安装访问“{url}”所需的数据库驱动。", code="source_driver_missing", url=shown
        ) from error


def statement(engine: Engine, cfg: DatabaseConfig, cursor: str | None) -> TextClause:
    """``SELECT *`` from the table or the query, past ``cursor`` when incremental."""
    prep = engine.dialect.identifier_preparer
    if cfg.table is not None:
        schema, _dot, name = cfg.table.rpartition(".")
        source = (prep.quote_schema(schema) + "." if schema else "") + prep.quote(name)
    else:
        # A colon in the department's SQL is theirs (a cast, a time), never a bound parameter.
        source = "(" + str(cfg.query).replace(":", "\\:") + ") AS kuaishu_source"
    sql = f"SELECT * FROM {source}"
    if cfg.incremental_column is None or cursor is None:
        return text(sql)
    sql += f" WHERE {prep.quote(cfg.incremental_column)} > :cursor"
    # Untyped: the database reads the stored text as the column's own type.
    return text(sql).bindparams(bindparam("cursor", value=cursor, type_=NullType()))


def _larger(top: Any, values: list[Any], column: str) -> Any:
    for value in values:
        if value is None:
            continue
        try:
            if top is None or value > top:
                top = value
        except TypeError as error:
            raise LoadError(
                "增量列“{col}”的值类型不一致（如数字与文字混杂），无法比较大小。",
                code="incremental_column_mixed",
                col=column,
            ) from error
    return top


def _stream(
    engine: Engine, cfg: DatabaseConfig, cursor: str | None, stager: Stager, shown: str
) -> Any:
    """Append the rows to ``raw``; returns the largest incremental value read (or None)."""
    top: Any = None
    step = "connect"
    try:
        with engine.connect() as conn:
            options: dict[str, Any] = {"stream_results": True, "yield_per": cfg.batch_rows}
            if engine.dialect.name == "postgresql":
                options["postgresql_readonly"] = True
            result = conn.execution_options(**options).execute(statement(engine, cfg, cursor))
            step = "read"
            columns = [str(key) for key in result.keys()]  # noqa: SIM118 - a Result, not a dict
            index = _cursor_index(cfg, columns)
            stager.add(columns, [[] for _ in columns])
            for batch in result.partitions(cfg.batch_rows):
                if index is not None:
                    top = _larger(top, [row[index] for row in batch], str(cfg.incremental_column))
                stager.add(
                    columns, [[text_of(row[i]) for row in batch] for i in range(len(columns))]
                )
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0][:300]
        if step == "connect" and _is_connect_error(error):
            raise LoadError(
                "无法连接数据库“{url}”：{reason}",
                code="source_unreachable",
                url=shown,
                reason=reason,
            ) from error
        raise LoadError(
            "读取数据库“{url}”失败：{reason}", code="source_query_failed", url=shown, reason=reason
        ) from error
    return top


def _is_connect_error(error: SQLAlchemyError) -> bool:
    from sqlalchemy.exc import InterfaceError, OperationalError

    return isinstance(error, OperationalError | InterfaceError) and "connect" in str(error).lower()


def _cursor_index(cfg: DatabaseConfig, columns: list[str]) -> int | None:
    if cfg.incremental_column is None:
        return None
    if cfg.incremental_column not in columns:
        raise LoadError(
            "增量列“{col}”不在源数据的列中（{cols}）。",
            code="incremental_column_missing",
            col=cfg.incremental_column,
            cols="、".join(columns[:30]),
        )
    return columns.index(cfg.incremental_column)


def read_database(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    *,
    secret: str | None,
    progress: Progress,
    previous: Previous | None,
    allowed: egress.AllowList,
) -> RawTable:
    """Stage the source's rows: all of them, or those past the served version's cursor."""
    cfg = parse_config(source.config or {})
    url = resolve_url(cfg.url, secret)
    shown = url.render_as_string(hide_password=True)
    base = previous if cfg.incremental_column and previous else None
    cursor = base.cursor if base else None
    engine = _engine(url, allowed)
    stager = Stager(con, progress, where="源数据列名")
    try:
        top = _stream(engine, cfg, cursor, stager, shown)
    finally:
        engine.dispose()
    if stager.rows == 0 and base is not None:
        raise LoadError(
            "自上次加载以来没有新数据（{col} > {cursor}）；未生成新版本，当前版本 {n} 保持不变。",
            code="no_new_rows",
            col=str(cfg.incremental_column),
            cursor=base.cursor,
            n=base.number,
        )
    if stager.rows == 0:
        raise LoadError("数据库来源“{url}”没有返回数据行。", code="no_rows", url=shown)
    raw = RawTable(columns=stager.columns, rows=stager.rows, line_sql="rowid + 1", line_label="条")
    if cfg.incremental_column:
        _incremental(con, raw, source, cfg, base, top, stager.rows)
    return raw


def _incremental(
    con: duckdb.DuckDBPyConnection,
    raw: RawTable,
    source: Source,
    cfg: DatabaseConfig,
    base: Previous | None,
    top: Any,
    new_rows: int,
) -> None:
    """Record the new cursor, and extend the served version when there is one to extend."""
    cursor = text_of(top) if top is not None else (base.cursor if base else None)
    column = str(cfg.incremental_column)
    raw.extra["cursor"] = cursor
    raw.extra["incremental"] = {
        "column": column,
        "cursor": cursor,
        "after": base.cursor if base else None,
        "new_rows": new_rows,
        "source": source.id,
    }
    if base is None:
        raw.notes.append(f"增量加载：当前版本不是由本来源增量生成，本次全量读取 {new_rows} 条。")
        return
    kept, replaced = append_previous(con, base, raw.columns)
    raw.rows += kept
    raw.extra["incremental"].update(base_version=base.number, kept=kept, replaced=replaced)
    raw.notes.append(
        f"增量加载：新取 {new_rows} 条（{column} > {base.cursor}），沿用版本 {base.number} 的 "
        f"{kept} 条，按关键字段替换 {replaced} 条。"
    )
