"""Cleaning rule sets (清洗规则) and masking policies (脱敏策略): immutable, numbered versions per
catalog entry; the newest is in force, and each version of data records which numbers made it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kuaishu.db import Base, utcnow


class EntryRules:
    """What both share: a version number within the entry, the rules, who and why."""

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(comment="1, 2, … within the entry")
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, comment="the rules")
    note: Mapped[str] = mapped_column(String(500), default="", comment="why it changed")
    created_by: Mapped[int | None] = mapped_column(comment="user id")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, comment="(UTC)")
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_entries.id", ondelete="RESTRICT"), index=True, comment="目录条目"
    )


class CleaningRuleSet(EntryRules, Base):
    """One version of an entry's cleaning rules, applied in every load after it."""

    __tablename__ = "cleaning_rule_sets"
    __table_args__ = (
        UniqueConstraint("entry_id", "number"),
        {"comment": "清洗规则 — a new row per change, never edited"},
    )


class MaskingPolicy(EntryRules, Base):
    """One version of an entry's masking rules (per data item and channel), with the
    quasi-identifiers whose k-anonymity is checked before data is opened."""

    __tablename__ = "masking_policies"
    __table_args__ = (
        UniqueConstraint("entry_id", "number"),
        {"comment": "脱敏策略 — a new row per change, never edited"},
    )

    quasi_identifiers: Mapped[list[str]] = mapped_column(
        JSON, default=list, comment="准标识符 (k-anonymity)"
    )
    k: Mapped[int | None] = mapped_column(comment="k threshold; NULL: the platform's default")
