"""Console pages for everyone: home, sign-in and sign-out, registration, my account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from kuaishu.accounts import auth, services
from kuaishu.accounts.auth import AccountDisabled, SignInFailed, SignInThrottled
from kuaishu.errors import AppError
from kuaishu.i18n import SUPPORTED
from kuaishu.settings import get_settings
from kuaishu.web.deps import SESSION_COOKIE, ActorDep, CurrentActor, SessionDep
from kuaishu.web.forms import redirect
from kuaishu.web.middleware import LOCALE_COOKIE, secure_cookies
from kuaishu.web.templating import render

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only same-site paths may follow a sign-in (no open redirect)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


@router.get("/")
def home(request: Request, actor: ActorDep) -> Response:
    return render(request, "home.html")


@router.get("/lang/{locale}")
def switch_language(request: Request, locale: str, next: str | None = None) -> Response:
    response = RedirectResponse(safe_next(next), status_code=303)
    if locale in SUPPORTED:
        response.set_cookie(
            LOCALE_COOKIE,
            locale,
            max_age=365 * 86400,
            samesite="lax",
            secure=secure_cookies(request),
            path="/",
        )
    return response


@router.get("/login")
def login_form(
    request: Request, actor: ActorDep, next: str | None = None, expired: int = 0
) -> Response:
    if actor.user_id is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    response = render(request, "login.html", {"next": safe_next(next), "expired": bool(expired)})
    if expired:
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


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
    except (SignInFailed, SignInThrottled, AccountDisabled) as exc:
        db.commit()  # keep the failure count and its audit event
        return render(
            request,
            "login.html",
            {
                "error": exc.localized(),
                "error_code": exc.code,
                "username": username,
                "next": safe_next(next),
            },
            status_code=exc.status,
        )
    signed_in = auth.actor_for(user, client_addr=actor.client_addr, request_id=actor.request_id)
    started = auth.start_session(db, user=user, actor=signed_in)
    response = RedirectResponse(safe_next(next), status_code=303)
    settings = get_settings()
    response.set_cookie(
        SESSION_COOKIE,
        started.token,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        max_age=settings.session_hours * 3600,
        path="/",
    )
    return response


@router.post("/logout")
def logout(request: Request, db: SessionDep, actor: ActorDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        auth.end_session(db, token=token, actor=actor)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/register")
def register_form(request: Request, actor: ActorDep) -> Response:
    return render(request, "register.html", {"form": {}})


@router.post("/register")
def register(
    request: Request,
    db: SessionDep,
    actor: ActorDep,
    username: Annotated[str, Form(max_length=150)],
    display_name: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=256)],
    id_number: Annotated[str, Form(max_length=32)],
    phone: Annotated[str, Form(max_length=32)] = "",
    email: Annotated[str, Form(max_length=254)] = "",
    credit_code: Annotated[str, Form(max_length=18)] = "",
    organization: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    form = {
        "username": username,
        "display_name": display_name,
        "phone": phone,
        "email": email,
        "credit_code": credit_code,
        "organization": organization,
    }
    try:
        services.register_public_user(
            db,
            actor=actor,
            username=username,
            display_name=display_name,
            password=password,
            id_number=id_number,
            phone=phone or None,
            email=email or None,
            credit_code=credit_code or None,
            organization=organization or None,
        )
    except AppError as exc:
        db.rollback()
        return render(
            request, "register.html", {"form": form, "error": exc}, status_code=exc.status
        )
    return redirect("/login", "registered")


@router.get("/account")
def account(request: Request, db: SessionDep, actor: CurrentActor) -> Response:
    user = services.get_user(db, actor.user_id or 0)
    keys = auth.list_api_keys(db, actor=actor)
    return render(request, "account.html", {"account": user, "keys": keys})


@router.post("/account/password")
def change_password(
    request: Request,
    db: SessionDep,
    actor: CurrentActor,
    current_password: Annotated[str, Form(max_length=256)],
    new_password: Annotated[str, Form(max_length=256)],
) -> Response:
    try:
        auth.change_password(
            db, actor=actor, current_password=current_password, new_password=new_password
        )
    except AppError as exc:
        db.rollback()
        return _account_with_error(request, db, actor, exc)
    return redirect("/account", "password_changed")


@router.post("/account/api-keys")
def create_api_key(
    request: Request,
    db: SessionDep,
    actor: CurrentActor,
    name: Annotated[str, Form(max_length=100)],
    days: Annotated[int, Form(ge=1, le=3650)] = 365,
    scope_write: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    scopes = ("read", "write") if scope_write else ("read",)
    try:
        issued = auth.create_api_key(
            db, actor=actor, name=name, scopes=scopes, expires_in_days=days
        )
    except AppError as exc:
        db.rollback()
        return _account_with_error(request, db, actor, exc)
    return render(request, "api_key_issued.html", {"issued": issued})


@router.post("/account/api-keys/{key_id}/revoke")
def revoke_api_key(key_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    auth.revoke_api_key(db, actor=actor, key_id=key_id)
    return redirect("/account", "key_revoked")


def _account_with_error(
    request: Request, db: SessionDep, actor: CurrentActor, exc: AppError
) -> Response:
    user = services.get_user(db, actor.user_id or 0)
    keys = auth.list_api_keys(db, actor=actor)
    return render(
        request,
        "account.html",
        {"account": user, "keys": keys, "error": exc},
        status_code=exc.status,
    )
