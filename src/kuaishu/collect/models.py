"""Sources of an entry's data and the loads (jobs) that read them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kuaishu.collect.enums import RunStatus, SourceKind
from kuaishu.db import Base, str_enum, utcnow

BIG = BigInteger().with_variant(Integer, "sqlite")


class Source(Base):
    """Where an entry's data comes from, how it maps onto the data items, and when to load it."""

    __tablename__ = "collect_sources"
    __table_args__ = {"comment": "采集来源"}

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_entries.id", ondelete="RESTRICT"), index=True, comment="目录条目"
    )
    name: Mapped[str] = mapped_column(String(200), comment="来源名称")
    kind: Mapped[SourceKind] = mapped_column(str_enum(SourceKind, 16), comment="来源类型")
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, comment="kind's settings")
    secret: Mapped[str | None] = mapped_column(Text, comment="SM4-GCM sealed credentials")
    mapping: Mapped[dict[str, str]] = mapped_column(
        JSON, default=dict, comment="data item name → source column"
    )
    schedule: Mapped[str | None] = mapped_column(
        String(100), comment="cron expression (China time)"
    )
    next_run_at: Mapped[datetime | None] = mapped_column(comment="next scheduled load (UTC)")
    cursor: Mapped[str | None] = mapped_column(Text, comment="incremental: last value taken")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(comment="user id")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, comment="(UTC)")


class LoadRun(Base):
    """One load: a job with status, progress, log, and the counts that must reconcile."""

    __tablename__ = "collect_runs"
    __table_args__ = (
        Index("ix_collect_runs_entry_created", "entry_id", "created_at"),
        Index("ix_collect_runs_status", "status"),
        {"comment": "采集任务（作业）"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_entries.id", ondelete="RESTRICT"), comment="目录条目"
    )
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("collect_sources.id", ondelete="SET NULL"), comment="来源"
    )
    status: Mapped[RunStatus] = mapped_column(str_enum(RunStatus, 16), default=RunStatus.QUEUED)
    trigger: Mapped[str] = mapped_column(
        String(20), default="manual", comment="manual|schedule|push"
    )
    mode: Mapped[str] = mapped_column(
        String(16), default="replace", comment="replace: a whole new version; append: added to it"
    )
    input_name: Mapped[str | None] = mapped_column(String(400), comment="file name as given")
    input_path: Mapped[str | None] = mapped_column(String(400), comment="staged input file")
    rows_read: Mapped[int] = mapped_column(BIG, default=0, comment="rows in")
    rows_loaded: Mapped[int] = mapped_column(BIG, default=0, comment="rows kept")
    rows_quarantined: Mapped[int] = mapped_column(BIG, default=0, comment="rows set aside")
    rows_duplicate: Mapped[int] = mapped_column(BIG, default=0, comment="duplicates removed")
    rows_total: Mapped[int | None] = mapped_column(BIG, comment="expected rows, when known")
    percent: Mapped[int] = mapped_column(default=0, comment="progress 0–100")
    phase: Mapped[str] = mapped_column(String(40), default="", comment="what it is doing now")
    log: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, comment="log lines")
    error_code: Mapped[str | None] = mapped_column(String(60))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker: Mapped[str | None] = mapped_column(String(120), comment="host:pid running it")
    heartbeat_at: Mapped[datetime | None] = mapped_column(comment="last sign of life (UTC)")
    version_id: Mapped[int | None] = mapped_column(comment="the version it made")
    requested_by: Mapped[int | None] = mapped_column(comment="user id")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, comment="(UTC)")
    started_at: Mapped[datetime | None] = mapped_column(comment="(UTC)")
    finished_at: Mapped[datetime | None] = mapped_column(comment="(UTC)")
