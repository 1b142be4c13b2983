"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from kuaishu import __version__
from kuaishu.web.errors import error_body

router = APIRouter(tags=["system"])


@router.get("/healthz", summary="存活检查")
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", summary="就绪检查（数据库可达）", response_model=None)
def readyz(request: Request) -> dict[str, str] | JSONResponse:
    try:
        with request.app.state.sessionmaker() as session:
            session.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse(
            error_body("database_unreachable", "数据库不可达。", None), status_code=503
        )
    return {"status": "ready", "database": request.app.state.engine.dialect.name}
