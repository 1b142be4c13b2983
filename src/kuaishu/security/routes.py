"""The audit trail over HTTP: read-only, for auditors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from kuaishu.accounts.actor import Actor
from kuaishu.errors import ValidationFailed
from kuaishu.pagination import PageOut
from kuaishu.security import services
from kuaishu.security.schemas import AuditEventOut
from kuaishu.web.deps import CurrentActor, PageDep, SessionDep, session_factory
from kuaishu.web.downloads import attachment_header

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
CHINA = timezone(timedelta(hours=8))


def _moment(value: str | None, field: str) -> datetime | None:
    """An ISO date or date-time; a bare date or naive time is read as China time (UTC+8)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValidationFailed(
            "时间格式不正确，应为 2026-01-31 或 2026-01-31T08:00。",
            code="invalid_datetime",
            details={"field": field},
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=CHINA)


def audit_filter(
    actor: Annotated[str | None, Query(max_length=150, description="用户名")] = None,
    department_id: Annotated[str | None, Query(max_length=12, pattern="^[0-9]*$")] = None,
    action: Annotated[str | None, Query(max_length=80)] = None,
    target_type: Annotated[str | None, Query(max_length=60)] = None,
    target_id: Annotated[str | None, Query(max_length=120)] = None,
    outcome: Annotated[str | None, Query(pattern="^(success|denied|failure|)$")] = None,
    since: Annotated[str | None, Query(max_length=40, description="起始时间（含）")] = None,
    until: Annotated[str | None, Query(max_length=40, description="截止时间（不含）")] = None,
) -> services.AuditFilter:
    """Filters from the query string; empty fields (as a plain HTML form sends them) are unset."""
    return services.AuditFilter(
        actor=actor or None,
        department_id=int(department_id) if department_id else None,
        action=action or None,
        target_type=target_type or None,
        target_id=target_id or None,
        outcome=outcome or None,
        since=_moment(since, "since"),
        until=_moment(until, "until"),
    )


FilterDep = Annotated[services.AuditFilter, Depends(audit_filter)]


@router.get("/events", response_model=PageOut[AuditEventOut], summary="审计事件")
def list_events(
    db: SessionDep, actor: CurrentActor, page: PageDep, flt: FilterDep
) -> dict[str, object]:
    result = services.list_events(db, actor=actor, flt=flt, page=page)
    return {
        "items": [AuditEventOut.model_validate(e) for e in result.items],
        "page": result.page,
        "page_size": result.page_size,
        "total": result.total,
        "pages": result.pages,
    }


@router.get("/events.csv", summary="导出审计事件（CSV）")
def export_events(
    request: Request, db: SessionDep, actor: CurrentActor, flt: FilterDep
) -> StreamingResponse:
    chunks = export_for(request, db, actor, flt)
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": attachment_header("审计日志.csv")},
    )


def export_for(
    request: Request, db: SessionDep, actor: Actor, flt: services.AuditFilter
) -> Iterator[bytes]:
    chunks = services.export_events_csv(db, actor=actor, flt=flt, reader=session_factory(request))
    db.commit()  # the export is on record before the first byte leaves
    return chunks
