"""Request and response bodies of the catalog API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import Field

from kuaishu.catalog.enums import (
    EntryStatus,
    ItemType,
    OpenType,
    ResourceClass,
    ResourceFormat,
    RevisionState,
    ShareMethod,
    ShareType,
    UpdateCycle,
)
from kuaishu.schemas import Input, Output


class DataItemIn(Input):
    name: str = Field(min_length=1, max_length=100, description="信息项名称")
    type_code: ItemType = Field(description="数据类型代码 C N Y D T L M G B I F")
    length: int | None = Field(default=None, ge=1, le=100_000)
    description: str = Field(default="", max_length=2000)
    is_key: bool = False
    sensitivity: str = Field(default="", max_length=40)


class RevisionIn(Input):
    """The metadata of an entry (STANDARDS.md §1); completeness is checked at submission."""

    name: str = Field(min_length=1, max_length=200, description="信息资源名称")
    summary: str = Field(default="", max_length=4000, description="信息资源摘要")
    resource_class: ResourceClass = Field(description="类：1 基础 / 2 主题 / 3 部门")
    subject_code: str = Field(default="", pattern=r"^([0-9]{2})?$", description="项")
    category_code: str = Field(default="", pattern=r"^([0-9]{3})?$", description="目")
    subcategory_code: str = Field(default="", pattern=r"^[0-9]{0,10}$", description="细目")
    resource_format: ResourceFormat | None = None
    share_type: ShareType | None = None
    share_conditions: str = Field(default="", max_length=2000)
    share_methods: list[ShareMethod] = Field(default_factory=list)
    share_basis: str = Field(default="", max_length=2000, description="法律法规或政策依据")
    open_type: OpenType | None = None
    open_conditions: str = Field(default="", max_length=2000)
    open_basis: str = Field(default="", max_length=2000)
    update_cycle: UpdateCycle | None = None
    domain: str | None = Field(default=None, max_length=20)
    security_level: str = Field(default="", max_length=40)
    keywords: list[str] = Field(default_factory=list, max_length=30)
    contact: str = Field(default="", max_length=200)
    related_codes: list[str] = Field(default_factory=list, max_length=50)
    licence: str = Field(default="", max_length=100)
    source_systems: list[str] = Field(default_factory=list, max_length=20)
    items: list[DataItemIn] = Field(default_factory=list, max_length=2000)


class EntryCreateIn(RevisionIn):
    department_id: int | None = Field(default=None, description="默认：本人所在部门")


class FieldComment(Input):
    field: str = Field(min_length=1, max_length=80, description="字段名或 items[N].字段名")
    comment: str = Field(min_length=1, max_length=2000)


class ReturnIn(Input):
    comments: list[FieldComment] = Field(min_length=1, max_length=200)


class ApproveIn(Input):
    flag_decision: str = Field(default="", max_length=2000, description="对一数一源提示的处理意见")


class WithdrawIn(Input):
    reason: str = Field(min_length=1, max_length=2000, description="撤销原因（公开）")


class DataItemOut(Output):
    position: int
    name: str
    type_code: ItemType
    length: int | None
    description: str
    is_key: bool
    sensitivity: str


class CommentOut(Output):
    field: str
    comment: str
    reviewer_id: int | None
    created_at: datetime


class RevisionOut(Output):
    id: int
    entry_id: int
    number: int
    state: RevisionState
    name: str
    summary: str
    resource_class: ResourceClass
    subject_code: str
    category_code: str
    subcategory_code: str
    resource_format: ResourceFormat | None
    share_type: ShareType | None
    share_conditions: str
    share_methods: list[str]
    share_basis: str
    open_type: OpenType | None
    open_conditions: str
    open_basis: str
    update_cycle: UpdateCycle | None
    domain: str | None
    security_level: str
    keywords: list[str]
    contact: str
    related_codes: list[str]
    licence: str
    source_systems: list[str]
    flags: list[dict[str, Any]]
    flag_decision: str
    submitted_at: datetime | None
    reviewed_at: datetime | None
    published_at: datetime | None
    items: list[DataItemOut]
    comments: list[CommentOut]


class EntryOut(Output):
    id: int
    code: str
    department_id: int
    status: EntryStatus
    name: str
    summary: str
    resource_class: ResourceClass | None
    domain: str | None
    share_type: ShareType | None
    open_type: OpenType | None
    resource_format: ResourceFormat | None
    update_cycle: UpdateCycle | None
    published_revision_id: int | None
    working_revision_id: int | None
    published_at: datetime | None
    updated_at: datetime | None
    withdrawn_reason: str | None
    review_due: date | None
    update_due: date | None


class DiffRow(Output):
    field: str
    before: Any
    after: Any


class NegativeListRow(Output):
    code: str
    name: str
    department: str
    open_type: OpenType
    basis: str
    conditions: str


class FacetValue(Output):
    value: str
    label: str
    count: int


class SearchOut(Output):
    items: list[EntryOut]
    page: int
    page_size: int
    total: int
    pages: int
    facets: dict[str, list[FacetValue]]
