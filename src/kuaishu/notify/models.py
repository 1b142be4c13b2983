"""A notification to one user: kept in their inbox; e-mailed when SMTP is configured."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kuaishu.db import Base, utcnow


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_read", "user_id", "read_at"),
        Index("ix_notifications_email", "email_state"),
        {"comment": "站内通知与邮件"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), comment="收件人"
    )
    kind: Mapped[str] = mapped_column(String(40), comment="e.g. share.application")
    title: Mapped[str] = mapped_column(String(200), comment="标题")
    body: Mapped[str] = mapped_column(Text, default="", comment="正文")
    link: Mapped[str] = mapped_column(String(400), default="", comment="相关页面或接口")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, comment="(UTC)")
    read_at: Mapped[datetime | None] = mapped_column(comment="(UTC)")
    email_state: Mapped[str] = mapped_column(
        String(16), default="pending", comment="pending | sent | failed | none (no address)"
    )
    email_attempts: Mapped[int] = mapped_column(default=0)
