"""My notifications: the inbox, and marking one read."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from kuaishu.notify import services
from kuaishu.schemas import Output
from kuaishu.web.deps import CurrentActor, SessionDep

router = APIRouter(prefix="/api/v1/me/notifications", tags=["notifications"])


class NotificationOut(Output):
    id: int
    kind: str
    title: str
    body: str
    link: str
    created_at: datetime
    read_at: datetime | None
    email_state: str


@router.get("", response_model=list[NotificationOut], summary="我的通知")
def my_notifications(
    db: SessionDep,
    actor: CurrentActor,
    unread: Annotated[bool, Query(description="只看未读")] = False,
) -> object:
    return services.inbox(db, actor=actor, unread=unread)


@router.post("/{notification_id}/read", response_model=NotificationOut, summary="标为已读")
def read(notification_id: int, db: SessionDep, actor: CurrentActor) -> object:
    return services.mark_read(db, actor=actor, notification_id=notification_id)
