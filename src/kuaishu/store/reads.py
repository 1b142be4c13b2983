"""Reading served data (数据接口): query, key lookup, data dictionary and downloads.

One read path (docs/decisions/0015-one-read-path.md): a channel's resolver — :func:`served` for
the owner, ``kuaishu.share.grants.served_by_grant`` for a grant — answers what a reader may read
as one :class:`Served`; :meth:`Served.plan` is the one gate every read's plan is made by (fields,
row scope, masks, limits), for queries, lookups, downloads, previews and the change feed alike.
Each read is recorded in the audit trail in the caller's transaction, which commits before any
data leaves the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
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
from kuaishu.security.models import Outcome
from kuaishu.settings import get_settings
from kuaishu.store import engine, exports
from kuaishu.store.models import DatasetChange, DatasetVersion, VersionState
from kuaishu.store.plan import Column, Output, ReadPlan, columns_of, row_key_sql
from kuaishu.store.query import (
    CursorBinding,
    PageCursor,
    PlanBuilder,
    ReadRequest,
    Total,
    check_cursor,
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
    owner: bool = True  # the entry's own department (any version; others read published ones)

    @property
    def columns(self) -> list[Column]:
        stored = columns_of(self.version.schema)
        if self.fields is None:
            return stored
        return [c for c in stored if c.name in self.fields]

    def builder(self) -> PlanBuilder:
        return PlanBuilder(
            self.columns,
            masks=self.masking.masks if self.masking else None,
            row_key=row_key_sql(columns_of(self.version.schema)),
        )

    def plan(
        self, request: ReadRequest, *, limit_max: int | None, cursor: PageCursor | None = None
    ) -> ReadPlan:
        """The gate: ``request`` as this reader may have it — only the fields shown, masked
        columns masked wherever they are used (or refused), bound to the reader's rows."""
        return self.scoped(self.builder().build(request, limit_max=limit_max, cursor=cursor))

    def binding(self, actor: Actor, request: ReadRequest) -> CursorBinding:
        """What this reader's paging cursors are signed for."""
        if self.share_grant is not None:
            scope = f"grant {self.share_grant}"
        else:
            channel = self.masking.channel if self.masking is not None else "own"
            scope = f"entry {self.entry.code} {channel}"
        return CursorBinding(reader=actor.user_id, scope=scope, request=request)

    def scoped(self, plan: ReadPlan) -> ReadPlan:
        """``plan`` bound to the rows this reader may see (the grant's row filter)."""
        if not self.row_filter:
            return plan
        every = PlanBuilder(columns_of(self.version.schema))
        bound = tuple(every.filter(name, value) for name, value in self.row_filter)
        return replace(plan, where=plan.where + bound, scope=bound)

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
    return Served(entry, readable_version(session, entry, number, owner=True), grant, masking)


def readable_version(
    session: Session, entry: CatalogEntry, number: int, *, owner: bool
) -> DatasetVersion:
    """Version ``number`` of ``entry`` if the reader may read it: the owner any version still on
    disk, asked for explicitly; anyone else only a version that was published and not rolled
    back (never one unpublished, or held back by the k-anonymity check)."""
    version = get_version(session, entry.id, number)
    if version.state == VersionState.RETIRED:
        raise AppError(
            "数据版本 {n} 已清理，请从第一页重新查询。",
            code="cursor_expired",
            status=409,
            n=number,
        )
    if not owner and (version.state != VersionState.PUBLISHED or _rolled_back(session, version)):
        raise AppError(
            "数据版本 {n} 未发布或已回退，不能读取，请从第一页重新查询。",
            code="version_not_readable",
            status=409,
            n=number,
        )
    return version


def _rolled_back(session: Session, version: DatasetVersion) -> bool:
    """The served version once moved from ``version`` back to an earlier one."""
    found = session.scalar(
        select(DatasetChange.id)
        .where(
            DatasetChange.from_version_id == version.id,
            DatasetChange.to_number < version.number,
        )
        .limit(1)
    )
    return found is not None


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
    version: int | None = None,
) -> Rows:
    """One page of the served version of ``code`` (or, for its owner, of version ``version``),
    filtered, sorted and counted as asked."""
    cursor = decode_cursor(request.cursor) if request.cursor else None
    if locate is not None:
        target = locate(version)
    else:
        target = served(session, actor=actor, code=code, number=version, channel=channel)
    if cursor is not None:
        check_cursor(cursor, target.binding(actor, request))
        # A cursor keeps reading the version it was made on, so a publish never shifts the pages.
        if cursor.version != target.version.number:
            found = readable_version(session, target.entry, cursor.version, owner=target.owner)
            target = replace(target, version=found)
    plan = target.plan(request, limit_max=get_settings().query_limit_max, cursor=cursor)
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
        next_cursor = encode_cursor(
            target.version.number, request.sort, page.last, binding=target.binding(actor, request)
        )
    described = request.described()
    described["filters"] = _keyed_filters(target, request.filters)
    record_read(
        session, actor, "data.query", target, purpose, {**described, "rows": len(page.rows)}
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
    version: int | None = None,
) -> Rows:
    """The rows whose key columns equal ``keys`` (联机查询); uses the version's key index.

    The one equality a masked key may be used in (verification is what a lookup is for); the
    row shows exactly as it does in a page or a download. A miss is recorded too (with no rows):
    probing for a person is itself an access.
    """
    if locate is not None:
        target = locate(version)
    else:
        target = served(session, actor=actor, code=code, number=version, channel=channel)
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
    plan = target.plan(ReadRequest(fields=fields), limit_max=limit)
    plan = replace(plan, where=where + plan.where)
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
        {
            "keys": {name: audit.keyed(value) for name, value in keys.items()},
            "fields": list(fields),
            "rows": len(page.rows),
        },
    )
    return Rows(outputs=plan.outputs, rows=page.rows, version=target.version.number)


def _keyed_filters(target: Served, filters: tuple[tuple[str, str], ...]) -> list[list[str]]:
    """A query's filters as the trail keeps them: a value compared with a key column (an ID
    number, say) is a lookup, kept as its keyed digest like one."""
    keys = {c.name for c in target.columns if c.key}
    return [
        [parameter, audit.keyed(value) if parameter.split("__")[0] in keys else value]
        for parameter, value in filters
    ]


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
    session: Session,
    *,
    actor: Actor,
    code: str,
    locate: Locate | None = None,
    purpose: str | None = None,
) -> dict[str, Any]:
    """The served version's fields with their data items' names, types and descriptions;
    a read like any other, so in the trail."""
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
    record_read(session, actor, "data.dictionary", target, purpose, {"fields": len(fields)})
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


# Records that a download stopped before its end: (session, bytes sent, why).
CutShort = Callable[[Session, int, str], None]


@dataclass(frozen=True)
class Download:
    """A file ready to stream: nothing is read until ``body`` is iterated. The read is in the
    trail before it streams; ``cut_short`` adds that it did not reach its end."""

    filename: str
    fallback: str
    media_type: str
    body: Iterator[bytes]
    cut_short: CutShort | None = None


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
    version: int | None = None,
) -> Download:
    """The served version of ``code`` (or, for its owner, version ``version``) as a file;
    audited (with a row estimate) before it streams."""
    if locate is not None:
        target = locate(version)
    else:
        target = served(session, actor=actor, code=code, number=version, channel=channel)
    if request.cursor:
        raise invalid_request(
            "下载不支持游标分页，请使用 offset 与 limit。", "cursor_not_supported"
        )
    plan = target.plan(request, limit_max=None)
    rows, exact = _expected_rows(target, plan)
    described = request.described()
    described["filters"] = _keyed_filters(target, request.filters)
    record_read(
        session,
        actor,
        "data.download",
        target,
        purpose,
        {
            **described,
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
        cut_short=_cut_short(actor, target, purpose, fmt, rows),
    )


def _cut_short(
    actor: Actor, target: Served, purpose: str | None, fmt: exports.Format, rows: int
) -> CutShort:
    """How a download that stopped early is recorded: a second event, never a change to the
    first (the trail is append-only), with what was sent. Facts are taken now: the request's
    session is closed by the time the stream ends."""
    version_id, grant = target.version.id, target.grant
    facts = {
        "code": target.entry.code,
        "version": target.version.number,
        **target.described,
        "format": str(fmt),
        "rows_expected": rows,
    }

    def record(session: Session, sent: int, why: str) -> None:
        audit.record(
            session,
            actor,
            "data.download.incomplete",
            target_type="dataset_version",
            target_id=version_id,
            purpose=purpose or None,
            outcome=Outcome.FAILURE,
            details={**facts, "bytes_sent": sent, "reason": why},
            as_role=grant,
        )

    return record


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
