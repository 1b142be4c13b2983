"""The sharing exchange: apply, answer within 10 working days, grant, and read under a grant.

Unconditional entries are granted at once to a consuming department that states its purpose;
conditional ones need an application the provider answers — a refusal always with its reason —
by a deadline in official working days; not-shared ones cannot be asked for, and say why. A grant
binds every read to its fields, rows, masking, methods, rate and expiry; suspending or revoking it
takes effect on the very next request, since every read checks it afresh.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuaishu.accounts.actor import Actor
from kuaishu.authz import Denied, authorize
from kuaishu.calendar import add_workdays
from kuaishu.catalog.enums import EntryStatus, ShareType
from kuaishu.catalog.models import CatalogEntry, CatalogRevision
from kuaishu.catalog.services import get_entry
from kuaishu.clean.services import Channel, masks_for
from kuaishu.collect.convert import DUCK_TYPES
from kuaishu.collect.services import entry_items
from kuaishu.db import utcnow
from kuaishu.errors import AppError, Conflict, NotFound, PermissionDenied, ValidationFailed
from kuaishu.security import audit
from kuaishu.share.enums import (
    APPLICATION_TRANSITIONS,
    GRANT_TRANSITIONS,
    AccessMethod,
    ApplicationState,
    GrantState,
)
from kuaishu.share.models import ShareApplication, ShareGrant
from kuaishu.store.plan import Column
from kuaishu.store.query import PlanBuilder
from kuaishu.store.reads import Served
from kuaishu.store.services import current_version, get_version

ANSWER_WORKDAYS = 10  # Guizhou measures art. 24


def china_today() -> date:
    """Today in China (deadlines are counted in China's working days)."""
    return (utcnow() + timedelta(hours=8)).date()


@dataclass(frozen=True)
class Request:
    """What a consuming department asks for (the body of an application)."""

    purpose: str
    legal_basis: str = ""
    fields: Sequence[str] = ()
    row_filter: Sequence[Sequence[str]] = ()
    methods: Sequence[str] = (AccessMethod.QUERY,)
    period_end: date | None = None
    expected_volume: str = ""


def shareable(session: Session, entry_id: int) -> CatalogEntry:
    """A published entry that may be shared; a not-shared one is refused with its basis."""
    entry = get_entry(session, entry_id)
    if entry.status != EntryStatus.PUBLISHED:
        raise Conflict("该资源未发布，不能申请共享。", code="entry_not_published")
    if entry.share_type == ShareType.NOT_SHARED:
        revision = session.get(CatalogRevision, entry.published_revision_id)
        basis = revision.share_basis if revision else ""
        raise AppError(
            "该资源为不予共享，不能申请。依据：{basis}",
            code="not_shared",
            status=409,
            details={"basis": basis},
            basis=basis or "—",
        )
    return entry


def _checked(session: Session, entry: CatalogEntry, request: Request) -> None:
    """Every asked field exists, every method is known, every row filter is a valid filter."""
    items = entry_items(session, entry)
    names = {item.name for item in items}
    problems: list[dict[str, Any]] = []
    for index, name in enumerate(request.fields):
        if name not in names:
            problems.append({"field": f"fields[{index}]", "code": "unknown_item", "value": name})
    for index, method in enumerate(request.methods):
        if method not in set(AccessMethod):
            problems.append(
                {"field": f"methods[{index}]", "code": "unknown_method", "value": method}
            )
    if not request.methods:
        problems.append({"field": "methods", "code": "required", "value": None})
    builder = PlanBuilder(
        [
            Column(name=i.name, type=DUCK_TYPES[i.type_code], item_type=str(i.type_code))
            for i in items
        ]
    )
    for index, pair in enumerate(request.row_filter):
        try:
            if len(pair) != 2:
                raise ValidationFailed()
            builder.filter(str(pair[0]), str(pair[1]))
        except ValidationFailed:
            problems.append(
                {"field": f"row_filter[{index}]", "code": "bad_filter", "value": list(pair)}
            )
    if problems:
        raise ValidationFailed(
            "共享申请有 {n} 处错误。", code="bad_share_request", details=problems, n=len(problems)
        )


def apply(
    session: Session,
    *,
    actor: Actor,
    entry: CatalogEntry,
    request: Request,
    today: date | None = None,
) -> ShareApplication | ShareGrant:
    """An unconditional entry is granted at once; a conditional one becomes an application the
    provider must answer within 10 working days."""
    if not request.purpose.strip():
        raise ValidationFailed("请说明使用目的。", code="purpose_required")
    consumer, role = authorize(actor, "share.apply", entry)
    assert consumer is not None
    _checked(session, entry, request)
    if entry.share_type == ShareType.CONDITIONAL and not request.legal_basis.strip():
        raise ValidationFailed("有条件共享须说明申请依据。", code="legal_basis_required")
    if entry.share_type != ShareType.CONDITIONAL:
        grant = _new_grant(
            session,
            actor=actor,
            entry=entry,
            consumer=consumer,
            purpose=request.purpose,
            fields=list(request.fields),
            row_filter=[list(p) for p in request.row_filter],
            methods=list(request.methods),
            expires_on=request.period_end,
        )
        audit.record(
            session,
            actor,
            "share.grant",
            target_type="share_grant",
            target_id=grant.id,
            purpose=request.purpose,
            details={"code": entry.code, "unconditional": True, "consumer": consumer},
            as_role=(consumer, role),
        )
        return grant
    submitted = today or china_today()
    application = ShareApplication(
        entry_id=entry.id,
        provider_department_id=entry.department_id,
        consumer_department_id=consumer,
        applicant_id=actor.user_id,
        state=ApplicationState.SUBMITTED,
        purpose=request.purpose,
        legal_basis=request.legal_basis,
        fields=list(request.fields),
        row_filter=[list(p) for p in request.row_filter],
        methods=list(request.methods),
        period_end=request.period_end,
        expected_volume=request.expected_volume,
        due_on=add_workdays(submitted, ANSWER_WORKDAYS),
    )
    session.add(application)
    session.flush()
    audit.record(
        session,
        actor,
        "share.apply",
        target_type="share_application",
        target_id=application.id,
        purpose=request.purpose,
        details={"code": entry.code, "due_on": application.due_on.isoformat()},
        as_role=(consumer, role),
    )
    return application


def _new_grant(
    session: Session,
    *,
    actor: Actor,
    entry: CatalogEntry,
    consumer: int,
    purpose: str,
    fields: list[str],
    row_filter: list[list[str]],
    methods: list[str],
    expires_on: date | None,
    masking: list[dict[str, Any]] | None = None,
    rate_limit: int | None = None,
    application_id: int | None = None,
) -> ShareGrant:
    grant = ShareGrant(
        entry_id=entry.id,
        provider_department_id=entry.department_id,
        consumer_department_id=consumer,
        application_id=application_id,
        purpose=purpose,
        fields=fields,
        row_filter=row_filter,
        masking=masking or [],
        methods=methods,
        rate_limit=rate_limit,
        expires_on=expires_on,
        state=GrantState.ACTIVE,
        created_by=actor.user_id,
    )
    session.add(grant)
    session.flush()
    return grant


def get_application(session: Session, application_id: int) -> ShareApplication:
    found = session.get(ShareApplication, application_id)
    if found is None:
        raise NotFound("共享申请不存在。", code="application_not_found")
    return found


def get_grant(session: Session, grant_id: int) -> ShareGrant:
    found = session.get(ShareGrant, grant_id)
    if found is None:
        raise NotFound("共享授权不存在。", code="grant_not_found")
    return found


def _move(application: ShareApplication, to: ApplicationState) -> None:
    if to not in APPLICATION_TRANSITIONS[application.state]:
        raise Conflict(
            "申请当前为“{state}”，不能执行此操作。",
            code="invalid_transition",
            details={"from": application.state, "to": to},
            state=application.state,
        )
    application.state = to


def approve(
    session: Session,
    *,
    actor: Actor,
    application: ShareApplication,
    fields: Sequence[str] | None = None,
    row_filter: Sequence[Sequence[str]] | None = None,
    masking: Sequence[Mapping[str, Any]] = (),
    methods: Sequence[str] | None = None,
    expires_on: date | None = None,
    rate_limit: int | None = None,
    reason: str = "",
    arbitration: bool = False,
) -> ShareGrant:
    """Approve (possibly narrower than asked): the grant's fields, rows, masking, methods,
    expiry and rate. The operator may do so in arbitration of a refusal."""
    operation = "share.arbitrate" if arbitration else "share.decide"
    decided = authorize(actor, operation, application)
    entry = get_entry(session, application.entry_id)
    if arbitration and application.state == ApplicationState.REJECTED:
        application.state = ApplicationState.SUBMITTED
    _move(application, ApplicationState.APPROVED)
    granted = Request(
        purpose=application.purpose,
        fields=list(fields if fields is not None else application.fields),
        row_filter=[
            list(p) for p in (row_filter if row_filter is not None else application.row_filter)
        ],
        methods=list(methods if methods is not None else application.methods),
    )
    _checked(session, entry, granted)
    grant = _new_grant(
        session,
        actor=actor,
        entry=entry,
        consumer=application.consumer_department_id,
        purpose=application.purpose,
        fields=list(granted.fields),
        row_filter=[list(p) for p in granted.row_filter],
        methods=list(granted.methods),
        expires_on=expires_on or application.period_end,
        masking=[dict(m) for m in masking],
        rate_limit=rate_limit,
        application_id=application.id,
    )
    application.grant_id = grant.id
    application.decided_at, application.decided_by = utcnow(), actor.user_id
    application.decision_reason = reason
    audit.record(
        session,
        actor,
        "share.arbitrate" if arbitration else "share.approve",
        target_type="share_application",
        target_id=application.id,
        details={"grant": grant.id, "reason": reason, "late": _late(application)},
        as_role=decided,
    )
    return grant


def reject(
    session: Session, *, actor: Actor, application: ShareApplication, reason: str
) -> ShareApplication:
    """Refuse — never without a reason."""
    decided = authorize(actor, "share.decide", application)
    if not reason.strip():
        raise ValidationFailed("拒绝共享申请须说明理由。", code="reason_required")
    _move(application, ApplicationState.REJECTED)
    application.decided_at, application.decided_by = utcnow(), actor.user_id
    application.decision_reason = reason
    audit.record(
        session,
        actor,
        "share.reject",
        target_type="share_application",
        target_id=application.id,
        details={"reason": reason, "late": _late(application)},
        as_role=decided,
    )
    return application


def resubmit(
    session: Session,
    *,
    actor: Actor,
    application: ShareApplication,
    request: Request,
    today: date | None = None,
) -> ShareApplication:
    """The applicant revises a refused application; the provider's 10 working days start again."""
    entry = get_entry(session, application.entry_id)
    consumer, role = authorize(actor, "share.apply", entry)
    if consumer != application.consumer_department_id:
        raise PermissionDenied()
    _checked(session, entry, request)
    _move(application, ApplicationState.SUBMITTED)
    application.purpose, application.legal_basis = request.purpose, request.legal_basis
    application.fields = list(request.fields)
    application.row_filter = [list(p) for p in request.row_filter]
    application.methods = list(request.methods)
    application.period_end = request.period_end
    application.rounds += 1
    application.due_on = add_workdays(today or china_today(), ANSWER_WORKDAYS)
    application.decided_at = None
    audit.record(
        session,
        actor,
        "share.resubmit",
        target_type="share_application",
        target_id=application.id,
        purpose=request.purpose,
        details={"round": application.rounds, "due_on": application.due_on.isoformat()},
        as_role=(consumer, role),
    )
    return application


def _late(application: ShareApplication) -> bool:
    """Answered after the deadline: it counts against the provider."""
    return china_today() > application.due_on


def overdue(session: Session, today: date | None = None) -> list[ShareApplication]:
    """Applications past their deadline without an answer: escalated to the operator."""
    return list(
        session.scalars(
            select(ShareApplication)
            .where(
                ShareApplication.state == ApplicationState.SUBMITTED,
                ShareApplication.due_on < (today or china_today()),
            )
            .order_by(ShareApplication.due_on)
        )
    )


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


LIMITER = RateLimiter()


def served_by_grant(
    session: Session,
    *,
    actor: Actor,
    grant: ShareGrant,
    method: AccessMethod,
    number: int | None = None,
) -> Served:
    """What a read under ``grant`` sees — checked afresh on every request: the reader's
    department, the grant's state and expiry, the method, the rate; then only the granted
    fields and rows, masked for sharing with the grant's overrides."""
    role = authorize(actor, "share.read", grant)
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
    if grant.rate_limit and not LIMITER.allow(grant.id, grant.rate_limit):
        raise GrantRefused(
            grant,
            "超过授权的调用频率（每分钟 {n} 次），请稍后再试。",
            code="rate_limited",
            status=429,
            n=grant.rate_limit,
        )
    entry = get_entry(session, grant.entry_id)
    version = (
        current_version(session, entry.id)
        if number is None
        else get_version(session, entry.id, number)
    )
    masking = masks_for(session, entry, Channel.SHARE, overrides=grant.masking)
    return Served(
        entry=entry,
        version=version,
        grant=role,
        masking=masking,
        fields=tuple(grant.fields) if grant.fields else None,
        row_filter=tuple((str(p[0]), str(p[1])) for p in grant.row_filter),
        share_grant=grant.id,
    )


# Usage ---------------------------------------------------------------------------------------------

READ_ACTIONS = ("data.query", "data.lookup", "data.download")


@dataclass(frozen=True)
class Usage:
    grant: ShareGrant
    calls: int
    rows: int
    downloads: int
    denied: int


def usage(session: Session, *, actor: Actor, grant_ids: Sequence[int] | None = None) -> list[Usage]:
    """Calls, rows and downloads per grant, counted from the audit trail (every read is there):
    the grants the actor's departments provide, or every grant for the operator."""
    from sqlalchemy import case, func

    from kuaishu.authz import check
    from kuaishu.security.models import AuditEvent, Outcome

    authorize(actor, "share.browse")
    grants = select(ShareGrant)
    if check(actor, "share.arbitrate", None) is None:
        grants = grants.where(ShareGrant.provider_department_id.in_(actor.department_ids))
    if grant_ids:
        grants = grants.where(ShareGrant.id.in_(grant_ids))
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
