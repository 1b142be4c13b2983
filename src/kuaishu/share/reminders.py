"""Deadlines of share applications at work: the provider is reminded 3 and 1 working days
before its 10 working days run out, and an application still unanswered after them escalates to
the platform's operators (and counts against the provider in evaluation)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.accounts.roles import Role
from kuaishu.calendar import china_today, workdays_between
from kuaishu.db import transaction, utcnow
from kuaishu.notify.services import notify
from kuaishu.share.enums import ApplicationState
from kuaishu.share.models import ShareApplication

REMIND_AT = (3, 1)  # working days left


def remind_and_escalate(session: Session, today: date | None = None) -> tuple[int, int]:
    """Send what is due today; (reminders sent, applications escalated). Each reminder and each
    escalation goes out once, however often this runs."""
    today = today or china_today()
    reminders = escalations = 0
    waiting = session.scalars(
        select(ShareApplication).where(ShareApplication.state == ApplicationState.SUBMITTED)
    )
    for application in waiting:
        left = workdays_between(today, application.due_on)
        link = f"/share/applications/{application.id}"
        if today > application.due_on:
            if application.escalated_at is None:
                notify(
                    session,
                    roles=[Role.PLATFORM_OPERATOR],
                    department_id=None,
                    kind="share.overdue",
                    title="共享申请逾期未答复",
                    body=f"共享申请 #{application.id} 的答复期限 {application.due_on} 已过，"
                    "提供部门仍未答复，请督办。",
                    link=link,
                )
                application.escalated_at = utcnow()
                escalations += 1
            continue
        due = [m for m in REMIND_AT if left <= m and m not in (application.reminded or [])]
        if due:  # one reminder, however many marks were passed since the last look
            notify(
                session,
                roles=[Role.DATA_OFFICER],
                department_id=application.provider_department_id,
                kind="share.reminder",
                title=f"共享申请还有 {left} 个工作日到期",
                body=f"共享申请 #{application.id} 须在 {application.due_on} 前答复。",
                link=link,
            )
            application.reminded = [*(application.reminded or []), *due]
            reminders += 1
    return reminders, escalations


def tick(factory: sessionmaker[Session]) -> tuple[int, int]:
    with transaction(factory) as session:
        return remind_and_escalate(session)
