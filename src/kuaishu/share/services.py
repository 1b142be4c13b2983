"""The sharing exchange: apply, answer within 10 working days, grant, and read under a grant.

Unconditional entries are granted at once to a consuming department that states its purpose;
conditional ones need an application the provider answers — a refusal always with its reason —
by a deadline in official working days; not-shared ones cannot be asked for, and say why. A grant
binds every read to its fields, rows, masking, methods, rate and expiry; suspending or revoking it
takes effect on the very next request, since every read checks it afresh.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from kuaishu.accounts.actor import Actor
from kuaishu.accounts.roles import Role
from kuaishu.authz import authorize, check
from kuaishu.calendar import add_workdays, china_today
from kuaishu.catalog.enums import EntryStatus, ShareType
from kuaishu.catalog.models import CatalogEntry, CatalogRevision
from kuaishu.catalog.services import get_entry
from kuaishu.clean.services import Channel, checked_overrides, masks_for
from kuaishu.collect.convert import DUCK_TYPES
from kuaishu.collect.services import entry_items
from kuaishu.db import utcnow
from kuaishu.errors import AppError, Conflict, NotFound, PermissionDenied, ValidationFailed
from kuaishu.notify.services import notify
from kuaishu.security import audit
from kuaishu.share.enums import (
    APPLICATION_TRANSITIONS,
    AccessMethod,
    ApplicationState,
    GrantState,
)
from kuaishu.share.models import Objection, ShareApplication, ShareGrant
from kuaishu.store.plan import Column
from kuaishu.store.query import PlanBuilder

ANSWER_WORKDAYS = 10  # Guizhou measures art. 24


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


def _checked(
    session: Session, entry: CatalogEntry, request: Request, *, by_consumer: bool = False
) -> None:
    """Every asked field exists, every method is known, every row filter is a valid filter —
    and, when the consumer wrote it, names no column masked for sharing: a row filter works on
    stored values, so one on a masked column would answer questions about what it hides."""
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
        ],
        masks=masks_for(session, entry, Channel.SHARE).masks if by_consumer else None,
    )
    for index, pair in enumerate(request.row_filter):
        try:
            if len(pair) != 2:
                raise ValidationFailed()
            builder.filter(str(pair[0]), str(pair[1]))
        except ValidationFailed as error:
            code = "masked_column" if error.code == "masked_column" else "bad_filter"
            problems.append({"field": f"row_filter[{index}]", "code": code, "value": list(pair)})
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
    _checked(session, entry, request, by_consumer=True)
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
    _tell_provider(session, application, "share.application", f"新的共享申请：{entry.name}")
    return application


def _tell_provider(session: Session, application: ShareApplication, kind: str, title: str) -> None:
    notify(
        session,
        roles=[Role.DATA_OFFICER],
        department_id=application.provider_department_id,
        kind=kind,
        title=title,
        body=f"用途：{application.purpose}\n答复期限：{application.due_on}（10 个工作日）",
        link=f"/share/applications/{application.id}",
    )


def tell_consumer(
    session: Session, department_id: int, kind: str, title: str, body: str, link: str
) -> None:
    notify(
        session,
        roles=[Role.CONSUMER, Role.DATA_OFFICER],
        department_id=department_id,
        kind=kind,
        title=title,
        body=body,
        link=link,
    )


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
    one_grant_only(session, entry_id=entry.id, consumer=consumer)
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


def one_grant_only(
    session: Session, *, entry_id: int, consumer: int, besides: int | None = None
) -> None:
    """One grant in force (active or suspended, not expired) per consuming department and entry:
    a second would let the consumer combine row scopes into answers neither gives alone."""
    today = china_today()
    held = session.scalar(
        select(ShareGrant.id)
        .where(
            ShareGrant.entry_id == entry_id,
            ShareGrant.consumer_department_id == consumer,
            ShareGrant.state.in_([GrantState.ACTIVE, GrantState.SUSPENDED]),
            or_(ShareGrant.expires_on.is_(None), ShareGrant.expires_on >= today),
            ShareGrant.id != (besides or 0),
        )
        .limit(1)
    )
    if held is not None:
        raise Conflict(
            "本部门已持有该资源的共享授权 #{grant}，同一资源只能有一个有效授权；"
            "如需调整范围，请联系提供部门变更或撤销原授权。",
            code="grant_exists",
            details={"grant": held},
            grant=held,
        )


Between = TypeVar("Between", ShareApplication, ShareGrant, Objection)
LISTED = 500


def on_either_side(
    stmt: Select[tuple[Between]], model: type[Between], actor: Actor
) -> Select[tuple[Between]]:
    """``stmt`` narrowed to what the actor's departments provide or consume — unless the actor
    is the operator, who oversees every department's exchange."""
    authorize(actor, "share.browse")
    if check(actor, "share.arbitrate", None) is not None:
        return stmt
    mine = actor.department_ids
    return stmt.where(
        or_(model.provider_department_id.in_(mine), model.consumer_department_id.in_(mine))
    )


def applications(
    session: Session, *, actor: Actor, state: ApplicationState | None = None
) -> list[ShareApplication]:
    """The applications the actor's departments made or received, newest first."""
    stmt = on_either_side(select(ShareApplication), ShareApplication, actor)
    if state is not None:
        stmt = stmt.where(ShareApplication.state == state)
    return list(session.scalars(stmt.order_by(ShareApplication.id.desc()).limit(LISTED)))


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
    expiry and rate. The operator may do so in arbitration — only of a refusal, or of an
    application the provider left unanswered past its deadline; never in the provider's stead
    while the provider still has time to answer."""
    operation = "share.arbitrate" if arbitration else "share.decide"
    decided = authorize(actor, operation, application)
    entry = get_entry(session, application.entry_id)
    refused = application.state == ApplicationState.REJECTED
    unanswered = application.state == ApplicationState.SUBMITTED and _late(application)
    if arbitration and not (refused or unanswered):
        raise Conflict(
            "只有提供部门已拒绝或逾期未答复的申请才能仲裁（答复期限 {due}）。",
            code="arbitration_not_due",
            details={"state": application.state, "due_on": application.due_on.isoformat()},
            due=application.due_on.isoformat(),
        )
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
    overrides = checked_overrides(session, entry, masking)
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
        masking=overrides,
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
    tell_consumer(
        session,
        application.consumer_department_id,
        "share.approved",
        f"共享申请 #{application.id} 已同意",
        reason,
        f"/share/grants/{grant.id}",
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
    tell_consumer(
        session,
        application.consumer_department_id,
        "share.rejected",
        f"共享申请 #{application.id} 未获同意",
        f"理由：{reason}",
        f"/share/applications/{application.id}",
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
    _checked(session, entry, request, by_consumer=True)
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
    _tell_provider(
        session, application, "share.resubmitted", f"共享申请 #{application.id} 已修改重交"
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
