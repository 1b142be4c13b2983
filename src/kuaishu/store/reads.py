"""Reading served data (数据接口): query, key lookup, data dictionary and downloads.

Each read is authorized by the policy ``data.read_own`` on the entry and recorded in the audit
trail in the caller's transaction, which commits before any data leaves the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from kuaishu.accounts.actor import Actor
from kuaishu.authz import Grant, authorize
from kuaishu.catalog.enums import LABELS, ItemType
from kuaishu.catalog.models import CatalogEntry, CatalogRevision
from kuaishu.catalog.services import get_entry_by_code
from kuaishu.clean.services import Channel, ChannelMasks, masks_for
from kuaishu.errors import AppError
from kuaishu.i18n import gettext_
from kuaishu.security import audit
from kuaishu.settings import get_settings
from kuaishu.store import engine, exports
from kuaishu.store.models import DatasetVersion, VersionState
from kuaishu.store.plan import Column, Output, ReadPlan, columns_of
from kuaishu.store.query import (
    PlanBuilder,
    ReadRequest,
    Total,
    decode_cursor,
    encode_cursor,
)
from kuaishu.store.query import invalid as invalid_request
from kuaishu.store.services import entry_and_version, get_version, no_data

READ = "data.read_own"


@dataclass(frozen=True)
class Served:
    """An entry the actor may read, the version being read, and what of it they may see: how it
    is masked, and — under a share grant — which fields and which rows."""

    entry: CatalogEntry
    version: DatasetVersion
    grant: Grant
    masking: ChannelMasks | None = None  # None: the owner's own, unmasked view
    fields: tuple[str, ...] | None = None  # None: every stored column
    row_filter: tuple[tuple[str, str], ...] = ()  # data-API filters every read is bound by
    share_grant: int | None = None

    @property
    def columns(self) -> list[Column]:
        stored = columns_of(self.version.schema)
        if self.fields is None:
            return stored
        return [c for c in stored if c.name in self.fields]

    def builder(self) -> PlanBuilder:
        return PlanBuilder(self.columns, masks=self.masking.masks if self.masking else None)

    def scoped(self, plan: ReadPlan) -> ReadPlan:
        """``plan`` bound to the rows this reader may see (the grant's row filter)."""
        if not self.row_filter:
            return plan
        every = PlanBuilder(columns_of(self.version.schema))
        bound = tuple(every.filter(name, value) for name, value in self.row_filter)
        return replace(plan, where=plan.where + bound)

    @property
    def described(self) -> dict[str, Any]:
        """What the audit event says of the view: grant, channel, policy version, masked items."""
        found: dict[str, Any] = {}
        if self.share_grant is not None:
            found["grant"] = self.share_grant
        if self.masking is not None:
            found.update(
                channel=str(self.masking.channel),
                masking_policy=self.masking.policy_number,
                masked=sorted(self.masking.masks),
            )
        return found


# Finds what a read reads (for a cursor: the version it was made on); the default is the owner's.
Locate = Callable[[int | None], Served]


def json_value(value: Any) -> Any:
    """orjson's fallback for a served value it cannot encode: decimals as numbers, the rest
    (timestamps with a time zone, UUIDs, …) as their text."""
    return float(value) if isinstance(value, Decimal) else str(value)


@dataclass(frozen=True)
class Rows:
    """What a query or a lookup returns."""

    outputs: tuple[Output, ...]
    rows: list[tuple[Any, ...]]
    version: int
    total: int | None = None
    total_exact: bool = False
    next_cursor: str | None = None


def served(
    session: Session,
    *,
    actor: Actor,
    code: str,
    number: int | None = None,
    channel: Channel | None = None,
) -> Served:
    """The entry ``code`` and its served version (or version ``number``), if ``actor`` may read
    it; with ``channel``, masked as that channel shows it (the owner's preview of a channel)."""
    if number is None:
        entry, current = entry_and_version(session, code=code)
    else:
        entry, current = get_entry_by_code(session, code), None
    grant = authorize(actor, READ, entry)
    masking = masks_for(session, entry, channel) if channel is not None else None
    if number is None:
        if current is None:
            raise no_data()
        return Served(entry, current, grant, masking)
    version = get_version(session, entry.id, number)
    if version.state == VersionState.RETIRED:
        raise AppError(
            "该游标所属的数据版本 {n} 已清理，请从第一页重新查询。",
            code="cursor_expired",
            status=409,
            n=number,
        )
    return Served(entry, version, grant, masking)


def record_read(
    session: Session,
    actor: Actor,
    action: str,
    target: Served,
    purpose: str | None,
    details: dict[str, Any],
) -> None:
    audit.record(
        session,
        actor,
        action,
        target_type="dataset_version",
        target_id=target.version.id,
        purpose=purpose or None,
        details={
            "code": target.entry.code,
            "version": target.version.number,
            **target.described,
            **details,
        },
        as_role=target.grant,
    )


def query_data(
    session: Session,
    *,
    actor: Actor,
    code: str,
    request: ReadRequest,
    purpose: str | None = None,
    channel: Channel | None = None,
    locate: Locate | None = None,
) -> Rows:
    """One page of the served version of ``code``, filtered, sorted and counted as asked."""
    cursor = decode_cursor(request.cursor) if request.cursor else None
    # A cursor keeps reading the version it was made on, so a publish never shifts the pages.
    number = cursor.version if cursor else None
    if locate is not None:
        target = locate(number)
    else:
        target = served(session, actor=actor, code=code, number=number, channel=channel)
    plan = target.builder().build(request, limit_max=get_settings().query_limit_max, cursor=cursor)
    plan = target.scoped(plan)
    cur = engine.cursor(target.version.path)
    try:
        page = engine.fetch_page(cur, plan)
        total, exact = engine.total(
            cur, plan, request.total, stored_rows=target.version.row_count, page=page
        )
    finally:
        cur.close()
    next_cursor = None
    if page.last is not None:
        next_cursor = encode_cursor(target.version.number, request.sort, page.last)
    record_read(
        session,
        actor,
        "data.query",
        target,
        purpose,
        {**request.described(), "rows": len(page.rows)},
    )
    return Rows(
        outputs=plan.outputs,
        rows=page.rows,
        version=target.version.number,
        total=total,
        total_exact=exact,
        next_cursor=next_cursor,
    )


def lookup(
    session: Session,
    *,
    actor: Actor,
    code: str,
    keys: dict[str, str],
    fields: tuple[str, ...] = (),
    purpose: str | None = None,
    channel: Channel | None = None,
    locate: Locate | None = None,
) -> Rows:
    """The rows whose key columns equal ``keys`` (联机查询); uses the version's key index.

    A miss is recorded too (with no rows): probing for a person is itself an access.
    """
    if locate is not None:
        target = locate(None)
    else:
        target = served(session, actor=actor, code=code, channel=channel)
    builder = target.builder()
    key_columns = [c for c in target.columns if c.key]
    where = tuple(
        builder.equal(_key_name(name, key_columns), value) for name, value in keys.items()
    )
    if not where:
        raise invalid_request(
            "请提供关键字段的值：{names}。",
            "key_required",
            names="、".join(c.name for c in key_columns),
        )
    limit = get_settings().query_limit_max
    plan = builder.build(ReadRequest(fields=fields), limit_max=limit)
    plan = target.scoped(replace(plan, where=where))
    cur = engine.cursor(target.version.path)
    try:
        page = engine.fetch_page(cur, plan)
    finally:
        cur.close()
    record_read(
        session,
        actor,
        "data.lookup",
        target,
        purpose,
        {"keys": keys, "fields": list(fields), "rows": len(page.rows)},
    )
    return Rows(outputs=plan.outputs, rows=page.rows, version=target.version.number)


def _key_name(name: str, key_columns: list[Column]) -> str:
    """``key`` stands for the one key column; any other name must be a key column."""
    if not key_columns:
        raise AppError(
            "该资源没有关键字段，不能按键查询，请使用查询接口。", code="no_key_columns", status=409
        )
    if name == "key":
        if len(key_columns) > 1:
            raise invalid_request(
                "该资源有多个关键字段（{names}），请按字段名传值。",
                "key_ambiguous",
                names="、".join(c.name for c in key_columns),
            )
        return key_columns[0].name
    if name not in {c.name for c in key_columns}:
        raise invalid_request(
            "“{name}”不是关键字段；关键字段为：{names}。",
            "not_a_key",
            name=name,
            names="、".join(c.name for c in key_columns),
        )
    return name


def dictionary(
    session: Session, *, actor: Actor, code: str, locate: Locate | None = None
) -> dict[str, Any]:
    """The served version's fields with their data items' names, types and descriptions."""
    target = locate(None) if locate is not None else served(session, actor=actor, code=code)
    version = target.version
    revision = session.get(CatalogRevision, version.revision_id) if version.revision_id else None
    items = {item.name: item for item in revision.items} if revision else {}
    fields = []
    for column in target.columns:
        item = items.get(column.name)
        type_code = column.item_type or (str(item.type_code) if item else None)
        fields.append(
            {
                "name": column.name,
                "type": column.type,
                "item_type": type_code,
                "item_type_label": gettext_(LABELS[ItemType].get(type_code or "", ""))
                if type_code in LABELS[ItemType]
                else None,
                "length": item.length if item else None,
                "description": item.description if item else "",
                "key": column.key,
            }
        )
    return {
        "code": target.entry.code,
        "name": target.entry.name,
        "version": version_facts(version),
        "fields": fields,
    }


def version_facts(version: DatasetVersion) -> dict[str, Any]:
    return {
        "number": version.number,
        "row_count": version.row_count,
        "byte_size": version.byte_size,
        "checksum_sm3": version.checksum_sm3,
        "created_at": version.created_at,
        "published_at": version.published_at,
    }


@dataclass(frozen=True)
class Download:
    """A file ready to stream: nothing is read until ``body`` is iterated."""

    filename: str
    fallback: str
    media_type: str
    body: Iterator[bytes]


def download(
    session: Session,
    *,
    actor: Actor,
    code: str,
    request: ReadRequest,
    fmt: exports.Format,
    bom: bool = False,
    variant: exports.Variant | None = None,
    purpose: str | None = None,
    channel: Channel | None = None,
    locate: Locate | None = None,
) -> Download:
    """The served version of ``code`` as a file; audited (with a row estimate) before it streams."""
    if locate is not None:
        target = locate(None)
    else:
        target = served(session, actor=actor, code=code, channel=channel)
    if request.cursor:
        raise invalid_request(
            "下载不支持游标分页，请使用 offset 与 limit。", "cursor_not_supported"
        )
    plan = target.scoped(target.builder().build(request, limit_max=None))
    rows, exact = _expected_rows(target, plan)
    record_read(
        session,
        actor,
        "data.download",
        target,
        purpose,
        {
            **request.described(),
            "format": str(fmt),
            **({"variant": str(variant)} if variant else {}),
            "rows": rows,
            "rows_exact": exact,
        },
    )
    stamp = datetime.now().strftime("%Y%m%d")
    name = f"{target.entry.name}_v{target.version.number}_{stamp}.{fmt}"
    fallback = f"{target.entry.code.replace('/', '-')}_v{target.version.number}.{fmt}"
    return Download(
        filename=name,
        fallback=fallback,
        media_type=exports.MEDIA_TYPES[fmt],
        body=exports.chunks(
            fmt, target.version.path, plan, bom=bom and fmt == exports.Format.CSV, variant=variant
        ),
    )


def _expected_rows(target: Served, plan: ReadPlan) -> tuple[int, bool]:
    """Rows the download will hold: exact when that is cheap, else a sample estimate."""
    cur = engine.cursor(target.version.path)
    try:
        rows, exact = engine.estimated(
            cur, plan, Total.ESTIMATE, stored_rows=target.version.row_count
        )
    finally:
        cur.close()
    rows = max(rows - plan.offset, 0)
    return (min(rows, plan.limit) if plan.limit is not None else rows), exact
