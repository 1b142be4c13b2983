"""Every failure leaves as ``{"error": {"code", "message", "details"}}`` (JSON) or an error page.

Refusals by policy are written to the audit trail in a transaction of their own, since the
request's own transaction rolls back with the error.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from kuaishu.accounts.actor import Actor
from kuaishu.authz import Denied
from kuaishu.db import transaction
from kuaishu.errors import PROBLEM_MESSAGES, AppError, NotAuthenticated, storage_problem
from kuaishu.i18n import gettext_
from kuaishu.security import audit

log = logging.getLogger("kuaishu.web")

HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "请求有误。"),
    401: ("not_authenticated", "请先登录或提供有效的 API 密钥。"),
    403: ("permission_denied", "您没有执行此操作的权限。"),
    404: ("not_found", "未找到所请求的地址。"),
    405: ("method_not_allowed", "该地址不支持此请求方法。"),
    406: ("not_acceptable", "无法提供所请求的格式。"),
    413: ("body_too_large", "请求体过大。"),
    415: ("unsupported_media_type", "不支持的内容类型。"),
    429: ("too_many_requests", "请求过于频繁，请稍后再试。"),
}


def wants_json(request: Request) -> bool:
    if request.url.path.startswith(("/api/", "/healthz", "/readyz")):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def _respond(request: Request, status: int, code: str, message: str, details: Any) -> Response:
    if wants_json(request):
        return JSONResponse(error_body(code, message, details), status_code=status)
    from kuaishu.web.templating import render

    return render(
        request,
        "error.html",
        {"status": status, "code": code, "message": message},
        status_code=status,
    )


async def app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    if isinstance(exc, Denied):
        _record_denial(request, exc)
    if isinstance(exc, NotAuthenticated) and not wants_json(request):
        target = quote(str(request.url.path), safe="/")
        expired = "&expired=1" if exc.code == "session_expired" else ""
        return RedirectResponse(f"/login?next={target}{expired}", status_code=303)
    return _respond(request, exc.status, exc.code, exc.localized(), exc.details)


def _record_denial(request: Request, exc: Denied) -> None:
    actor: Actor | None = getattr(request.state, "actor", None)
    if actor is None:
        return
    try:
        with transaction(request.app.state.sessionmaker) as session:
            audit.record_denial(
                session,
                actor,
                exc,
                {"method": request.method, "path": request.url.path},
                purpose=getattr(request.state, "purpose", None),  # as the caller declared it
            )
    except Exception:  # a failed audit write must not hide the refusal itself
        log.exception("could not record a denial")


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = []
    malformed = False
    for err in exc.errors():
        kind = str(err.get("type", ""))
        malformed = malformed or kind == "json_invalid"
        location = [str(part) for part in err.get("loc", ()) if part not in ("body",)]
        problems.append(
            {
                "field": ".".join(location),
                "problem": kind,
                "message": gettext_(PROBLEM_MESSAGES.get(kind, "取值无效")),
            }
        )
    if malformed:
        return _respond(
            request, 400, "malformed_json", gettext_("请求体不是有效的 JSON。"), problems
        )
    summary = "；".join(f"{p['field']}：{p['message']}" for p in problems[:5])
    return _respond(
        request,
        422,
        "validation_failed",
        gettext_("提交的数据未通过校验：{summary}", summary=summary),
        problems,
    )


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code, message = HTTP_CODES.get(exc.status_code, ("http_error", "请求失败。"))
    details = None
    if exc.status_code == 413:
        limit = request.app.state.settings.max_body_bytes
        message, details = "请求体过大：上限为 {n} 字节。", {"max_bytes": limit}
        response = _respond(request, 413, code, gettext_(message, n=limit), details)
    else:
        response = _respond(request, exc.status_code, code, gettext_(message), details)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def integrity_error(request: Request, exc: Exception) -> Response:
    log.info("integrity error: %s", exc)
    return _respond(
        request, 409, "conflict", gettext_("与现有数据冲突（可能是重复提交），未做任何更改。"), None
    )


async def unexpected_error(request: Request, exc: Exception) -> Response:
    problem = storage_problem(exc)
    if problem is not None:  # the server's disk, not a bug: its own code, for the operator too
        log.error("storage: %s", exc)
        return _respond(request, problem.status, problem.code, problem.localized(), problem.details)
    log.exception("unhandled error", exc_info=exc)
    return _respond(
        request,
        500,
        "internal_error",
        gettext_(
            "服务器内部错误，已记录。请求编号：{rid}", rid=getattr(request.state, "request_id", "")
        ),
        None,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(AppError, app_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(IntegrityError, integrity_error)
    # Operating-system errors (a full or read-only disk under an upload or an export) get their
    # own handler so the answer names the problem; it is the same function as for any error.
    app.add_exception_handler(OSError, unexpected_error)
    app.add_exception_handler(Exception, unexpected_error)
