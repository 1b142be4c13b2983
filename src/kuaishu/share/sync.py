"""Table sync (库表同步): a subscription's changes written into a table of the consumer's own
database, through the same database connector the collection side uses to read departments'
databases (SQLAlchemy; SQLite and PostgreSQL tested).

Each batch is one transaction on the target: rows removed are deleted by row id, rows added or
changed are replaced by row id, and the subscription's cursor is stored in ``kuaishu_sync_state``
in the same transaction — so a batch applied but not acknowledged (the platform died between
the two) is recognised when it comes again and not applied twice.

Rows are keyed by the feed's ``row_id`` (``kuaishu_row_id``, the table's primary key), never by
the key columns as shown: a masked key (an ID number shown as ``520102********``) is alike for
many people, who would overwrite each other. The key columns are ordinary columns, masked as the
grant shows them.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    inspect,
    make_url,
    select,
)
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeEngine

from kuaishu.collect.connectors.database import guard
from kuaishu.errors import ValidationFailed
from kuaishu.share.feed import Cursor, Page
from kuaishu.store.changes import REMOVED

STATE_TABLE = "kuaishu_sync_state"
ROW_ID = "kuaishu_row_id"
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


class SyncFailed(Exception):
    """The target database refused or could not be reached; the batch is tried again later."""


def check_target(url: str, table: str) -> URL:
    """The target's URL, parsed and guarded (never the platform's own database), and its table."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise ValidationFailed(
            "数据库地址“{url}”无法识别。", code="sync_target_invalid", url=url
        ) from error
    if parsed.password is not None:
        raise ValidationFailed(
            "数据库地址中不要写密码，请在密码栏单独填写（平台加密保存）。",
            code="sync_password_in_url",
        )
    if not _TABLE_NAME.match(table):
        raise ValidationFailed(
            "目标表名“{table}”无效：只能用字母、数字和下划线，且不以数字开头。",
            code="sync_table_invalid",
            table=table,
        )
    guard(parsed)
    return parsed


def sql_type(duckdb_type: str) -> TypeEngine[Any]:
    """The portable column type for a stored (DuckDB) type."""
    found = _DECIMAL.match(duckdb_type)
    if found:
        return Numeric(int(found.group(1)), int(found.group(2)))
    simple: dict[str, TypeEngine[Any]] = {
        "BIGINT": BigInteger(),
        "INTEGER": Integer(),
        "HUGEINT": Numeric(38, 0),
        "DOUBLE": Float(),
        "FLOAT": Float(),
        "BOOLEAN": Boolean(),
        "DATE": Date(),
        "TIMESTAMP": DateTime(),
    }
    return simple.get(duckdb_type, Text())


def _tables(page: Page, table: str) -> tuple[Table, Table]:
    metadata = MetaData()
    target = Table(
        table,
        metadata,
        Column(ROW_ID, String(64), primary_key=True),
        *[Column(o.name, sql_type(o.type)) for o in page.outputs],
    )
    state = Table(
        STATE_TABLE,
        metadata,
        Column("subscription_id", Integer, primary_key=True, autoincrement=False),
        Column("cursor", String(64), nullable=False),
    )
    return target, state


def apply(
    url: URL,
    table: str,
    page: Page,
    subscription_id: int,
    connect_args: dict[str, Any] | None = None,
) -> int:
    """Write ``page`` into ``table``; the changes applied (0 when the batch was applied before).
    ``connect_args`` pin the connection to the address the allow list checked."""
    if not page.keys:
        raise SyncFailed("授权范围不含关键字段，无法按键同步。")
    target, state = _tables(page, table)
    engine = create_engine(url, poolclass=NullPool, connect_args=connect_args or {})
    try:
        with engine.begin() as conn:
            target.metadata.create_all(conn, checkfirst=True)
            done = conn.scalar(
                select(state.c.cursor).where(state.c.subscription_id == subscription_id)
            )
            if done is not None and Cursor.parse(done) >= page.next_cursor:
                return 0  # applied before; the acknowledgement was lost
            _check_shape(conn, table)
            _write(conn, target, page.changes)
            if done is None:
                conn.execute(
                    state.insert().values(
                        subscription_id=subscription_id, cursor=str(page.next_cursor)
                    )
                )
            else:
                conn.execute(
                    state.update()
                    .where(state.c.subscription_id == subscription_id)
                    .values(cursor=str(page.next_cursor))
                )
        return len(page.changes)
    except SQLAlchemyError as error:
        raise SyncFailed(str(error.__cause__ or error).splitlines()[0][:500]) from error
    finally:
        engine.dispose()


def _check_shape(conn: Any, table: str) -> None:
    """A table made before rows were keyed by row id cannot take the changes safely."""
    columns = {c["name"] for c in inspect(conn).get_columns(table)}
    if ROW_ID not in columns:
        raise SyncFailed(
            f"目标表 {table} 缺少行标识列 {ROW_ID}（按行标识同步，脱敏后的关键字段可能重复）："
            "请改用新表名或删除该表后重新同步。"
        )


def _write(conn: Any, target: Table, changes: list[dict[str, Any]]) -> None:
    """Delete every changed row id, then insert the rows that are there after the batch (a row
    changed in two steps of one batch ends as its last change says)."""
    last: dict[str, dict[str, Any]] = {}
    for change in changes:
        last[change["row_id"]] = change
    if not last:
        return
    conn.execute(
        target.delete().where(target.c[ROW_ID] == bindparam("row")),
        [{"row": row_id} for row_id in last],
    )
    rows = [{ROW_ID: row_id, **c["row"]} for row_id, c in last.items() if c["op"] != REMOVED]
    if rows:
        conn.execute(target.insert(), rows)
