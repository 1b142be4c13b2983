"""Sending notifications: to the holders of roles in a department, or to the platform's
operators; reading and marking one's own; delivering the e-mail of pending ones.

A notification is written in the caller's transaction, so it exists exactly when the change that
caused it does; e-mail goes out afterwards (``deliver``), retried until it is accepted.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterable
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.accounts.actor import Actor
from kuaishu.accounts.models import RoleAssignment, User
from kuaishu.accounts.roles import Role
from kuaishu.db import transaction, utcnow
from kuaishu.errors import NotAuthenticated, NotFound
from kuaishu.notify.models import Notification
from kuaishu.security import audit
from kuaishu.settings import get_settings

MAX_ATTEMPTS = 5


def notify(
    session: Session,
    *,
    roles: Iterable[Role],
    department_id: int | None,
    kind: str,
    title: str,
    body: str = "",
    link: str = "",
) -> list[Notification]:
    """One notification for each active holder of ``roles`` in ``department_id`` (in any
    department when it is None, as for the platform's operators)."""
    stmt = (
        select(User)
        .join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(RoleAssignment.role.in_(list(roles)), User.is_active.is_(True))
    )
    if department_id is not None:
        stmt = stmt.where(RoleAssignment.department_id == department_id)
    made = []
    for user in {u.id: u for u in session.scalars(stmt)}.values():
        note = Notification(
            user_id=user.id,
            kind=kind,
            title=title,
            body=body,
            link=link,
            email_state="pending" if user.email else "none",
        )
        session.add(note)
        made.append(note)
    session.flush()
    return made


def inbox(session: Session, *, actor: Actor, unread: bool = False) -> list[Notification]:
    if actor.user_id is None:
        raise NotAuthenticated()
    stmt = select(Notification).where(Notification.user_id == actor.user_id)
    if unread:
        stmt = stmt.where(Notification.read_at.is_(None))
    return list(session.scalars(stmt.order_by(Notification.id.desc()).limit(200)))


def mark_read(session: Session, *, actor: Actor, notification_id: int) -> Notification:
    note = session.get(Notification, notification_id)
    if note is None or note.user_id != actor.user_id:
        raise NotFound("通知不存在。", code="notification_not_found")
    note.read_at = note.read_at or utcnow()
    audit.record(session, actor, "notification.read", target_type="notification", target_id=note.id)
    return note


def deliver(factory: sessionmaker[Session]) -> int:
    """E-mail the pending notifications through the configured SMTP server; how many were sent.
    Without ``KUAISHU_SMTP_HOST`` nothing is sent and they stay in the inboxes."""
    settings = get_settings()
    if not settings.smtp_host:
        return 0
    with transaction(factory) as session:
        pending = list(
            session.execute(
                select(Notification, User.email)
                .join(User, User.id == Notification.user_id)
                .where(Notification.email_state == "pending")
                .order_by(Notification.id)
                .limit(200)
            )
        )
        if not pending:  # the beat runs every 30 s: no connection when nothing waits
            return 0
        sent = 0
        try:
            with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
                for note, address in pending:
                    message = EmailMessage()
                    message["From"] = settings.smtp_from
                    message["To"] = address
                    message["Subject"] = f"【{settings.site_name}】{note.title}"
                    message.set_content(f"{note.body}\n\n{note.link}".strip())
                    try:
                        smtp.send_message(message)
                    except smtplib.SMTPException:
                        _failed(note)
                        continue
                    note.email_state, sent = "sent", sent + 1
        except OSError:
            for note, _address in pending:
                if note.email_state == "pending":
                    _failed(note)
        return sent


def _failed(note: Notification) -> None:
    note.email_attempts += 1
    if note.email_attempts >= MAX_ATTEMPTS:
        note.email_state = "failed"
