"""Subscriptions: a grant's change feed delivered to the consumer — pushed to its endpoint or
written into its own database — never lost, never applied twice.

Delivery is at least once with an idempotency key, which makes it exactly once for the consumer:
a batch is identified by the subscription and the cursor it starts at (``Kuaishu-Delivery``),
and the same cursor always yields the same batch. The cursor moves on only when the consumer
acknowledged (2xx), or — for table sync — when the target's transaction, which stores the cursor
beside the rows, committed. A failed batch is tried again with exponential back-off; the grant is
checked afresh on each try, so a revoked or suspended grant stops delivery at once.

Each batch is read and recorded in the audit trail in one transaction that commits before it is
sent; a push is signed with HMAC-SM3 over the timestamp and the body, with a secret shown once.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import URL, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.accounts.actor import Actor
from kuaishu.authz import Denied, authorize, check
from kuaishu.db import transaction, utcnow
from kuaishu.errors import AppError, Conflict, NotFound, ValidationFailed
from kuaishu.security import audit, egress
from kuaishu.security.crypto import constant_time_equal, hmac_sm3, keyring, random_token
from kuaishu.settings import get_settings
from kuaishu.share import feed, sync
from kuaishu.share.enums import AccessMethod, GrantState, SubscriptionMode, SubscriptionState
from kuaishu.share.grants import GrantRefused, effective_state
from kuaishu.share.models import ShareGrant, Subscription
from kuaishu.share.services import LISTED, tell_consumer
from kuaishu.store import changes
from kuaishu.store.reads import json_value
from kuaishu.store.services import current_version

log = logging.getLogger(__name__)

DELIVERY_HEADER = "Kuaishu-Delivery"
TIMESTAMP_HEADER = "Kuaishu-Timestamp"
SIGNATURE_HEADER = "Kuaishu-Signature"
SEAL = "subscription-secret"
LEASE = timedelta(minutes=2)
TELL_AFTER = 5  # failed tries in a row before the consumer department is told
METHOD = {SubscriptionMode.PUSH: AccessMethod.SUBSCRIBE, SubscriptionMode.SYNC: AccessMethod.SYNC}
STATE_MOVES = {
    SubscriptionState.ACTIVE: {SubscriptionState.PAUSED, SubscriptionState.STOPPED},
    SubscriptionState.PAUSED: {SubscriptionState.ACTIVE, SubscriptionState.STOPPED},
    SubscriptionState.STOPPED: set(),
}


# Signing -----------------------------------------------------------------------------------------


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``hmac-sm3=<hex>`` over ``timestamp.body``: what a receiver recomputes to trust a push."""
    return "hmac-sm3=" + hmac_sm3(secret.encode(), timestamp.encode() + b"." + body).hex()


def verify(secret: str, timestamp: str, body: bytes, signed: str) -> bool:
    return constant_time_equal(signature(secret, timestamp, body).encode(), signed.encode())


# Registering ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Made:
    subscription: Subscription
    secret: str | None  # the push signing secret, shown this once


def subscribe(
    session: Session,
    *,
    actor: Actor,
    grant: ShareGrant,
    mode: SubscriptionMode,
    endpoint: str = "",
    target_url: str = "",
    target_table: str = "",
    password: str = "",
    since_version: int | None = None,
    batch_size: int = 500,
) -> Made:
    """Register a push endpoint or a sync target for ``grant``'s changes, from the beginning of
    the feed (every row, as added) or from just after version ``since_version``."""
    decided = authorize(actor, "share.subscribe", grant)
    method = METHOD[mode]
    if method not in grant.methods:
        raise GrantRefused(
            grant, "该授权不含此共享方式（{method}）。", code="method_not_granted", method=method
        )
    if effective_state(grant) != GrantState.ACTIVE:
        raise Conflict("授权当前不是有效状态，不能订阅。", code="grant_not_active")
    if not 1 <= batch_size <= feed.LIMIT_MAX:
        raise ValidationFailed(
            "每批条数应在 1 到 {n} 之间。", code="batch_size_invalid", n=feed.LIMIT_MAX
        )
    secret: str | None = None
    allowed = egress.allow_list(session)
    if mode == SubscriptionMode.PUSH:
        _check_endpoint(endpoint, allowed)
        secret = random_token(32)
        sealed = keyring().encrypt_text(SEAL, secret)
        target_url = target_table = ""
    else:
        _check_target(sync.check_target(target_url, target_table), allowed)
        _check_keys_granted(session, grant)
        sealed = keyring().encrypt_text(SEAL, password) if password else ""
        endpoint = ""
    start = feed.since_version(session, grant, since_version) if since_version else feed.START
    subscription = Subscription(
        grant_id=grant.id,
        entry_id=grant.entry_id,
        consumer_department_id=grant.consumer_department_id,
        mode=mode,
        state=SubscriptionState.ACTIVE,
        endpoint=endpoint,
        target_url=target_url,
        target_table=target_table,
        secret=sealed,
        cursor=str(start),
        batch_size=batch_size,
        attempts=0,
        next_attempt_at=utcnow(),
        last_error="",
        delivered=0,
        created_by=actor.user_id,
    )
    session.add(subscription)
    session.flush()
    audit.record(
        session,
        actor,
        "share.subscribe",
        target_type="share_subscription",
        target_id=subscription.id,
        details={
            "grant": grant.id,
            "mode": str(mode),
            "endpoint": endpoint or None,
            "target": f"{target_url} {target_table}".strip() or None,
            "cursor": str(start),
        },
        as_role=decided,
    )
    return Made(subscription, secret)


def _check_endpoint(endpoint: str, allowed: egress.AllowList) -> None:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed(
            "推送地址“{url}”无效，应为 http:// 或 https:// 开头的完整地址。",
            code="endpoint_invalid",
            url=endpoint,
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise ValidationFailed(
            "推送地址“{url}”无效，应为 http:// 或 https:// 开头的完整地址。",
            code="endpoint_invalid",
            url=endpoint,
        ) from error
    allowed.check_host(parts.hostname, port)  # each delivery checks again when it connects


def _check_target(url: URL, allowed: egress.AllowList) -> None:
    egress.check_database_url(url)
    if url.get_backend_name() == "sqlite":
        allowed.folder_file(str(url.database))
    else:
        allowed.check_host(
            str(url.host), url.port or egress.DEFAULT_PORTS.get(url.get_backend_name(), 0)
        )


def _check_keys_granted(session: Session, grant: ShareGrant) -> None:
    keys = current_version(session, grant.entry_id).key_columns
    missing = [k for k in keys if grant.fields and k not in grant.fields]
    if not keys or missing:
        raise ValidationFailed(
            "库表同步须按关键字段更新，而该授权不含关键字段（{names}）。",
            code="sync_needs_keys",
            names="、".join(missing or ["无"]),
        )


def change_state(
    session: Session, *, actor: Actor, subscription: Subscription, to: SubscriptionState
) -> Subscription:
    """Pause, resume or stop a subscription (stopping is final)."""
    grant = _grant(session, subscription)
    decided = authorize(actor, "share.subscribe", grant)
    if to == SubscriptionState.ACTIVE and effective_state(grant) != GrantState.ACTIVE:
        raise Conflict("授权当前不是有效状态，不能恢复订阅。", code="grant_not_active")
    if to not in STATE_MOVES[subscription.state]:
        raise Conflict(
            "订阅当前为“{state}”，不能改为“{to}”。",
            code="invalid_transition",
            state=subscription.state,
            to=to,
        )
    before = subscription.state
    subscription.state = to
    if to == SubscriptionState.ACTIVE:
        subscription.attempts, subscription.next_attempt_at = 0, utcnow()
    audit.record(
        session,
        actor,
        f"share.subscription_{to}",
        target_type="share_subscription",
        target_id=subscription.id,
        details={"from": str(before)},
        as_role=decided,
    )
    return subscription


def _grant(session: Session, subscription: Subscription) -> ShareGrant:
    grant = session.get(ShareGrant, subscription.grant_id)
    assert grant is not None
    return grant


def get_subscription(session: Session, subscription_id: int, *, actor: Actor) -> Subscription:
    found = session.get(Subscription, subscription_id)
    if found is None:
        raise NotFound("订阅不存在。", code="subscription_not_found")
    authorize(actor, "share.view", _grant(session, found))
    return found


def subscriptions(
    session: Session, *, actor: Actor, grant_id: int | None = None
) -> list[Subscription]:
    """The subscriptions on grants the actor's departments hold or gave (all, for the operator)."""
    authorize(actor, "share.browse")
    stmt = select(Subscription).join(ShareGrant, ShareGrant.id == Subscription.grant_id)
    if check(actor, "share.arbitrate", None) is None:
        mine = actor.department_ids
        stmt = stmt.where(
            or_(
                ShareGrant.provider_department_id.in_(mine),
                ShareGrant.consumer_department_id.in_(mine),
            )
        )
    if grant_id is not None:
        stmt = stmt.where(Subscription.grant_id == grant_id)
    return list(session.scalars(stmt.order_by(Subscription.id.desc()).limit(LISTED)))


# Delivering ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """A batch read and recorded, ready to send outside any transaction."""

    subscription_id: int
    mode: SubscriptionMode
    delivery: str
    page: feed.Page
    body: bytes
    endpoint: str
    target_url: str
    target_table: str
    secret: str
    allowed: egress.AllowList


def deliver_due(factory: sessionmaker[Session], *, now: datetime | None = None) -> int:
    """Deliver every active subscription whose next try is due, until each is caught up, fails
    or has sent 20 batches (the others get their turn); the number of batches acknowledged."""
    now = now or utcnow()
    with factory() as session:
        due = session.scalars(
            select(Subscription.id).where(
                Subscription.state == SubscriptionState.ACTIVE,
                or_(Subscription.next_attempt_at.is_(None), Subscription.next_attempt_at <= now),
                or_(Subscription.lease_until.is_(None), Subscription.lease_until < now),
            )
        ).all()
    acknowledged = 0
    for subscription_id in due:
        for _ in range(20):
            outcome = deliver_one(factory, subscription_id, now=now)
            acknowledged += outcome in ("sent", "done")
            if outcome not in ("sent", "skipped"):
                break
    return acknowledged


def deliver_one(factory: sessionmaker[Session], subscription_id: int, *, now: datetime) -> str:
    """One batch: ``sent`` (acknowledged, more to come), ``done`` (acknowledged, caught up),
    ``skipped`` (nothing this consumer sees in the next changes), ``idle`` (nothing new),
    ``failed`` (retry scheduled) or ``held`` (another deliverer has it)."""
    batch = _read_batch(factory, subscription_id, now)
    if not isinstance(batch, Batch):
        return batch
    try:
        if batch.mode == SubscriptionMode.PUSH:
            _post(batch)
        else:
            url = sync.check_target(batch.target_url, batch.target_table)
            if batch.secret:
                url = url.set(password=batch.secret)
            url, pinned = egress.database_target(url, batch.allowed)
            sync.apply(url, batch.target_table, batch.page, batch.subscription_id, pinned)
    except (httpx.HTTPError, _Rejected, sync.SyncFailed, AppError) as error:
        why = _describe(error)
        with transaction(factory) as session:
            subscription = session.get(Subscription, subscription_id, with_for_update=True)
            assert subscription is not None
            _retry_later(session, subscription, now, why)
        return "failed"
    with transaction(factory) as session:
        subscription = session.get(Subscription, subscription_id, with_for_update=True)
        assert subscription is not None
        if subscription.cursor == str(batch.page.cursor):
            subscription.cursor = str(batch.page.next_cursor)
            subscription.delivered += len(batch.page.changes)
        subscription.attempts, subscription.last_error = 0, ""
        subscription.last_delivered_at = utcnow()
        subscription.next_attempt_at = subscription.lease_until = None
    return "done" if batch.page.up_to_date else "sent"


class _Rejected(Exception):
    """The receiver answered, but not with 2xx."""


def _read_batch(factory: sessionmaker[Session], subscription_id: int, now: datetime) -> Batch | str:
    """Claim the subscription, read its next batch under the grant and record the read — one
    transaction, committed before anything is sent. A refused read schedules a retry."""
    with transaction(factory) as session:
        claimed = session.execute(
            update(Subscription)
            .where(
                Subscription.id == subscription_id,
                Subscription.state == SubscriptionState.ACTIVE,
                or_(Subscription.lease_until.is_(None), Subscription.lease_until < now),
            )
            .values(lease_until=now + LEASE)
            .execution_options(synchronize_session=False)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            return "held"
        subscription = session.get(Subscription, subscription_id)
        assert subscription is not None
        if feed.Cursor.parse(subscription.cursor).position > changes.last_position(
            session, subscription.entry_id
        ):  # caught up: nothing is read, so there is no access to record on every beat
            subscription.lease_until = None
            return "idle"
        grant = _grant(session, subscription)
        actor = _acting_for(session, subscription)
        delivery = f"{subscription.id}-{subscription.cursor}"
        try:
            with session.begin_nested():
                page = feed.read(
                    session,
                    actor=actor,
                    grant=grant,
                    cursor=feed.Cursor.parse(subscription.cursor),
                    limit=subscription.batch_size,
                    method=METHOD[subscription.mode],
                    purpose=grant.purpose,
                    details={"subscription": subscription.id, "delivery": delivery},
                )
        except AppError as error:
            if isinstance(error, Denied):  # in the trail like a refused request
                audit.record_denial(
                    session,
                    actor,
                    error,
                    {"subscription": subscription.id, "code": error.code},
                    purpose=grant.purpose,
                )
            _retry_later(session, subscription, now, _describe(error))
            return "failed"
        if not page.changes:
            subscription.cursor = str(page.next_cursor)
            subscription.next_attempt_at = subscription.lease_until = None
            return "idle" if page.up_to_date else "skipped"
        body = orjson.dumps(
            {
                "subscription": subscription.id,
                "delivery": delivery,
                "grant": grant.id,
                "entry_id": grant.entry_id,
                **page.as_dict(),
            },
            default=json_value,
        )
        secret = keyring().decrypt_text(SEAL, subscription.secret) if subscription.secret else ""
        return Batch(
            subscription_id=subscription.id,
            mode=subscription.mode,
            delivery=delivery,
            page=page,
            body=body,
            endpoint=subscription.endpoint,
            target_url=subscription.target_url,
            target_table=subscription.target_table,
            secret=secret,
            allowed=egress.allow_list(session),
        )


def _post(batch: Batch) -> None:
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        DELIVERY_HEADER: batch.delivery,
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: signature(batch.secret, stamp, batch.body),
        "User-Agent": "kuaishu-subscription/1",
    }
    timeout = get_settings().push_timeout_seconds
    with egress.http_client(batch.allowed, timeout=timeout) as client:
        response = client.post(batch.endpoint, content=batch.body, headers=headers)
    if not 200 <= response.status_code < 300:
        # The body is not kept: the consumer reads last_error, and the answer is the remote's.
        raise _Rejected(f"HTTP {response.status_code}：接收方未确认")


def _retry_later(session: Session, subscription: Subscription, now: datetime, why: str) -> None:
    """Schedule the next try after an exponential back-off (with jitter); tell the consumer once
    the failures pile up."""
    settings = get_settings()
    subscription.attempts += 1
    wait = min(
        settings.push_retry_seconds * 2 ** (subscription.attempts - 1),
        settings.push_retry_max_seconds,
    )
    wait *= random.uniform(0.8, 1.0)  # noqa: S311 - jitter, not a secret
    subscription.next_attempt_at = now + timedelta(seconds=wait)
    subscription.last_error = why[:1000]
    subscription.lease_until = None
    log.info("subscription %s: try %s failed: %s", subscription.id, subscription.attempts, why)
    if subscription.attempts == TELL_AFTER:
        tell_consumer(
            session,
            subscription.consumer_department_id,
            "share.subscription_failing",
            f"数据订阅 #{subscription.id} 连续 {TELL_AFTER} 次投递失败",
            f"最近一次：{why[:200]}。平台会继续按退避间隔重试，变更不会丢失。",
            f"/share/grants/{subscription.grant_id}",
        )


def _describe(error: BaseException) -> str:
    if isinstance(error, AppError):
        return f"{error.code}: {error.localized()}"
    if isinstance(error, httpx.HTTPError):
        return f"{type(error).__name__}: {error}"
    return str(error)


def _acting_for(session: Session, subscription: Subscription) -> Actor:
    """Deliveries act for the person who subscribed: their roles now, not when they subscribed."""
    from kuaishu.accounts.auth import actor_for
    from kuaishu.accounts.models import User

    user = session.get(User, subscription.created_by) if subscription.created_by else None
    if user is None or not user.is_active:
        return Actor(user_id=None, username="system", auth_method="job")
    return actor_for(user, auth_method="job")
