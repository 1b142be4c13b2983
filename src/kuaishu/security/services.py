"""Reading the audit trail — for auditors only, and itself audited."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.accounts.actor import Actor
from kuaishu.authz import authorize
from kuaishu.pagination import Paged, PageRequest, paginate
from kuaishu.security import audit
from kuaishu.security.models import AuditEvent


@dataclass(frozen=True)
class AuditFilter:
    """What an auditor narrows the trail by; every field optional."""

    actor: str | None = None  # username, exact
    department_id: int | None = None
    action: str | None = None  # exact, or a prefix ending in "." (e.g. "user.")
    target_type: str | None = None
    target_id: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def as_details(self) -> dict[str, Any]:
        return {
            k: (v.isoformat() if isinstance(v, datetime) else v)
            for k, v in self.__dict__.items()
            if v is not None
        }


def _query(flt: AuditFilter) -> Select[Any]:
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc())
    if flt.actor:
        stmt = stmt.where(AuditEvent.actor_username == flt.actor.strip().lower())
    if flt.department_id is not None:
        stmt = stmt.where(AuditEvent.actor_department_id == flt.department_id)
    if flt.action:
        if flt.action.endswith("."):
            stmt = stmt.where(AuditEvent.action.startswith(flt.action))
        else:
            stmt = stmt.where(AuditEvent.action == flt.action)
    if flt.target_type:
        stmt = stmt.where(AuditEvent.target_type == flt.target_type)
    if flt.target_id:
        stmt = stmt.where(AuditEvent.target_id == flt.target_id)
    if flt.outcome:
        stmt = stmt.where(AuditEvent.outcome == flt.outcome)
    if flt.since:
        stmt = stmt.where(AuditEvent.occurred_at >= flt.since)
    if flt.until:
        stmt = stmt.where(AuditEvent.occurred_at < flt.until)
    return stmt


def list_events(
    session: Session, *, actor: Actor, flt: AuditFilter, page: PageRequest
) -> Paged[AuditEvent]:
    """One page of events, newest first; the reading itself is recorded."""
    grant = authorize(actor, "audit.read")
    result = paginate(session, _query(flt), page)
    audit.record(
        session,
        actor,
        "audit.read",
        target_type="audit_trail",
        details={"filter": flt.as_details(), "page": page.page, "rows": len(result.items)},
        as_role=grant,
    )
    return result


EXPORT_COLUMNS = (
    "id",
    "occurred_at",
    "request_id",
    "actor_user_id",
    "actor_username",
    "actor_department_id",
    "actor_role",
    "action",
    "target_type",
    "target_id",
    "purpose",
    "outcome",
    "client_addr",
    "details",
)


def export_events_csv(
    session: Session, *, actor: Actor, flt: AuditFilter, reader: sessionmaker[Session]
) -> Iterator[bytes]:
    """The filtered trail as UTF-8 CSV (with BOM, for Excel), streamed in chunks.

    The export is recorded in ``session`` (the caller commits it before streaming); the rows are
    read through a session of their own from ``reader``, so the stream outlives the request's.
    """
    grant = authorize(actor, "audit.export")
    audit.record(
        session,
        actor,
        "audit.export",
        target_type="audit_trail",
        details={"filter": flt.as_details()},
        as_role=grant,
    )
    return _csv_chunks(reader, flt)


def _csv_chunks(reader: sessionmaker[Session], flt: AuditFilter) -> Iterator[bytes]:
    with reader() as session:
        rows = session.scalars(_query(flt).execution_options(yield_per=1000))
        yield from _csv_lines(rows)


def _csv_lines(rows: Any) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    yield ("\ufeff" + buffer.getvalue()).encode()
    for count, event in enumerate(rows, start=1):
        writer.writerow([_cell(getattr(event, column)) for column in EXPORT_COLUMNS])
        if count % 1000 == 0:
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text.encode()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    # Neutralise spreadsheet formulas (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
