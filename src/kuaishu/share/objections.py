"""Objections to shared data (疑义校核, Guizhou measures art. 26): raised by a department that reads
the data under a grant, answered by the provider within ``KUAISHU_OBJECTION_WORKDAYS`` working days
— corrected in a named later version, or rejected with a reason. Both sides are told; both see the
history; the counts are the provider's record."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuaishu.accounts.actor import Actor
from kuaishu.accounts.roles import Role
from kuaishu.authz import authorize
from kuaishu.calendar import add_workdays, china_today
from kuaishu.catalog.services import get_entry
from kuaishu.db import utcnow
from kuaishu.errors import Conflict, NotFound, ValidationFailed
from kuaishu.notify.services import notify
from kuaishu.security import audit
from kuaishu.settings import get_settings
from kuaishu.share.enums import GrantState
from kuaishu.share.models import Objection, ShareGrant
from kuaishu.share.services import LISTED, on_either_side, tell_consumer
from kuaishu.store.services import current_version, get_version


def raise_objection(
    session: Session,
    *,
    actor: Actor,
    grant: ShareGrant,
    records: Sequence[str],
    fields: Sequence[str],
    description: str,
    evidence: str = "",
) -> Objection:
    """Flag records (by key value) and fields of the data read under ``grant`` as wrong."""
    role = authorize(actor, "share.object", grant)
    if grant.state == GrantState.REVOKED:
        raise Conflict(
            "该授权已撤销，不再受理疑义。",
            code="grant_revoked",
            details={"grant": grant.id, "state": grant.state},
        )
    if not records or not description.strip():
        raise ValidationFailed("请列出有疑义的记录并说明问题。", code="objection_incomplete")
    version = current_version(session, grant.entry_id)
    # Only what the grant shows can be objected to (nor is the rest of the schema told).
    names = {c["name"] for c in version.schema if not grant.fields or c["name"] in grant.fields}
    unknown = [f for f in fields if f not in names]
    if unknown:
        raise ValidationFailed(
            "没有这些字段：{names}。",
            code="unknown_field",
            details={"fields": unknown},
            names="、".join(unknown),
        )
    objection = Objection(
        entry_id=grant.entry_id,
        grant_id=grant.id,
        provider_department_id=grant.provider_department_id,
        consumer_department_id=grant.consumer_department_id,
        raised_by=actor.user_id,
        version_number=version.number,
        records=list(records),
        fields=list(fields),
        description=description,
        evidence=evidence,
        state="submitted",
        due_on=add_workdays(china_today(), get_settings().objection_workdays),
    )
    session.add(objection)
    session.flush()
    audit.record(
        session,
        actor,
        "share.object",
        target_type="share_objection",
        target_id=objection.id,
        details={"grant": grant.id, "records": len(records), "version": version.number},
        as_role=role,
    )
    entry = get_entry(session, grant.entry_id)
    notify(
        session,
        roles=[Role.DATA_OFFICER],
        department_id=grant.provider_department_id,
        kind="share.objection",
        title=f"数据疑义：{entry.name}",
        body=f"{description}\n记录：{'、'.join(records[:20])}\n答复期限：{objection.due_on}",
        link=f"/share/objections/{objection.id}",
    )
    return objection


def get_objection(session: Session, objection_id: int, *, actor: Actor) -> Objection:
    found = session.get(Objection, objection_id)
    if found is None:
        raise NotFound("疑义不存在。", code="objection_not_found")
    authorize(actor, "share.view", found)
    return found


def answer(
    session: Session,
    *,
    actor: Actor,
    objection: Objection,
    corrected_in: int | None = None,
    reason: str = "",
) -> Objection:
    """Corrected (in version ``corrected_in``, later than the one objected to) or rejected
    (``corrected_in`` None, with a reason)."""
    role = authorize(actor, "share.decide", objection)
    if objection.state != "submitted":
        raise Conflict("该疑义已答复。", code="objection_answered")
    if corrected_in is None:
        if not reason.strip():
            raise ValidationFailed("驳回疑义须说明理由。", code="reason_required")
        objection.state = "rejected"
    else:
        get_version(session, objection.entry_id, corrected_in)
        if corrected_in <= objection.version_number:
            raise ValidationFailed(
                "更正须在第 {n} 版之后的版本中。",
                code="not_a_later_version",
                n=objection.version_number,
            )
        objection.state, objection.corrected_in = "corrected", corrected_in
    objection.reason = reason
    objection.answered_at, objection.answered_by = utcnow(), actor.user_id
    audit.record(
        session,
        actor,
        f"share.objection_{objection.state}",
        target_type="share_objection",
        target_id=objection.id,
        details={
            "corrected_in": corrected_in,
            "reason": reason,
            "late": china_today() > objection.due_on,
        },
        as_role=role,
    )
    outcome = f"已在第 {corrected_in} 版更正" if corrected_in else f"未予更正，理由：{reason}"
    tell_consumer(
        session,
        objection.consumer_department_id,
        f"share.objection_{objection.state}",
        f"数据疑义 #{objection.id}：{outcome}",
        reason,
        f"/share/objections/{objection.id}",
    )
    return objection


def objections(session: Session, *, actor: Actor) -> list[Objection]:
    """Both sides' objections (every one for the operator), newest first."""
    stmt = on_either_side(select(Objection), Objection, actor)
    return list(session.scalars(stmt.order_by(Objection.id.desc()).limit(LISTED)))
