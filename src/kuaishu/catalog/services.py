"""Catalog operations: compile, submit, review item by item, publish, revise, withdraw.

Each entry has at most two live revisions: the one in force (published) and one being worked on.
Every transition is checked against ``TRANSITIONS`` and written to the audit trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuaishu.accounts.actor import Actor
from kuaishu.accounts.services import get_department
from kuaishu.authz import Grant, authorize, check
from kuaishu.catalog import codes, elements, rules, search
from kuaishu.catalog.enums import EntryStatus, RevisionState
from kuaishu.catalog.models import CatalogEntry, CatalogRevision, DataItem, ReviewComment
from kuaishu.catalog.schemas import DataItemIn, FieldComment, RevisionIn
from kuaishu.db import utcnow
from kuaishu.errors import AppError, Conflict, NotFound, PermissionDenied, ValidationFailed
from kuaishu.security import audit

# (state, action) → next state. Anything else is refused.
TRANSITIONS: dict[tuple[RevisionState, str], RevisionState] = {
    (RevisionState.DRAFT, "submit"): RevisionState.SUBMITTED,
    (RevisionState.RETURNED, "submit"): RevisionState.SUBMITTED,
    (RevisionState.SUBMITTED, "return"): RevisionState.RETURNED,
    (RevisionState.SUBMITTED, "approve"): RevisionState.APPROVED,
    (RevisionState.APPROVED, "publish"): RevisionState.PUBLISHED,
    (RevisionState.PUBLISHED, "withdraw"): RevisionState.WITHDRAWN,
}
EDITABLE = {RevisionState.DRAFT, RevisionState.RETURNED}
REVISION_FIELDS = tuple(f for f in RevisionIn.model_fields if f != "items")
YEARLY_REVIEW = timedelta(days=365)
CHINA = timezone(timedelta(hours=8))  # dates from other platforms are China time


class InvalidTransition(AppError):
    status = 409
    code = "invalid_transition"
    message = "当前状态为“{state}”，不能执行“{action}”。"


def _move(revision: CatalogRevision, action: str) -> RevisionState:
    target = TRANSITIONS.get((revision.state, action))
    if target is None:
        from kuaishu.catalog.enums import LABELS

        raise InvalidTransition(
            state=LABELS[RevisionState][revision.state],
            action=action,
            details={"state": revision.state, "action": action},
        )
    revision.state = target
    return target


def _record(
    session: Session, actor: Actor, action: str, entry: CatalogEntry, grant: Grant, **details: Any
) -> None:
    audit.record(
        session,
        actor,
        action,
        target_type="catalog_entry",
        target_id=entry.id,
        details={"code": entry.code, **details},
        as_role=grant,
    )


# Reading ---------------------------------------------------------------------------------------


def get_entry(session: Session, entry_id: int) -> CatalogEntry:
    entry = session.get(CatalogEntry, entry_id)
    if entry is None:
        raise NotFound("目录条目不存在。", code="entry_not_found")
    return entry


def get_entry_by_code(session: Session, code: str) -> CatalogEntry:
    entry = session.scalar(select(CatalogEntry).where(CatalogEntry.code == code))
    if entry is None:
        raise NotFound("目录条目不存在。", code="entry_not_found")
    return entry


def get_revision(session: Session, revision_id: int | None) -> CatalogRevision:
    revision = session.get(CatalogRevision, revision_id) if revision_id else None
    if revision is None:
        raise NotFound("目录修订不存在。", code="revision_not_found")
    return revision


def view_entry(session: Session, entry_id: int, *, actor: Actor) -> CatalogEntry:
    """An entry: published ones for everyone signed in, unpublished ones for its department."""
    entry = get_entry(session, entry_id)
    if entry.status == EntryStatus.UNPUBLISHED:
        authorize(actor, "catalog.view_department", entry)
    else:
        authorize(actor, "catalog.read", entry)
    return entry


def revisions_of(session: Session, entry: CatalogEntry) -> Sequence[CatalogRevision]:
    return session.scalars(
        select(CatalogRevision)
        .where(CatalogRevision.entry_id == entry.id)
        .order_by(CatalogRevision.number)
    ).all()


def visible_revisions(
    session: Session, entry: CatalogEntry, *, actor: Actor
) -> list[CatalogRevision]:
    """The revisions ``actor`` may read: all for the entry's department, else the published."""
    revisions = list(revisions_of(session, entry))
    if check(actor, "catalog.view_department", entry) is None:
        revisions = [r for r in revisions if r.published_at is not None]
    return revisions


# Writing ---------------------------------------------------------------------------------------


def _fill(session: Session, revision: CatalogRevision, data: RevisionIn) -> None:
    for field in REVISION_FIELDS:
        value = getattr(data, field)
        if field == "share_methods":
            value = [str(v) for v in value]
        if field == "keywords":
            value = [k.strip() for k in value if k.strip()]
        setattr(revision, field, value)
    revision.items.clear()
    session.flush()
    for position, item in enumerate(data.items, start=1):
        revision.items.append(_item(position, item))


def _item(position: int, item: DataItemIn) -> DataItem:
    return DataItem(
        position=position,
        name=item.name.strip(),
        type_code=item.type_code,
        length=item.length,
        description=item.description,
        is_key=item.is_key,
        sensitivity=item.sensitivity,
    )


def revision_data(revision: CatalogRevision) -> RevisionIn:
    """A revision's content in the input shape (for revising, diffing and exporting)."""
    values = {field: getattr(revision, field) for field in REVISION_FIELDS}
    values["items"] = [
        DataItemIn(
            name=i.name,
            type_code=i.type_code,
            length=i.length,
            description=i.description,
            is_key=i.is_key,
            sensitivity=i.sensitivity,
        )
        for i in revision.items
    ]
    return RevisionIn.model_validate(values)


def create_entry(
    session: Session, *, actor: Actor, department_id: int, data: RevisionIn
) -> CatalogEntry:
    """A new entry with its first draft; the resource code is given now and kept for good."""
    grant = authorize(actor, "catalog.create", department_id)
    rules.raise_if(rules.write_problems(data))
    department = get_department(session, department_id)
    entry = CatalogEntry(
        code=codes.new_code(session, department, data),
        department_id=department.id,
        name=data.name,
    )
    session.add(entry)
    session.flush()
    revision = CatalogRevision(
        entry_id=entry.id, number=1, state=RevisionState.DRAFT, created_by=actor.user_id
    )
    session.add(revision)
    _fill(session, revision, data)
    session.flush()
    entry.working_revision_id = revision.id
    _copy_for_search(entry, revision)
    _record(session, actor, "catalog.create", entry, grant, name=data.name)
    return entry


def import_published(
    session: Session,
    *,
    actor: Actor,
    department_id: int,
    data: RevisionIn,
    published: datetime | None = None,
    updated: datetime | None = None,
) -> CatalogEntry:
    """Take over an entry already published elsewhere (another platform's catalog).

    The rules of every write hold; submission completeness is not asked of a record that was
    reviewed where it came from, and the import is on the audit trail as such.
    """
    grant = authorize(actor, "catalog.import", department_id)
    rules.raise_if(rules.write_problems(data))
    department = get_department(session, department_id)
    entry = CatalogEntry(
        code=codes.new_code(session, department, data), department_id=department.id, name=data.name
    )
    session.add(entry)
    session.flush()
    revision = CatalogRevision(
        entry_id=entry.id, number=1, state=RevisionState.PUBLISHED, created_by=actor.user_id
    )
    session.add(revision)
    _fill(session, revision, data)
    session.flush()
    now = utcnow()
    revision.published_at = published.replace(tzinfo=CHINA) if published else now
    entry.published_revision_id = revision.id
    entry.status = EntryStatus.PUBLISHED
    entry.published_at = revision.published_at
    entry.updated_at = updated.replace(tzinfo=CHINA) if updated else revision.published_at
    entry.review_due = (entry.updated_at + YEARLY_REVIEW).date()
    _copy_for_search(entry, revision)
    search.index_entry(session, entry, revision)
    _record(session, actor, "catalog.import", entry, grant, name=data.name)
    return entry


def working_revision(session: Session, entry: CatalogEntry) -> CatalogRevision:
    if entry.working_revision_id is None:
        raise Conflict("该条目没有正在编辑的修订，请先发起修订。", code="no_working_revision")
    return get_revision(session, entry.working_revision_id)


def update_draft(
    session: Session, entry_id: int, *, actor: Actor, data: RevisionIn
) -> CatalogRevision:
    """Save the working revision; only drafts and returned revisions can change."""
    entry = get_entry(session, entry_id)
    grant = authorize(actor, "catalog.edit", entry)
    revision = working_revision(session, entry)
    if revision.state not in EDITABLE:
        raise InvalidTransition(
            "当前状态为“{state}”，不能修改。",
            state=revision.state,
            details={"state": revision.state},
        )
    rules.raise_if(rules.write_problems(data))
    _fill(session, revision, data)
    session.flush()
    if entry.status == EntryStatus.UNPUBLISHED:
        _copy_for_search(entry, revision)
    _record(session, actor, "catalog.edit", entry, grant, revision=revision.number)
    return revision


def start_revision(session: Session, entry_id: int, *, actor: Actor) -> CatalogRevision:
    """Open a new revision of a published entry; the published one stays in force meanwhile."""
    entry = get_entry(session, entry_id)
    grant = authorize(actor, "catalog.edit", entry)
    if entry.status != EntryStatus.PUBLISHED:
        raise Conflict("只有已发布的条目可以发起修订。", code="not_published")
    if entry.working_revision_id is not None:
        raise Conflict("该条目已有一个正在进行的修订。", code="revision_in_progress")
    current = get_revision(session, entry.published_revision_id)
    revision = CatalogRevision(
        entry_id=entry.id,
        number=current.number + 1,
        state=RevisionState.DRAFT,
        created_by=actor.user_id,
    )
    session.add(revision)
    _fill(session, revision, revision_data(current))
    session.flush()
    entry.working_revision_id = revision.id
    _record(session, actor, "catalog.revise", entry, grant, revision=revision.number)
    return revision


def submit(session: Session, entry_id: int, *, actor: Actor) -> CatalogRevision:
    """Send the working revision to review; 一数一源 conflicts are flagged for the reviewer."""
    entry = get_entry(session, entry_id)
    grant = authorize(actor, "catalog.submit", entry)
    revision = working_revision(session, entry)
    data = revision_data(revision)
    rules.raise_if(rules.submit_problems(data))
    department = get_department(session, entry.department_id)
    flags, links = elements.flags_for(session, department, data.items)
    for item in revision.items:
        item.element_id = links.get(item.position)
    _move(revision, "submit")
    revision.flags = flags
    revision.flag_decision = ""
    revision.submitted_by = actor.user_id
    revision.submitted_at = utcnow()
    _record(
        session, actor, "catalog.submit", entry, grant, revision=revision.number, flags=len(flags)
    )
    return revision


def _check_not_own(revision: CatalogRevision, actor: Actor) -> None:
    if actor.user_id is not None and actor.user_id in (revision.submitted_by, revision.created_by):
        raise PermissionDenied(
            "不能审核自己编制或提交的目录。", code="self_review", details={"revision": revision.id}
        )


def return_for_changes(
    session: Session, entry_id: int, *, actor: Actor, comments: Sequence[FieldComment]
) -> CatalogRevision:
    """Send a submission back with remarks on single fields and single data items."""
    entry = get_entry(session, entry_id)
    grant = authorize(actor, "catalog.review", entry)
    revision = working_revision(session, entry)
    _check_not_own(revision, actor)
    known = set(REVISION_FIELDS) | {"items"}
    for remark in comments:
        base = remark.field.split("[", 1)[0].split(".", 1)[0]
        if base not in known:
            raise ValidationFailed(
                "审核意见所指字段“{value}”不存在。",
                code="unknown_field",
                details={"field": remark.field},
                value=remark.field,
            )
    _move(revision, "return")
    for remark in comments:
        revision.comments.append(
            ReviewComment(field=remark.field, comment=remark.comment, reviewer_id=actor.user_id)
        )
    revision.reviewed_by = actor.user_id
    revision.reviewed_at = utcnow()
    _record(
        session,
        actor,
        "catalog.return",
        entry,
        grant,
        revision=revision.number,
        comments=[c.model_dump() for c in comments],
    )
    session.flush()
    return revision


def approve(
    session: Session, entry_id: int, *, actor: Actor, flag_decision: str = ""
) -> CatalogRevision:
    """Approve a submission; where items were flagged 一数一源, the decision must be written."""
    entry = get_entry(session, entry_id)
    grant = authorize(actor, "catalog.review", entry)
    revision = working_revision(session, entry)
    _check_not_own(revision, actor)
    if revision.flags and not flag_decision.strip():
        raise ValidationFailed(
            "该提交有 {n} 个信息项与其他部门的权威数据元重复（一数一源），请填写处理意见。",
            code="flag_decision_required",
            details={"flags": revision.flags},
            n=len(revision.flags),
        )
    _move(revision, "approve")
    revision.flag_decision = flag_decision.strip()
    revision.reviewed_by = actor.user_id
    revision.reviewed_at = utcnow()
    _record(
        session,
        actor,
        "catalog.approve",
        entry,
        grant,
        revision=revision.number,
        flag_decision=revision.flag_decision or None,
    )
    return revision


def publish(session: Session, entry_id: int, *, actor: Actor) -> CatalogEntry:
    """Put the approved revision in force in one step; the previous one is superseded."""
    entry = get_entry(session, entry_id)
    grant = authorize(actor, "catalog.publish", entry)
    revision = working_revision(session, entry)
    _move(revision, "publish")
    now = utcnow()
    if entry.published_revision_id is not None:
        get_revision(session, entry.published_revision_id).state = RevisionState.SUPERSEDED
    revision.published_at = now
    entry.published_revision_id = revision.id
    entry.working_revision_id = None
    entry.status = EntryStatus.PUBLISHED
    entry.published_at = entry.published_at or now
    entry.updated_at = now
    entry.review_due = (now + YEARLY_REVIEW).date()
    entry.update_due = None
    _copy_for_search(entry, revision)
    search.index_entry(session, entry, revision)
    _record(session, actor, "catalog.publish", entry, grant, revision=revision.number)
    return entry


def _copy_for_search(entry: CatalogEntry, revision: CatalogRevision) -> None:
    for field in (
        "name",
        "summary",
        "resource_class",
        "domain",
        "share_type",
        "open_type",
        "resource_format",
        "update_cycle",
    ):
        setattr(entry, field, getattr(revision, field))
    entry.keywords_text = " ".join(revision.keywords)


def withdraw(session: Session, entry_id: int, *, actor: Actor, reason: str) -> CatalogEntry:
    """Take a published entry out of force, with a reason the public can read."""
    entry = get_entry(session, entry_id)
    grant = authorize(actor, "catalog.withdraw", entry)
    reason = reason.strip()
    if not reason:
        raise ValidationFailed(
            "撤销必须说明原因。", code="reason_required", details={"field": "reason"}
        )
    if entry.status != EntryStatus.PUBLISHED:
        raise Conflict("只有已发布的条目可以撤销。", code="not_published")
    _move(get_revision(session, entry.published_revision_id), "withdraw")
    if entry.working_revision_id is not None:
        get_revision(session, entry.working_revision_id).state = RevisionState.WITHDRAWN
        entry.working_revision_id = None
    entry.status = EntryStatus.WITHDRAWN
    entry.withdrawn_at = utcnow()
    entry.withdrawn_reason = reason
    entry.review_due = entry.update_due = None
    search.unindex_entry(session, entry)
    _record(session, actor, "catalog.withdraw", entry, grant, reason=reason)
    return entry


def report_structure_change(
    session: Session, entry_id: int, *, actor: Actor, on: date
) -> CatalogEntry:
    """The data's structure changed on ``on``: the entry must be updated within 2 working days."""
    from kuaishu.calendar import add_workdays

    entry = get_entry(session, entry_id)
    grant = authorize(actor, "catalog.report_change", entry)
    entry.update_due = add_workdays(on, 2)
    _record(
        session,
        actor,
        "catalog.report_change",
        entry,
        grant,
        changed_on=on.isoformat(),
        due=entry.update_due.isoformat(),
    )
    return entry


# Comparing -------------------------------------------------------------------------------------


def diff(left: CatalogRevision, right: CatalogRevision) -> list[dict[str, Any]]:
    """Field-by-field differences between two revisions, data items one by one."""
    a, b = revision_data(left).model_dump(mode="json"), revision_data(right).model_dump(mode="json")
    rows = [
        {"field": field, "before": a[field], "after": b[field]}
        for field in REVISION_FIELDS
        if a[field] != b[field]
    ]
    before_items, after_items = a["items"], b["items"]
    for index in range(max(len(before_items), len(after_items))):
        old = before_items[index] if index < len(before_items) else None
        new = after_items[index] if index < len(after_items) else None
        if old != new:
            rows.append({"field": f"items[{index + 1}]", "before": old, "after": new})
    return rows


# Offline compilation ---------------------------------------------------------------------------


def import_entries(
    session: Session, *, actor: Actor, department_id: int, entries: Sequence[RevisionIn]
) -> list[CatalogEntry]:
    """Create a draft for each imported entry — all of them, or (on any error) none."""
    authorize(actor, "catalog.create", department_id)
    return [
        create_entry(session, actor=actor, department_id=department_id, data=data)
        for data in entries
    ]


def export_entries(
    session: Session, *, actor: Actor, department_id: int
) -> list[tuple[str, RevisionIn]]:
    """The department's entries as they stand: the revision being edited, else the one in force."""
    from kuaishu.catalog.queries import department_catalog
    from kuaishu.pagination import PageRequest

    page = department_catalog(
        session, actor=actor, department_id=department_id, page=PageRequest(1, 1_000_000)
    )
    result = []
    for entry in page.items:
        if entry.status == EntryStatus.WITHDRAWN:
            continue
        revision = get_revision(session, entry.working_revision_id or entry.published_revision_id)
        result.append((entry.code, revision_data(revision)))
    audit.record(
        session,
        actor,
        "catalog.export",
        target_type="department",
        target_id=department_id,
        details={"entries": len(result)},
    )
    return result
