"""Catalog tables: entries, their revisions, data items, review comments, data elements."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kuaishu.accounts.models import Department
from kuaishu.catalog.enums import (
    EntryStatus,
    ItemType,
    OpenType,
    ResourceClass,
    ResourceFormat,
    RevisionState,
    ShareType,
    UpdateCycle,
)
from kuaishu.db import Base, str_enum, utcnow


class CatalogEntry(Base):
    """A resource (信息资源): its code, owner, and the columns search and facets read.

    The searchable columns are a copy of the revision in force, refreshed when one is published.
    """

    __tablename__ = "catalog_entries"
    __table_args__ = (
        Index("ix_catalog_entries_status_domain", "status", "domain"),
        {"comment": "目录条目 — one row per resource; revisions hold the metadata"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True, comment="信息资源代码, never reused")
    department_id: Mapped[int] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT"), index=True, comment="提供方"
    )
    status: Mapped[EntryStatus] = mapped_column(
        str_enum(EntryStatus, 16), default=EntryStatus.UNPUBLISHED, comment="public status"
    )
    published_revision_id: Mapped[int | None] = mapped_column(comment="revision in force")
    working_revision_id: Mapped[int | None] = mapped_column(comment="revision being edited")
    # Copied from the revision in force, for search, facets and the public lists.
    name: Mapped[str] = mapped_column(String(200), comment="信息资源名称 (in force)")
    summary: Mapped[str] = mapped_column(Text, default="", comment="信息资源摘要 (in force)")
    resource_class: Mapped[ResourceClass | None] = mapped_column(str_enum(ResourceClass, 1))
    domain: Mapped[str | None] = mapped_column(String(20), comment="领域 (21 pilot domains)")
    share_type: Mapped[ShareType | None] = mapped_column(str_enum(ShareType, 16))
    open_type: Mapped[OpenType | None] = mapped_column(str_enum(OpenType, 16))
    resource_format: Mapped[ResourceFormat | None] = mapped_column(str_enum(ResourceFormat, 20))
    update_cycle: Mapped[UpdateCycle | None] = mapped_column(str_enum(UpdateCycle, 16))
    keywords_text: Mapped[str] = mapped_column(Text, default="", comment="keywords, joined")
    published_at: Mapped[datetime | None] = mapped_column(comment="first published (UTC)")
    updated_at: Mapped[datetime | None] = mapped_column(comment="revision in force published")
    withdrawn_at: Mapped[datetime | None] = mapped_column(comment="withdrawn (UTC)")
    withdrawn_reason: Mapped[str | None] = mapped_column(Text, comment="public reason")
    review_due: Mapped[date | None] = mapped_column(Date, comment="yearly review deadline")
    update_due: Mapped[date | None] = mapped_column(Date, comment="2-working-day update deadline")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, comment="created (UTC)")

    department: Mapped[Department] = relationship(lazy="joined")


class CatalogRevision(Base):
    """One version of an entry's metadata, reviewed item by item before it is published."""

    __tablename__ = "catalog_revisions"
    __table_args__ = (
        UniqueConstraint("entry_id", "number"),
        Index("ix_catalog_revisions_state", "state"),
        {"comment": "目录修订 — the metadata of an entry, one row per revision"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_entries.id", ondelete="CASCADE"), index=True, comment="entry"
    )
    number: Mapped[int] = mapped_column(comment="1, 2, … within the entry")
    state: Mapped[RevisionState] = mapped_column(str_enum(RevisionState, 16), comment="lifecycle")
    name: Mapped[str] = mapped_column(String(200), comment="信息资源名称")
    summary: Mapped[str] = mapped_column(Text, default="", comment="信息资源摘要")
    resource_class: Mapped[ResourceClass] = mapped_column(str_enum(ResourceClass, 1), comment="类")
    subject_code: Mapped[str] = mapped_column(String(2), default="", comment="项 (2 digits)")
    category_code: Mapped[str] = mapped_column(String(3), default="", comment="目 (3 digits)")
    subcategory_code: Mapped[str] = mapped_column(String(10), default="", comment="细目")
    resource_format: Mapped[ResourceFormat | None] = mapped_column(
        str_enum(ResourceFormat, 20), comment="信息资源格式"
    )
    share_type: Mapped[ShareType | None] = mapped_column(
        str_enum(ShareType, 16), comment="共享类型"
    )
    share_conditions: Mapped[str] = mapped_column(Text, default="", comment="共享条件")
    share_methods: Mapped[list[str]] = mapped_column(JSON, default=list, comment="共享方式")
    share_basis: Mapped[str] = mapped_column(Text, default="", comment="不予/有条件共享依据")
    open_type: Mapped[OpenType | None] = mapped_column(str_enum(OpenType, 16), comment="开放类型")
    open_conditions: Mapped[str] = mapped_column(Text, default="", comment="开放条件")
    open_basis: Mapped[str] = mapped_column(Text, default="", comment="不予/依申请开放依据")
    update_cycle: Mapped[UpdateCycle | None] = mapped_column(
        str_enum(UpdateCycle, 16), comment="更新周期"
    )
    domain: Mapped[str | None] = mapped_column(String(20), comment="领域")
    security_level: Mapped[str] = mapped_column(String(40), default="", comment="安全级别")
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list, comment="关键字")
    contact: Mapped[str] = mapped_column(String(200), default="", comment="联系方式")
    related_codes: Mapped[list[str]] = mapped_column(JSON, default=list, comment="关联资源代码")
    licence: Mapped[str] = mapped_column(String(100), default="", comment="开放许可协议")
    source_systems: Mapped[list[str]] = mapped_column(JSON, default=list, comment="来源系统")
    flags: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, default=list, comment="一数一源 flags"
    )
    flag_decision: Mapped[str] = mapped_column(Text, default="", comment="reviewer's decision")
    created_by: Mapped[int | None] = mapped_column(comment="author user id")
    submitted_by: Mapped[int | None] = mapped_column(comment="submitter user id")
    submitted_at: Mapped[datetime | None] = mapped_column(comment="(UTC)")
    reviewed_by: Mapped[int | None] = mapped_column(comment="reviewer user id")
    reviewed_at: Mapped[datetime | None] = mapped_column(comment="(UTC)")
    published_at: Mapped[datetime | None] = mapped_column(comment="(UTC)")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, comment="(UTC)")

    items: Mapped[list[DataItem]] = relationship(
        back_populates="revision",
        cascade="all, delete-orphan",
        order_by="DataItem.position",
        lazy="selectin",
    )
    comments: Mapped[list[ReviewComment]] = relationship(
        cascade="all, delete-orphan", order_by="ReviewComment.id", lazy="selectin"
    )


class DataItem(Base):
    """信息项: one field of the resource."""

    __tablename__ = "catalog_data_items"
    __table_args__ = {"comment": "信息项"}

    id: Mapped[int] = mapped_column(primary_key=True)
    revision_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_revisions.id", ondelete="CASCADE"), index=True, comment="revision"
    )
    position: Mapped[int] = mapped_column(comment="order within the revision, from 1")
    name: Mapped[str] = mapped_column(String(100), comment="信息项名称")
    type_code: Mapped[ItemType] = mapped_column(str_enum(ItemType, 1), comment="数据类型")
    length: Mapped[int | None] = mapped_column(comment="数据长度")
    description: Mapped[str] = mapped_column(Text, default="", comment="描述")
    is_key: Mapped[bool] = mapped_column(default=False, comment="主键/查询键")
    sensitivity: Mapped[str] = mapped_column(String(40), default="", comment="敏感级别")
    element_id: Mapped[int | None] = mapped_column(
        ForeignKey("data_elements.id", ondelete="SET NULL"), comment="数据元"
    )

    revision: Mapped[CatalogRevision] = relationship(back_populates="items")


class ReviewComment(Base):
    """A reviewer's remark on one field or one data item (逐条审核)."""

    __tablename__ = "catalog_review_comments"
    __table_args__ = {"comment": "审核意见"}

    id: Mapped[int] = mapped_column(primary_key=True)
    revision_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_revisions.id", ondelete="CASCADE"), index=True, comment="revision"
    )
    field: Mapped[str] = mapped_column(String(80), comment="field name, or items[N].field")
    comment: Mapped[str] = mapped_column(Text, comment="remark")
    reviewer_id: Mapped[int | None] = mapped_column(comment="reviewer user id")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, comment="(UTC)")


class DataElement(Base):
    """A data element (数据元) and the one department that is its source (一数一源)."""

    __tablename__ = "data_elements"
    __table_args__ = {"comment": "数据元与权威来源部门"}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, comment="standard name")
    variants: Mapped[list[str]] = mapped_column(JSON, default=list, comment="usual other names")
    authority_department_id: Mapped[int] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT"), comment="权威来源部门"
    )
    description: Mapped[str] = mapped_column(Text, default="", comment="definition")

    authority: Mapped[Department] = relationship(lazy="joined")


class CatalogSequence(Base):
    """The last sequence number given in a department: codes are never reused."""

    __tablename__ = "catalog_sequences"
    __table_args__ = {"comment": "资源代码顺序号"}

    department_id: Mapped[int] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT"), primary_key=True
    )
    last: Mapped[int] = mapped_column(default=0, comment="last number given")


class SearchTerm(Base):
    """A character n-gram (or ASCII word) of a published entry's text, with the weight of the field
    it came from — portable Chinese search on both backends."""

    __tablename__ = "catalog_search_terms"
    __table_args__ = (
        # Covering: a term's posting list and weights are read from the index alone.
        Index("ix_catalog_search_terms_term_entry_weight", "term", "entry_id", "weight"),
        {"comment": "n-gram index of published entries"},
    )

    entry_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_entries.id", ondelete="CASCADE"), primary_key=True
    )
    term: Mapped[str] = mapped_column(String(16), primary_key=True)
    weight: Mapped[int] = mapped_column(default=1, comment="4 title, 2 description, 1 the rest")
