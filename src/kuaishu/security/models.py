"""The audit trail (审计日志): append-only events, shaped to be chained into a ledger later."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, Session, mapped_column

from kuaishu.db import Base, str_enum, utcnow


class Outcome(StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    FAILURE = "failure"


class AuditEvent(Base):
    """One thing that happened: who did what to which object, why, with what result, from where."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_actor_time", "actor_user_id", "occurred_at"),
        Index("ix_audit_events_action_time", "action", "occurred_at"),
        Index("ix_audit_events_target", "target_type", "target_id"),
        Index("ix_audit_events_department_time", "actor_department_id", "occurred_at"),
        {"comment": "append-only audit trail; UPDATE and DELETE are refused by triggers"},
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, comment="sequence number"
    )
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True, comment="when (UTC)")
    request_id: Mapped[str | None] = mapped_column(String(64), comment="request correlation id")
    actor_user_id: Mapped[int | None] = mapped_column(comment="acting user; NULL for the system")
    actor_username: Mapped[str] = mapped_column(String(150), comment="username at the time")
    actor_department_id: Mapped[int | None] = mapped_column(
        comment="department the role is held in"
    )
    actor_role: Mapped[str | None] = mapped_column(String(40), comment="role under which it acted")
    action: Mapped[str] = mapped_column(String(80), comment="operation name, e.g. user.create")
    target_type: Mapped[str | None] = mapped_column(String(60), comment="kind of object acted on")
    target_id: Mapped[str | None] = mapped_column(String(120), comment="id of the object acted on")
    purpose: Mapped[str | None] = mapped_column(Text, comment="declared purpose (使用目的)")
    outcome: Mapped[str] = mapped_column(String(16), default=Outcome.SUCCESS, comment="result")
    client_addr: Mapped[str | None] = mapped_column(String(64), comment="client IP address")
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, comment="structured extra facts")

    def canonical(self) -> bytes:
        """A stable byte form of the event, the leaf a tamper-evident ledger will hash."""
        body = {
            "id": self.id,
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
            "request_id": self.request_id,
            "actor_user_id": self.actor_user_id,
            "actor_username": self.actor_username,
            "actor_department_id": self.actor_department_id,
            "actor_role": self.actor_role,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "purpose": self.purpose,
            "outcome": self.outcome,
            "client_addr": self.client_addr,
            "details": self.details,
        }
        return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


class AuditImmutableError(RuntimeError):
    """Raised when code tries to change or remove an audit event."""


@event.listens_for(Session, "before_flush")
def _refuse_audit_changes(session: Session, _context: Any, _instances: Any) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEvent) and (obj in session.deleted or session.is_modified(obj)):
            raise AuditImmutableError("audit events are append-only")


# Database-level guards (triggers) are created by migration 0001 on each backend.


class DestinationKind(StrEnum):
    HOST = "host"  # a host name (or *.suffix), an IP address or a CIDR network
    FOLDER = "folder"  # a server folder whose SQLite files may be a source or a sync target


class AllowedDestination(Base):
    """An entry of the outbound allow list (对外访问白名单), managed by the platform operator."""

    __tablename__ = "allowed_destinations"
    __table_args__ = (
        UniqueConstraint("kind", "value", "port"),
        {"comment": "对外访问白名单 — what sources, push endpoints and sync targets may reach"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[DestinationKind] = mapped_column(
        str_enum(DestinationKind, 16), comment="host | folder"
    )
    value: Mapped[str] = mapped_column(
        String(255), comment="host name, *.suffix, IP, CIDR network, or absolute folder path"
    )
    port: Mapped[int | None] = mapped_column(comment="the one port allowed (NULL: any)")
    note: Mapped[str] = mapped_column(String(200), default="", comment="why it is allowed")
    created_by: Mapped[int | None] = mapped_column(comment="the operator who added it")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, comment="added (UTC)")
