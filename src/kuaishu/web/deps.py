"""Dependencies shared by every route: the database session, the actor, CSRF, pagination."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.accounts.actor import Actor
from kuaishu.accounts.auth import actor_for, resolve_api_key, resolve_session
from kuaishu.accounts.models import WebSession
from kuaishu.authz import Denied
from kuaishu.errors import AppError, NotAuthenticated
from kuaishu.pagination import PageRequest
from kuaishu.settings import get_settings

SESSION_COOKIE = "ks_session"
ANON_CSRF_COOKIE = "ks_csrf"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class SignedInUser:
    """What pages show of the signed-in user."""

    id: int
    username: str
    display_name: str
    kind: str


class CsrfFailed(AppError):
    status = 403
    code = "csrf_failed"
    message = "表单已失效或来源不可信（CSRF 校验失败），请刷新页面后重试。"


class SessionExpired(NotAuthenticated):
    code = "session_expired"
    message = "登录已过期，请重新登录。"


def session_factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    return factory


# SQLite takes its write lock when a transaction begins (BEGIN IMMEDIATE), so concurrent requests
# queue on it — in SQLite's busy handler, which sleeps up to 100 ms between tries and turned a
# 5 ms data lookup into seconds at the 99th percentile. Requests of one process queue here
# instead, handed on the moment the lock frees. (PostgreSQL needs no such queue.)
_SQLITE_REQUESTS = threading.Lock()
_SQLITE_WAIT_SECONDS = 30


def get_db(request: Request) -> Iterator[Session]:
    """One session per request: committed when the handler returns, rolled back if it raises."""
    factory = session_factory(request)
    queued = factory.kw.get("bind") is not None and factory.kw["bind"].dialect.name == "sqlite"
    held = queued and _SQLITE_REQUESTS.acquire(timeout=_SQLITE_WAIT_SECONDS)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
        if held:
            _SQLITE_REQUESTS.release()


SessionDep = Annotated[Session, Depends(get_db, scope="function")]


async def submitted_csrf(request: Request) -> str | None:
    """The CSRF token a request carries: the X-CSRF-Token header, else a form field."""
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    if request.method in UNSAFE_METHODS:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf_token")
            return value if isinstance(value, str) else None
    return None


def _client_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


def current_actor(
    request: Request,
    db: SessionDep,
    csrf: Annotated[str | None, Depends(submitted_csrf)],
) -> Actor:
    """Who is calling: an API key, a session cookie, or nobody (anonymous)."""
    request_id = getattr(request.state, "request_id", None)
    addr = _client_addr(request)
    secret = _api_key_from(request)
    if secret is not None:
        key, user = resolve_api_key(db, secret)
        actor = actor_for(
            user,
            client_addr=addr,
            request_id=request_id,
            auth_method="api_key",
            scopes=frozenset(key.scopes),
        )
        request.state.actor = actor
        _check_key_writes(request, actor)
        return actor
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        found = resolve_session(db, token)
        if found is None:
            request.state.session_expired = True
        else:
            web_session, user = found
            _check_session_csrf(request, web_session, csrf)
            actor = actor_for(user, client_addr=addr, request_id=request_id)
            request.state.actor = actor
            # Plain values, not ORM objects: error pages render after the session is gone.
            request.state.csrf_token = web_session.csrf_token
            request.state.user = SignedInUser(
                id=user.id,
                username=user.username,
                display_name=user.display_name,
                kind=str(user.kind),
            )
            return actor
    _check_anonymous_csrf(request, csrf)
    actor = Actor(
        user_id=None,
        username="anonymous",
        client_addr=addr,
        request_id=request_id,
        auth_method="anonymous",
    )
    request.state.actor = actor
    return actor


# Requests that read although sent by POST (a lookup keeps the looked-up value out of URLs and
# access logs). Every other POST, PUT, PATCH and DELETE changes something.
READS_BY_POST = frozenset(
    {
        "/api/v1/data/{code}/lookup",
        "/api/v1/share/grants/{grant_id}/lookup",
        "/api/v1/collect/entries/{entry_id}/mapping/propose",
        "/api/v1/collect/entries/{entry_id}/mapping/propose/upload",
    }
)


class ReadOnlyKey(Denied):
    code = "read_only_key"
    message = "该 API 密钥只有读取权限，不能执行写操作。"


def _check_key_writes(request: Request, actor: Actor) -> None:
    """A key without the write scope changes nothing — whatever scope an operation's policy
    declares, so an operation declared "read" by mistake still cannot be written through it."""
    if request.method not in UNSAFE_METHODS or actor.scopes is None or "write" in actor.scopes:
        return
    route = request.scope.get("route")
    if getattr(route, "path", None) not in READS_BY_POST:
        raise ReadOnlyKey("apikey.write")


def _api_key_from(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("x-api-key") or None


def _check_session_csrf(request: Request, web_session: WebSession, csrf: str | None) -> None:
    if request.method not in UNSAFE_METHODS:
        return
    if not csrf or not secrets.compare_digest(csrf, web_session.csrf_token):
        raise CsrfFailed()


def _check_anonymous_csrf(request: Request, csrf: str | None) -> None:
    """Anonymous form posts (sign-in, registration) use a double-submit cookie."""
    if request.method not in UNSAFE_METHODS or request.url.path.startswith("/api/"):
        return
    cookie = request.cookies.get(ANON_CSRF_COOKIE)
    if not cookie or not csrf or not secrets.compare_digest(cookie, csrf):
        raise CsrfFailed()


ActorDep = Annotated[Actor, Depends(current_actor)]


def signed_in(request: Request, actor: ActorDep) -> Actor:
    """The actor, who must be signed in."""
    if actor.user_id is None:
        if getattr(request.state, "session_expired", False):
            raise SessionExpired()
        raise NotAuthenticated()
    return actor


CurrentActor = Annotated[Actor, Depends(signed_in)]


def page_params(
    page: Annotated[int, Query(ge=1, le=1_000_000, description="页码，从 1 开始")] = 1,
    page_size: Annotated[int | None, Query(ge=1, description="每页条数")] = None,
) -> PageRequest:
    """``?page=1&page_size=20`` — the one pagination convention of every list endpoint."""
    settings = get_settings()
    size = page_size or settings.page_size_default
    if size > settings.page_size_max:
        raise AppError(
            "每页条数不能超过 {n}。",
            code="page_size_too_large",
            status=422,
            details={"field": "page_size", "max": settings.page_size_max},
            n=settings.page_size_max,
        )
    return PageRequest(page=page, page_size=size)


PageDep = Annotated[PageRequest, Depends(page_params)]
