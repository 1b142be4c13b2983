"""Sign-in: password checks with lock-out, browser sessions, and API keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kuaishu.accounts import passwords
from kuaishu.accounts.actor import Actor
from kuaishu.accounts.models import ApiKey, SignInFailure, User, WebSession
from kuaishu.accounts.services import _require_text, get_user_by_username
from kuaishu.authz import authorize
from kuaishu.db import utcnow
from kuaishu.errors import AppError, NotAuthenticated, NotFound, ValidationFailed
from kuaishu.security import audit
from kuaishu.security.crypto import random_token, sm3_hex
from kuaishu.security.models import Outcome
from kuaishu.settings import get_settings

API_KEY_PREFIX = "ks_"
SCOPES = ("read", "write")


class SignInFailed(AppError):
    status = 401
    code = "sign_in_failed"
    message = "用户名或密码不正确。"


class SignInThrottled(AppError):
    """Too many failures from this address (for this name, or for any): the same answer whether
    or not the name is an account, and no effect on sign-ins from anywhere else."""

    status = 429
    code = "sign_in_throttled"
    message = "登录失败次数过多，请 {minutes} 分钟后再试。"


class AccountDisabled(AppError):
    status = 403
    code = "account_disabled"
    message = "账户已停用，请联系管理员。"


def actor_for(
    user: User,
    *,
    client_addr: str | None = None,
    request_id: str | None = None,
    auth_method: str = "session",
    scopes: frozenset[str] | None = None,
) -> Actor:
    """The :class:`Actor` a signed-in ``user`` acts as."""
    return Actor(
        user_id=user.id,
        username=user.username,
        kind=user.kind,
        roles=frozenset((a.department_id, a.role) for a in user.roles),
        client_addr=client_addr,
        request_id=request_id,
        auth_method=auth_method,
        scopes=scopes,
    )


def authenticate(session: Session, *, username: str, password: str, anonymous: Actor) -> User:
    """The user for these credentials. A known and an unknown name fail alike — same message,
    same status, a password hash checked either way — and failures slow that address down
    (see docs/decisions/0002-sign-in-sessions-keys.md).

    Failures are recorded (and counted) by the caller's commit after the error, since the error
    would otherwise roll the request's transaction back.
    """
    address = (anonymous.client_addr or "unknown")[:64]
    name = sm3_hex(username.strip().lower().encode())
    now = utcnow()
    try:
        _throttle(session, name=name, address=address, now=now)
    except SignInThrottled:
        # An attempt that no longer counts is still a probe the trail must show.
        _record_failure(session, anonymous, None, {"reason": "throttled"})
        raise
    user = get_user_by_username(session, username)
    # Unknown names are checked against a dummy hash: the answer takes as long as for a real one.
    matched = passwords.verify_password(
        user.password_hash if user is not None else passwords.DUMMY_HASH, password
    )
    if user is None or not matched:
        session.add(SignInFailure(name_digest=name, address=address, failed_at=now))
        if user is None:
            _record_failure(
                session, anonymous, None, {"reason": "unknown_user", "name": username[:150]}
            )
        else:
            audit.record(
                session,
                anonymous,
                "auth.sign_in",
                target_type="user",
                target_id=user.id,
                outcome=Outcome.FAILURE,
            )
        raise SignInFailed()
    if not user.is_active:
        raise AccountDisabled()
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    session.execute(
        delete(SignInFailure).where(
            SignInFailure.name_digest == name, SignInFailure.address == address
        )
    )
    return user


def _record_failure(
    session: Session, anonymous: Actor, user_id: int | None, details: dict[str, object]
) -> None:
    """A refused sign-in the trail must show too: a name that has no account (probing), or an
    attempt while its address is held back (a guess that no longer counts)."""
    audit.record(
        session,
        anonymous,
        "auth.sign_in",
        target_type="user",
        target_id=user_id,
        outcome=Outcome.FAILURE,
        details=details,
    )


def _throttle(session: Session, *, name: str, address: str, now: datetime) -> None:
    """Refuse an attempt from an address with too many recent failures — for this name, or in
    all. Keyed by address, so no one can lock an account (the operator's included) out from
    elsewhere; keyed by the name as typed, so an unknown name is throttled like a real one."""
    settings = get_settings()
    window = timedelta(minutes=settings.sign_in_window_minutes)
    hold = timedelta(minutes=settings.lockout_minutes)
    session.execute(
        delete(SignInFailure).where(
            SignInFailure.address == address, SignInFailure.failed_at < now - max(window, hold)
        )
    )
    recent = select(func.count(SignInFailure.id)).where(SignInFailure.address == address)
    from_address = session.scalar(recent.where(SignInFailure.failed_at >= now - window)) or 0
    for_name = (
        session.scalar(
            recent.where(SignInFailure.name_digest == name, SignInFailure.failed_at >= now - hold)
        )
        or 0
    )
    if from_address >= settings.sign_in_address_limit:
        raise SignInThrottled(minutes=settings.sign_in_window_minutes)
    if for_name >= settings.lockout_threshold:
        raise SignInThrottled(minutes=settings.lockout_minutes)


@dataclass(frozen=True)
class StartedSession:
    token: str
    record: WebSession


def start_session(session: Session, *, user: User, actor: Actor) -> StartedSession:
    """Open a browser session for ``user`` and record the sign-in."""
    token = random_token()
    web_session = WebSession(
        token_digest=sm3_hex(token.encode()),
        user_id=user.id,
        csrf_token=random_token(24),
        expires_at=utcnow() + timedelta(hours=get_settings().session_hours),
    )
    session.add(web_session)
    audit.record(session, actor, "auth.sign_in", target_type="user", target_id=user.id)
    return StartedSession(token=token, record=web_session)


def resolve_session(session: Session, token: str) -> tuple[WebSession, User] | None:
    """The live session and active user behind a cookie token, or None."""
    web_session = session.scalar(
        select(WebSession).where(WebSession.token_digest == sm3_hex(token.encode()))
    )
    if web_session is None or web_session.expires_at <= utcnow():
        return None
    user = session.get(User, web_session.user_id)
    if user is None or not user.is_active:
        return None
    return web_session, user


def end_session(session: Session, *, token: str, actor: Actor) -> None:
    web_session = session.scalar(
        select(WebSession).where(WebSession.token_digest == sm3_hex(token.encode()))
    )
    if web_session is not None:
        session.delete(web_session)
        audit.record(
            session, actor, "auth.sign_out", target_type="user", target_id=web_session.user_id
        )


def change_password(
    session: Session, *, actor: Actor, current_password: str, new_password: str
) -> User:
    """Change one's own password; other sessions of the account end."""
    authorize(actor, "account.change_password")
    user = session.get(User, actor.user_id)
    if user is None:
        raise NotAuthenticated()
    if not passwords.verify_password(user.password_hash, current_password):
        raise ValidationFailed(
            "当前密码不正确。", code="wrong_password", details={"field": "current_password"}
        )
    passwords.check_policy(new_password, username=user.username)
    user.password_hash = passwords.hash_password(new_password)
    user.password_changed_at = utcnow()
    audit.record(session, actor, "account.change_password", target_type="user", target_id=user.id)
    return user


# API keys --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedKey:
    """A new key: ``secret`` is shown to the user exactly once."""

    secret: str
    record: ApiKey


def create_api_key(
    session: Session,
    *,
    actor: Actor,
    name: str,
    scopes: Sequence[str] = ("read",),
    expires_in_days: int | None = None,
) -> IssuedKey:
    """Issue a key for the acting user; only its digest is stored."""
    authorize(actor, "apikey.create")
    name = _require_text(name, "name", "密钥名称", max_length=100)
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValidationFailed(
            "权限范围只能是 read 或 write。", code="invalid_scope", details={"field": "scopes"}
        )
    days = expires_in_days if expires_in_days is not None else get_settings().api_key_default_days
    if not 1 <= days <= 3650:
        raise ValidationFailed(
            "有效期应为 1–3650 天。", code="invalid_expiry", details={"field": "expires_in_days"}
        )
    prefix = API_KEY_PREFIX + random_token(6)[:8].replace("-", "x").replace("_", "y")
    secret = f"{prefix}.{random_token(32)}"
    key = ApiKey(
        user_id=actor.user_id,
        name=name,
        prefix=prefix,
        secret_digest=sm3_hex(secret.encode()),
        scopes=sorted(set(scopes)),
        expires_at=utcnow() + timedelta(days=days),
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        actor,
        "apikey.create",
        target_type="api_key",
        target_id=key.id,
        details={"prefix": prefix, "scopes": key.scopes, "expires_at": str(key.expires_at)},
    )
    return IssuedKey(secret=secret, record=key)


def list_api_keys(session: Session, *, actor: Actor) -> Sequence[ApiKey]:
    authorize(actor, "apikey.list")
    return session.scalars(
        select(ApiKey).where(ApiKey.user_id == actor.user_id).order_by(ApiKey.created_at.desc())
    ).all()


def revoke_api_key(session: Session, *, actor: Actor, key_id: int) -> ApiKey:
    authorize(actor, "apikey.revoke")
    key = session.get(ApiKey, key_id)
    if key is None or key.user_id != actor.user_id:
        raise NotFound("API 密钥不存在。", code="api_key_not_found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(
            session,
            actor,
            "apikey.revoke",
            target_type="api_key",
            target_id=key.id,
            details={"prefix": key.prefix},
        )
    return key


class InvalidApiKey(NotAuthenticated):
    code = "invalid_api_key"
    message = "API 密钥无效、已过期或已撤销。"


def resolve_api_key(session: Session, secret: str) -> tuple[ApiKey, User]:
    """The key and its active owner; raises :class:`InvalidApiKey` for anything else."""
    prefix = secret.split(".", 1)[0]
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    now = utcnow()
    if key is None or key.secret_digest != sm3_hex(secret.encode()):
        raise InvalidApiKey()
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        raise InvalidApiKey()
    user = session.get(User, key.user_id)
    if user is None or not user.is_active:
        raise InvalidApiKey()
    # Coarse last-used time: one write a minute at most keeps the hot path read-only.
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        key.last_used_at = now
    return key, user
