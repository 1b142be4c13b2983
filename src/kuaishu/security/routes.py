"""The audit trail over HTTP: read-only, for auditors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from kuaishu.accounts.actor import Actor
from kuaishu.pagination import PageOut
from kuaishu.security import services
from kuaishu.security.schemas import AuditEventOut
from kuaishu.web.deps import CurrentActor, PageDep, SessionDep, session_factory
from kuaishu.web.downloads import attachment_header

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


def audit_filter(
    actor: Annotated[str | None, Query(max_length=150, description="用户名")] = None,
    department_id: int | None = None,
    action: Annotated[str | None, Query(max_length=80)] = None,
    target_type: Annotated[str | None, Query(max_length=60)] = None,
    target_id: Annotated[str | None, Query(max_length=120)] = None,
    outcome: Annotated[str | None, Query(pattern="^(success|denied|failure)$")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> services.AuditFilter:
    return services.AuditFilter(
        actor=actor,
        department_id=department_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        outcome=outcome,
        since=since,
        until=until,
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
