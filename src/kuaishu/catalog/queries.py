"""Lists of the catalog: a department's catalog, the review queue, overdue entries, the
public negative list."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kuaishu.accounts.actor import Actor
from kuaishu.accounts.models import Department
from kuaishu.accounts.roles import Role
from kuaishu.authz import authorize, check
from kuaishu.catalog.enums import EntryStatus, OpenType, RevisionState
from kuaishu.catalog.models import CatalogEntry, CatalogRevision
from kuaishu.pagination import Paged, PageRequest, paginate


def department_catalog(
    session: Session,
    *,
    actor: Actor,
    department_id: int,
    page: PageRequest,
    status: EntryStatus | None = None,
) -> Paged[CatalogEntry]:
    """Everything a department has catalogued, drafts included."""
    authorize(actor, "catalog.view_department", department_id)
    stmt = select(CatalogEntry).where(CatalogEntry.department_id == department_id)
    if status is not None:
        stmt = stmt.where(CatalogEntry.status == status)
    return paginate(session, stmt.order_by(CatalogEntry.code), page)


def review_queue(session: Session, *, actor: Actor, page: PageRequest) -> Paged[CatalogEntry]:
    """Submitted revisions the actor may review, oldest first; never their own."""
    stmt = (
        select(CatalogEntry)
        .join(CatalogRevision, CatalogRevision.id == CatalogEntry.working_revision_id)
        .where(CatalogRevision.state == RevisionState.SUBMITTED)
        .order_by(CatalogRevision.submitted_at)
    )
    if not actor.has_role(Role.PLATFORM_OPERATOR):
        departments = actor.departments_with(Role.REVIEWER)
        if not departments:
            authorize(actor, "catalog.review", -1)  # refuses, and is recorded
        stmt = stmt.where(CatalogEntry.department_id.in_(departments))
    if actor.user_id is not None:
        stmt = stmt.where(
            or_(
                CatalogRevision.submitted_by.is_(None),
                CatalogRevision.submitted_by != actor.user_id,
            )
        ).where(
            or_(CatalogRevision.created_by.is_(None), CatalogRevision.created_by != actor.user_id)
        )
    return paginate(session, stmt, page)


def flag_counts(session: Session, entries: Sequence[CatalogEntry]) -> dict[int, int]:
    """How many 一数一源 flags each entry's revision under work carries (entry id → count)."""
    working = [e.working_revision_id for e in entries if e.working_revision_id is not None]
    if not working:
        return {}
    rows = session.execute(
        select(CatalogRevision.entry_id, CatalogRevision.flags).where(
            CatalogRevision.id.in_(working)
        )
    )
    return {entry_id: len(flags or []) for entry_id, flags in rows}


def overdue(
    session: Session, *, actor: Actor, today: date, department_id: int | None = None
) -> list[dict[str, Any]]:
    """Entries past their update (2 working days) or yearly review deadline."""
    if department_id is None:
        authorize(actor, "catalog.overdue_all")
    else:
        authorize(actor, "catalog.view_department", department_id)
    stmt = select(CatalogEntry).where(
        CatalogEntry.status == EntryStatus.PUBLISHED,
        or_(CatalogEntry.update_due < today, CatalogEntry.review_due < today),
    )
    if department_id is not None:
        stmt = stmt.where(CatalogEntry.department_id == department_id)
    rows = []
    for entry in session.scalars(stmt.order_by(CatalogEntry.department_id, CatalogEntry.code)):
        reasons = []
        if entry.update_due and entry.update_due < today:
            reasons.append({"kind": "update", "due": entry.update_due.isoformat()})
        if entry.review_due and entry.review_due < today:
            reasons.append({"kind": "review", "due": entry.review_due.isoformat()})
        rows.append({"entry": entry, "reasons": reasons})
    return rows


def negative_list(session: Session, *, actor: Actor) -> list[dict[str, Any]]:
    """Every published 依申请开放 and 不予开放 entry with its basis — public by rule."""
    authorize(actor, "catalog.negative_list")
    stmt = (
        select(CatalogEntry, CatalogRevision, Department.name)
        .join(CatalogRevision, CatalogRevision.id == CatalogEntry.published_revision_id)
        .join(Department, Department.id == CatalogEntry.department_id)
        .where(
            CatalogEntry.status == EntryStatus.PUBLISHED,
            CatalogEntry.open_type.in_([OpenType.ON_APPLICATION, OpenType.NOT_OPEN]),
        )
        .order_by(CatalogEntry.open_type, CatalogEntry.code)
    )
    return [
        {
            "code": entry.code,
            "name": entry.name,
            "department": dept,
            "open_type": entry.open_type,
            "basis": revision.open_basis,
            "conditions": revision.open_conditions,
        }
        for entry, revision, dept in session.execute(stmt)
    ]


def can_review(actor: Actor, entry: CatalogEntry) -> bool:
    return check(actor, "catalog.review", entry) is not None
