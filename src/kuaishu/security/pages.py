"""The auditor's page: the audit trail, filtered and paged, with a CSV export."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kuaishu.security import services
from kuaishu.security.routes import FilterDep
from kuaishu.web.deps import CurrentActor, PageDep, SessionDep
from kuaishu.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/audit")
def audit_trail(
    request: Request, db: SessionDep, actor: CurrentActor, page: PageDep, flt: FilterDep
) -> Response:
    result = services.list_events(db, actor=actor, flt=flt, page=page)
    query = {k: v for k, v in request.query_params.items() if k not in ("page",) and v}
    return render(
        request,
        "audit.html",
        {
            "result": result,
            "flt": flt,
            "query": urlencode(query),
            "export_url": "/api/v1/audit/events.csv" + ("?" + urlencode(query) if query else ""),
        },
    )
