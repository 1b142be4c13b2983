"""Masking policies (脱敏策略): immutable, numbered versions per catalog entry; the newest is in
force, and every dataset read records which number masked it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kuaishu.db import Base, utcnow


class MaskingPolicy(Base):
    """One version of an entry's masking rules: per data item and per channel."""

    __tablename__ = "masking_policies"
    __table_args__ = (
        UniqueConstraint("entry_id", "number"),
        {"comment": "脱敏策略 — a new row per change, never edited"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_entries.id", ondelete="RESTRICT"), index=True, comment="目录条目"
    )
    number: Mapped[int] = mapped_column(comment="1, 2, … within the entry")
    rules: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, default=list, comment="[{item, channel, method, params}]"
    )
    note: Mapped[str] = mapped_column(String(500), default="", comment="why it changed")
    created_by: Mapped[int | None] = mapped_column(comment="user id")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, comment="(UTC)")
