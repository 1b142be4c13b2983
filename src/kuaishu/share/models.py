"""Share applications and the grants they lead to."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kuaishu.db import Base, str_enum, utcnow
from kuaishu.share.enums import (
    ApplicationState,
    GrantState,
    SubscriptionMode,
    SubscriptionState,
)


class ShareApplication(Base):
    """A consuming department's request for a conditional (or unconditional) share."""

    __tablename__ = "share_applications"
    __table_args__ = (
        Index("ix_share_applications_state_due", "state", "due_on"),
        {"comment": "共享申请"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_entries.id", ondelete="RESTRICT"), index=True, comment="目录条目"
    )
    provider_department_id: Mapped[int] = mapped_column(comment="提供部门")
    consumer_department_id: Mapped[int] = mapped_column(index=True, comment="使用部门")
    applicant_id: Mapped[int | None] = mapped_column(comment="申请人 user id")
    state: Mapped[ApplicationState] = mapped_column(str_enum(ApplicationState, 16))
    purpose: Mapped[str] = mapped_column(Text, comment="用途")
    legal_basis: Mapped[str] = mapped_column(Text, default="", comment="依据")
    fields: Mapped[list[str]] = mapped_column(JSON, default=list, comment="需要的信息项")
    row_filter: Mapped[list[list[str]]] = mapped_column(
        JSON, default=list, comment="行范围: [[parameter, value], …] as the data API's filters"
    )
    methods: Mapped[list[str]] = mapped_column(JSON, default=list, comment="共享方式")
    period_end: Mapped[date | None] = mapped_column(Date, comment="使用期限")
    expected_volume: Mapped[str] = mapped_column(String(200), default="", comment="预计调用量")
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow, comment="(UTC)")
    due_on: Mapped[date] = mapped_column(Date, comment="答复期限（10 个工作日）")
    decided_at: Mapped[datetime | None] = mapped_column(comment="(UTC)")
    decided_by: Mapped[int | None] = mapped_column(comment="user id")
    decision_reason: Mapped[str] = mapped_column(Text, default="", comment="答复理由")
    grant_id: Mapped[int | None] = mapped_column(comment="the grant it led to")
    rounds: Mapped[int] = mapped_column(default=1, comment="submissions so far")
    reminded: Mapped[list[int]] = mapped_column(
        JSON, default=list, comment="working days before the deadline already reminded at"
    )
    escalated_at: Mapped[datetime | None] = mapped_column(comment="overdue, sent to the operator")


class ShareGrant(Base):
    """What a consuming department may take: fields, rows, masking, methods, until when."""

    __tablename__ = "share_grants"
    __table_args__ = (
        Index("ix_share_grants_consumer", "consumer_department_id", "state"),
        {"comment": "共享授权"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_entries.id", ondelete="RESTRICT"), index=True, comment="目录条目"
    )
    provider_department_id: Mapped[int] = mapped_column(comment="提供部门")
    consumer_department_id: Mapped[int] = mapped_column(comment="使用部门")
    application_id: Mapped[int | None] = mapped_column(comment="申请（无条件共享为 NULL）")
    purpose: Mapped[str] = mapped_column(Text, comment="用途")
    fields: Mapped[list[str]] = mapped_column(JSON, default=list, comment="[] = every item")
    row_filter: Mapped[list[list[str]]] = mapped_column(JSON, default=list, comment="行范围")
    masking: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, default=list, comment="per-grant masking overrides [{item, method, params}]"
    )
    methods: Mapped[list[str]] = mapped_column(JSON, default=list, comment="共享方式")
    rate_limit: Mapped[int | None] = mapped_column(comment="requests per minute; NULL: none")
    expires_on: Mapped[date | None] = mapped_column(Date, comment="last day of use")
    state: Mapped[GrantState] = mapped_column(str_enum(GrantState, 16))
    state_reason: Mapped[str] = mapped_column(Text, default="", comment="why suspended/revoked")
    created_by: Mapped[int | None] = mapped_column(comment="user id")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, comment="(UTC)")


class Objection(Base):
    """疑义校核: a consuming department says specific records or fields are wrong, with evidence;
    the provider corrects them in a named later version, or rejects with a reason, in time."""

    __tablename__ = "share_objections"
    __table_args__ = (
        Index("ix_share_objections_provider_state", "provider_department_id", "state"),
        {"comment": "疑义数据校核"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_entries.id", ondelete="RESTRICT"), index=True, comment="目录条目"
    )
    grant_id: Mapped[int | None] = mapped_column(comment="the grant it was read under")
    provider_department_id: Mapped[int] = mapped_column(comment="提供部门")
    consumer_department_id: Mapped[int] = mapped_column(comment="提出部门")
    raised_by: Mapped[int | None] = mapped_column(comment="user id")
    version_number: Mapped[int] = mapped_column(comment="the version found wrong")
    records: Mapped[list[str]] = mapped_column(
        JSON, default=list, comment="key values of the records"
    )
    fields: Mapped[list[str]] = mapped_column(JSON, default=list, comment="the fields in doubt")
    description: Mapped[str] = mapped_column(Text, comment="what is wrong")
    evidence: Mapped[str] = mapped_column(Text, default="", comment="依据（如权威证照、现场核实）")
    state: Mapped[str] = mapped_column(String(16), comment="submitted | corrected | rejected")
    raised_at: Mapped[datetime] = mapped_column(default=utcnow, comment="(UTC)")
    due_on: Mapped[date] = mapped_column(Date, comment="答复期限（工作日）")
    answered_at: Mapped[datetime | None] = mapped_column(comment="(UTC)")
    answered_by: Mapped[int | None] = mapped_column(comment="user id")
    corrected_in: Mapped[int | None] = mapped_column(comment="the version number that corrects it")
    reason: Mapped[str] = mapped_column(Text, default="", comment="答复说明")


class Subscription(Base):
    """A grant's change feed delivered to the consumer: pushed to its endpoint (signed, retried
    with back-off) or written into a table of its own database. ``cursor`` is how far the consumer
    has acknowledged; a batch is sent again, under the same delivery id, until it is."""

    __tablename__ = "share_subscriptions"
    __table_args__ = (
        Index("ix_share_subscriptions_due", "state", "next_attempt_at"),
        {"comment": "数据订阅"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    grant_id: Mapped[int] = mapped_column(
        ForeignKey("share_grants.id", ondelete="RESTRICT"), index=True, comment="共享授权"
    )
    entry_id: Mapped[int] = mapped_column(comment="目录条目")
    consumer_department_id: Mapped[int] = mapped_column(comment="使用部门")
    mode: Mapped[SubscriptionMode] = mapped_column(str_enum(SubscriptionMode, 16))
    state: Mapped[SubscriptionState] = mapped_column(str_enum(SubscriptionState, 16))
    endpoint: Mapped[str] = mapped_column(String(500), default="", comment="推送地址")
    target_url: Mapped[str] = mapped_column(
        String(500), default="", comment="同步目标数据库地址（不含密码）"
    )
    target_table: Mapped[str] = mapped_column(String(128), default="", comment="同步目标表")
    secret: Mapped[str] = mapped_column(
        Text, default="", comment="SM4-sealed: the signing key (push) or database password (sync)"
    )
    cursor: Mapped[str] = mapped_column(String(64), comment="acknowledged up to (position.change)")
    batch_size: Mapped[int] = mapped_column(default=500, comment="changes per delivery")
    attempts: Mapped[int] = mapped_column(default=0, comment="failed attempts in a row")
    next_attempt_at: Mapped[datetime | None] = mapped_column(comment="(UTC)")
    lease_until: Mapped[datetime | None] = mapped_column(comment="a deliverer holds it until")
    last_error: Mapped[str] = mapped_column(Text, default="", comment="the last failure")
    last_delivered_at: Mapped[datetime | None] = mapped_column(comment="(UTC)")
    delivered: Mapped[int] = mapped_column(default=0, comment="changes acknowledged so far")
    created_by: Mapped[int | None] = mapped_column(comment="user id (deliveries act for them)")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, comment="(UTC)")
