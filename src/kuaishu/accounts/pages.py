"""Console pages: sign-in, sign-out, home."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from kuaishu.accounts import auth
from kuaishu.accounts.auth import AccountDisabled, AccountLocked, SignInFailed
from kuaishu.errors import AppError
from kuaishu.settings import get_settings
from kuaishu.web.deps import SESSION_COOKIE, ActorDep, SessionDep
from kuaishu.web.templating import render

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


@router.get("/")
def home(request: Request, actor: ActorDep) -> Response:
    return render(request, "home.html")


@router.get("/login")
def login_form(
    request: Request, actor: ActorDep, next: str | None = None, expired: int = 0
) -> Response:
    if actor.user_id is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "login.html", {"next": _safe_next(next), "expired": bool(expired)})


@router.post("/login")
def login(
    request: Request,
    db: SessionDep,
    actor: ActorDep,
    username: Annotated[str, Form(max_length=150)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    try:
        user = auth.authenticate(db, username=username, password=password, anonymous=actor)
    except (SignInFailed, AccountLocked, AccountDisabled) as exc:
        db.commit()  # keep the failure count and its audit event
        return _login_failed(request, exc, username, next)
    signed_in_actor = auth.actor_for(
        user, client_addr=actor.client_addr, request_id=actor.request_id
    )
    started = auth.start_session(db, user=user, actor=signed_in_actor)
    response = RedirectResponse(_safe_next(next), status_code=303)
    settings = get_settings()
    response.set_cookie(
        SESSION_COOKIE,
        started.token,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        max_age=settings.session_hours * 3600,
        path="/",
    )
    return response


def _login_failed(request: Request, exc: AppError, username: str, next_url: str) -> Response:
    return render(
        request,
        "login.html",
        {
            "error": exc.localized(),
            "error_code": exc.code,
            "username": username,
            "next": _safe_next(next_url),
        },
        status_code=exc.status,
    )


@router.post("/logout")
def logout(request: Request, db: SessionDep, actor: ActorDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        auth.end_session(db, token=token, actor=actor)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
