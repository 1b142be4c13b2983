"""Grants in use: their state (expiry read from the date), suspension, revocation and renewal
with a reason, the checks every read under a grant passes afresh (state, method, rate), and the
usage counted from the audit trail."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from kuaishu.accounts.actor import Actor
from kuaishu.authz import Denied, Grant, authorize, check
from kuaishu.calendar import china_today
from kuaishu.catalog.models import CatalogEntry
from kuaishu.clean.models import MaskingPolicy
from kuaishu.clean.services import Channel, masks_for
from kuaishu.errors import Conflict, NotFound, ValidationFailed
from kuaishu.security import audit
from kuaishu.security.models import AuditEvent, Outcome
from kuaishu.settings import get_settings
from kuaishu.share.enums import GRANT_TRANSITIONS, AccessMethod, GrantState
from kuaishu.share.models import ShareGrant
from kuaishu.share.services import LISTED, on_either_side, one_grant_only, tell_consumer
from kuaishu.store.models import Dataset, DatasetVersion
from kuaishu.store.reads import Served, readable_version
from kuaishu.store.services import no_data

# Grants ------------------------------------------------------------------------------------------


def effective_state(grant: ShareGrant, today: date | None = None) -> GrantState:
    lapsed = grant.expires_on is not None and (today or china_today()) > grant.expires_on
    return GrantState.EXPIRED if grant.state == GrantState.ACTIVE and lapsed else grant.state


def change_grant(
    session: Session, *, actor: Actor, grant: ShareGrant, to: GrantState, reason: str
) -> ShareGrant:
    """Suspend, resume or revoke a grant — with a reason, recorded; the next read sees it."""
    decided = authorize(actor, "share.manage_grant", grant)
    if not reason.strip():
        raise ValidationFailed("暂停、恢复或撤销授权须说明理由。", code="reason_required")
    if to not in GRANT_TRANSITIONS[grant.state]:
        raise Conflict(
            "授权当前为“{state}”，不能改为“{to}”。",
            code="invalid_transition",
            state=grant.state,
            to=to,
        )
    before = grant.state
    grant.state, grant.state_reason = to, reason
    audit.record(
        session,
        actor,
        f"share.grant_{to}",
        target_type="share_grant",
        target_id=grant.id,
        details={"from": before, "reason": reason},
        as_role=decided,
    )
    labels = {
        GrantState.SUSPENDED: "已暂停",
        GrantState.REVOKED: "已撤销",
        GrantState.ACTIVE: "已恢复",
    }
    tell_consumer(
        session,
        grant.consumer_department_id,
        f"share.grant_{to}",
        f"共享授权 #{grant.id} {labels[to]}",
        f"理由：{reason}",
        f"/share/grants/{grant.id}",
    )
    return grant


def renew(
    session: Session, *, actor: Actor, grant: ShareGrant, expires_on: date, reason: str = ""
) -> ShareGrant:
    """Extend a grant before (or after) it lapses."""
    decided = authorize(actor, "share.manage_grant", grant)
    if grant.state == GrantState.REVOKED:
        raise Conflict("已撤销的授权不能续期。", code="grant_revoked")
    if expires_on < china_today():
        raise ValidationFailed("续期后的有效期不能早于今天。", code="bad_expiry")
    one_grant_only(
        session, entry_id=grant.entry_id, consumer=grant.consumer_department_id, besides=grant.id
    )
    before = grant.expires_on
    grant.expires_on = expires_on
    audit.record(
        session,
        actor,
        "share.grant_renew",
        target_type="share_grant",
        target_id=grant.id,
        details={"from": before.isoformat() if before else None, "to": expires_on.isoformat()},
        as_role=decided,
    )
    return grant


class GrantRefused(Denied):
    """A read the grant does not allow (state, method, rate): refused and, like every refusal,
    recorded in the audit trail as a denied ``share.read`` of the grant."""

    def __init__(
        self,
        grant: ShareGrant,
        message: str,
        *,
        code: str,
        status: int = 403,
        details: dict[str, Any] | None = None,
        **params: object,
    ) -> None:
        super().__init__("share.read", grant)
        self.message, self.code, self.status = message, code, status
        self.details = details or {"grant": grant.id}
        self.params = params


class RateLimiter:
    """Requests per grant in the last minute, per process (each API worker keeps its own)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: dict[int, deque[float]] = defaultdict(deque)

    def allow(self, grant_id: int, per_minute: int) -> bool:
        now = time.monotonic()
        with self.lock:
            window = self.seen[grant_id]
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= per_minute:
                return False
            window.append(now)
            return True

    def clear(self) -> None:
        """Forget every window (a test's databases number their grants afresh)."""
        with self.lock:
            self.seen.clear()


LIMITER = RateLimiter()


def served_by_grant(
    session: Session,
    *,
    actor: Actor,
    grant: ShareGrant | int,
    method: AccessMethod,
    number: int | None = None,
    reader: Grant | None = None,
) -> Served:
    """What a read under ``grant`` (or the grant of that id) sees — checked afresh on every
    request: the reader's department, the grant's state and expiry, the method, the rate; then
    only the granted fields and rows, masked for sharing with the grant's overrides.
    ``reader``: for a feature reading on the consuming department's behalf (a cleaning rule's
    reference check), the role its caller authorized — it must be of that department."""
    found = _read_target(session, grant if isinstance(grant, int) else grant.id)
    grant = found.grant
    if reader is not None and reader[0] != grant.consumer_department_id:
        raise Denied("share.read", grant)
    role = reader if reader is not None else authorize(actor, "share.read", grant)
    state = effective_state(grant)
    if state != GrantState.ACTIVE:
        raise GrantRefused(
            grant,
            "共享授权当前为“{state}”，不能读取数据。",
            code=f"grant_{state}",
            details={"grant": grant.id, "state": state, "reason": grant.state_reason},
            state=state,
        )
    if method not in grant.methods:
        raise GrantRefused(
            grant, "该授权不含此共享方式（{method}）。", code="method_not_granted", method=method
        )
    # A lookup compares a raw key, masked or not: never unlimited, even if the grant sets no rate.
    rate = grant.rate_limit
    if rate is None and method == AccessMethod.LOOKUP:
        rate = get_settings().lookup_rate_per_minute
    if rate and not LIMITER.allow(grant.id, rate):
        raise GrantRefused(
            grant,
            "超过授权的调用频率（每分钟 {n} 次），请稍后再试。",
            code="rate_limited",
            status=429,
            n=rate,
        )
    entry = found.entry
    if number is None:
        if found.version is None:
            raise no_data()
        version = found.version
    else:
        version = readable_version(session, entry, number, owner=False)
    masking = masks_for(session, entry, Channel.SHARE, overrides=grant.masking, policy=found.policy)
    return Served(
        entry=entry,
        version=version,
        grant=role,
        masking=masking,
        fields=tuple(grant.fields) if grant.fields else None,
        row_filter=tuple((str(p[0]), str(p[1])) for p in grant.row_filter),
        share_grant=grant.id,
        owner=False,
    )


@dataclass(frozen=True)
class _Target:
    grant: ShareGrant
    entry: CatalogEntry
    version: DatasetVersion | None  # None: no data published yet
    policy: MaskingPolicy | None


def _read_target(session: Session, grant_id: int) -> _Target:
    """The grant, its entry, the entry's served version and masking policy in force — one query,
    since every read under a grant needs all four. (The items' sensitivities are a second, small
    query: joined in here, one row per item, the ORM's work per row cost more than the trip.)"""
    newest = (
        select(func.max(MaskingPolicy.number))
        .where(MaskingPolicy.entry_id == CatalogEntry.id)
        .correlate(CatalogEntry)
        .scalar_subquery()
    )
    found = session.execute(
        select(ShareGrant, CatalogEntry, DatasetVersion, MaskingPolicy)
        .join(CatalogEntry, CatalogEntry.id == ShareGrant.entry_id)
        .outerjoin(Dataset, Dataset.entry_id == CatalogEntry.id)
        .outerjoin(DatasetVersion, DatasetVersion.id == Dataset.current_version_id)
        .outerjoin(
            MaskingPolicy,
            (MaskingPolicy.entry_id == CatalogEntry.id) & (MaskingPolicy.number == newest),
        )
        .where(ShareGrant.id == grant_id)
    ).first()
    if found is None:
        raise NotFound("共享授权不存在。", code="grant_not_found")
    return _Target(found[0], found[1], found[2], found[3])


# Usage ---------------------------------------------------------------------------------------------

READ_ACTIONS = ("data.query", "data.lookup", "data.download", "data.changes")


@dataclass(frozen=True)
class Usage:
    grant: ShareGrant
    calls: int
    rows: int
    downloads: int
    denied: int


def grants_of(session: Session, *, actor: Actor) -> list[ShareGrant]:
    """The grants the actor's departments hold or gave, newest first."""
    stmt = on_either_side(select(ShareGrant), ShareGrant, actor)
    return list(session.scalars(stmt.order_by(ShareGrant.id.desc()).limit(LISTED)))


def usage(session: Session, *, actor: Actor) -> list[Usage]:
    """Calls, rows and downloads per grant, counted from the audit trail (every read is there):
    the grants the actor's departments provide, or every grant for the operator."""
    authorize(actor, "share.browse")
    grants = select(ShareGrant)
    if check(actor, "share.arbitrate", None) is None:
        grants = grants.where(ShareGrant.provider_department_id.in_(actor.department_ids))
    found = {g.id: g for g in session.scalars(grants.order_by(ShareGrant.id))}
    if not found:
        return []
    grant = AuditEvent.details["grant"].as_integer()
    rows = func.coalesce(AuditEvent.details["rows"].as_integer(), 0)
    success = AuditEvent.outcome == Outcome.SUCCESS
    stmt = (
        select(
            grant,
            func.count().filter(success),
            func.coalesce(func.sum(case((success, rows), else_=0)), 0),
            func.count().filter(success, AuditEvent.action == "data.download"),
        )
        .where(AuditEvent.action.in_(READ_ACTIONS), grant.in_(list(found)))
        .group_by(grant)
    )
    counted = {int(r[0]): r for r in session.execute(stmt)}
    refusals = (
        select(AuditEvent.target_id, func.count())
        .where(
            AuditEvent.action == "share.read",
            AuditEvent.outcome == Outcome.DENIED,
            AuditEvent.target_id.in_([str(g) for g in found]),
        )
        .group_by(AuditEvent.target_id)
    )
    denied = {int(target): int(n) for target, n in session.execute(refusals) if target}
    return [
        Usage(
            grant=g,
            calls=int(counted[g.id][1]) if g.id in counted else 0,
            rows=int(counted[g.id][2]) if g.id in counted else 0,
            downloads=int(counted[g.id][3]) if g.id in counted else 0,
            denied=denied.get(g.id, 0),
        )
        for g in found.values()
    ]
