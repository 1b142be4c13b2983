"""The change feed and subscriptions under a grant (数据订阅, 库表同步).

``GET …/grants/{id}/changes`` is the feed a consumer pulls; a subscription has it pushed to an
endpoint (signed, retried) or written into a table of the consumer's database.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Response

from kuaishu.share import feed, services, subscriptions
from kuaishu.share.enums import SubscriptionState
from kuaishu.share.models import Subscription
from kuaishu.share.schemas import SubscribedOut, SubscribeIn, SubscriptionOut
from kuaishu.store.reads import json_value
from kuaishu.store.routes import PurposeDep
from kuaishu.web.deps import CurrentActor, SessionDep

router = APIRouter(prefix="/api/v1/share", tags=["share"])


@router.get(
    "/grants/{grant_id}/changes",
    summary="按授权拉取增量变更（新增、修改、删除，按关键字段）",
    response_class=Response,
)
def changes(
    grant_id: int,
    db: SessionDep,
    actor: CurrentActor,
    purpose: PurposeDep,
    cursor: Annotated[str | None, Query(description="上次返回的 next_cursor；不填则从头")] = None,
    since_version: Annotated[
        int | None,
        Query(
            ge=1,
            description="从该版本发布之后的变更开始（回退后再次发布的版本，从最近一次发布算起；续读请用游标）",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=feed.LIMIT_MAX, description="本页最多条数")] = 500,
) -> Response:
    """只含授权的字段和行，按共享渠道脱敏；行移入授权范围记为新增，移出记为删除。
    反复以 next_cursor 调用直至 up_to_date 为真。每次调用记入审计。"""
    grant = services.get_grant(db, grant_id)
    if cursor is not None:
        start = feed.Cursor.parse(cursor)
    elif since_version is not None:
        start = feed.since_version(db, grant, since_version)
    else:
        start = feed.START
    page = feed.read(db, actor=actor, grant=grant, cursor=start, limit=limit, purpose=purpose)
    return Response(
        orjson.dumps(page.as_dict(), default=json_value),
        media_type="application/json",
    )


@router.post(
    "/grants/{grant_id}/subscriptions",
    response_model=SubscribedOut,
    status_code=201,
    summary="登记订阅：推送到接收地址，或同步到本部门数据库表",
)
def subscribe(
    grant_id: int, body: SubscribeIn, db: SessionDep, actor: CurrentActor
) -> SubscribedOut:
    grant = services.get_grant(db, grant_id)
    made = subscriptions.subscribe(
        db,
        actor=actor,
        grant=grant,
        mode=body.mode,
        endpoint=body.endpoint,
        target_url=body.target_url,
        target_table=body.target_table,
        password=body.password,
        since_version=body.since_version,
        batch_size=body.batch_size,
    )
    return SubscribedOut(subscription=_out(made.subscription), secret=made.secret)


def _out(subscription: Subscription) -> SubscriptionOut:
    return SubscriptionOut.model_validate(subscription, from_attributes=True)


@router.get(
    "/subscriptions", response_model=list[SubscriptionOut], summary="订阅（我方的与对我方的）"
)
def list_subscriptions(
    db: SessionDep,
    actor: CurrentActor,
    grant_id: Annotated[int | None, Query(description="只看该授权的订阅")] = None,
) -> list[SubscriptionOut]:
    return [_out(s) for s in subscriptions.subscriptions(db, actor=actor, grant_id=grant_id)]


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionOut, summary="订阅")
def get_subscription(subscription_id: int, db: SessionDep, actor: CurrentActor) -> SubscriptionOut:
    return _out(subscriptions.get_subscription(db, subscription_id, actor=actor))


def _move(
    subscription_id: int, to: SubscriptionState, db: SessionDep, actor: CurrentActor
) -> SubscriptionOut:
    found = subscriptions.get_subscription(db, subscription_id, actor=actor)
    return _out(subscriptions.change_state(db, actor=actor, subscription=found, to=to))


@router.post(
    "/subscriptions/{subscription_id}/pause", response_model=SubscriptionOut, summary="暂停订阅"
)
def pause(subscription_id: int, db: SessionDep, actor: CurrentActor) -> SubscriptionOut:
    return _move(subscription_id, SubscriptionState.PAUSED, db, actor)


@router.post(
    "/subscriptions/{subscription_id}/resume", response_model=SubscriptionOut, summary="恢复订阅"
)
def resume(subscription_id: int, db: SessionDep, actor: CurrentActor) -> SubscriptionOut:
    return _move(subscription_id, SubscriptionState.ACTIVE, db, actor)


@router.post(
    "/subscriptions/{subscription_id}/stop",
    response_model=SubscriptionOut,
    summary="停止订阅（不可恢复）",
)
def stop(subscription_id: int, db: SessionDep, actor: CurrentActor) -> SubscriptionOut:
    return _move(subscription_id, SubscriptionState.STOPPED, db, actor)
