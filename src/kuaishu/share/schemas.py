"""Shapes of the sharing exchange's API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import Field

from kuaishu.schemas import Input, Output
from kuaishu.share.enums import (
    AccessMethod,
    ApplicationState,
    GrantState,
    SubscriptionMode,
    SubscriptionState,
)
from kuaishu.store.schemas import DictionaryField


class ApplyIn(Input):
    purpose: str = Field(min_length=2, max_length=500, description="使用目的")
    legal_basis: str = Field(default="", max_length=2000, description="申请依据（有条件共享必填）")
    fields: list[str] = Field(default_factory=list, description="需要的信息项；空为全部")
    row_filter: list[list[str]] = Field(
        default_factory=list,
        description='行范围，写法同数据接口的筛选：[["区划代码__in", "520102,520103"]]',
    )
    methods: list[AccessMethod] = Field(
        default_factory=lambda: [AccessMethod.QUERY], description="lookup、download、query"
    )
    period_end: date | None = Field(default=None, description="使用期限（最后一天）")
    expected_volume: str = Field(default="", max_length=200, description="预计调用量")


class ApproveIn(Input):
    fields: list[str] | None = Field(default=None, description="授予的信息项；不填同申请")
    row_filter: list[list[str]] | None = Field(default=None, description="授予的行范围")
    masking: list[dict[str, Any]] = Field(
        default_factory=list, description="本授权的脱敏覆盖：[{item, method, params}]"
    )
    methods: list[AccessMethod] | None = Field(default=None, description="授予的共享方式")
    expires_on: date | None = Field(default=None, description="有效期（最后一天）")
    rate_limit: int | None = Field(default=None, ge=1, le=100_000, description="每分钟调用上限")
    reason: str = Field(default="", max_length=2000, description="答复说明")


class ReasonIn(Input):
    reason: str = Field(min_length=1, max_length=2000, description="理由（记入审计并通知对方）")


class RenewIn(Input):
    expires_on: date = Field(description="新的有效期（最后一天）")
    reason: str = Field(default="", max_length=2000)


class ApplicationOut(Output):
    id: int
    entry_id: int
    provider_department_id: int
    consumer_department_id: int
    state: ApplicationState
    purpose: str
    legal_basis: str
    fields: list[str]
    row_filter: list[list[str]]
    methods: list[str]
    period_end: date | None
    expected_volume: str
    submitted_at: datetime
    due_on: date = Field(description="答复期限：提交后第 10 个工作日（含调休）")
    overdue: bool = Field(default=False, description="已过答复期限仍未答复")
    decided_at: datetime | None
    decision_reason: str
    grant_id: int | None
    rounds: int


class GrantOut(Output):
    id: int
    entry_id: int
    provider_department_id: int
    consumer_department_id: int
    application_id: int | None
    purpose: str
    fields: list[str]
    row_filter: list[list[str]]
    masking: list[dict[str, Any]]
    methods: list[str]
    rate_limit: int | None
    expires_on: date | None
    state: GrantState = Field(description="有效、暂停、已撤销，或过了有效期的已过期")
    state_reason: str
    created_at: datetime


class ApplyOut(Output):
    kind: str = Field(description="grant：无条件共享，已授权；application：有条件共享，待答复")
    grant: GrantOut | None = None
    application: ApplicationOut | None = None


class ObjectionIn(Input):
    records: list[str] = Field(min_length=1, max_length=1000, description="有疑义记录的关键字段值")
    fields: list[str] = Field(default_factory=list, description="有疑义的字段")
    description: str = Field(min_length=2, max_length=4000, description="问题说明")
    evidence: str = Field(default="", max_length=4000, description="依据")


class AnswerIn(Input):
    corrected_in: int | None = Field(default=None, ge=1, description="更正所在的版本号；不填为驳回")
    reason: str = Field(default="", max_length=2000, description="说明（驳回时必填）")


class ObjectionOut(Output):
    id: int
    entry_id: int
    grant_id: int | None
    provider_department_id: int
    consumer_department_id: int
    version_number: int
    records: list[str]
    fields: list[str]
    description: str
    evidence: str
    state: str = Field(description="submitted 待答复；corrected 已更正；rejected 已驳回")
    raised_at: datetime
    due_on: date
    answered_at: datetime | None
    corrected_in: int | None
    reason: str


class SubscribeIn(Input):
    mode: SubscriptionMode = Field(description="push：推送到接收地址；sync：同步到数据库表")
    endpoint: str = Field(default="", max_length=500, description="推送地址（push）")
    target_url: str = Field(
        default="",
        max_length=500,
        description="目标数据库地址，不含密码（sync），如 postgresql+psycopg://user@host/db",
    )
    target_table: str = Field(default="", max_length=63, description="目标表（sync）")
    password: str = Field(default="", max_length=500, description="目标数据库密码（加密保存）")
    since_version: int | None = Field(
        default=None, ge=1, description="从该版本之后的变更开始；不填则从头（全部行作为新增）"
    )
    batch_size: int = Field(default=500, ge=1, le=5000, description="每批变更条数")


class SubscriptionOut(Output):
    id: int
    grant_id: int
    entry_id: int
    consumer_department_id: int
    mode: SubscriptionMode
    state: SubscriptionState
    endpoint: str
    target_url: str
    target_table: str
    cursor: str
    batch_size: int
    attempts: int
    next_attempt_at: datetime | None
    last_error: str
    last_delivered_at: datetime | None
    delivered: int
    created_at: datetime


class SubscribedOut(Output):
    subscription: SubscriptionOut
    secret: str | None = Field(default=None, description="推送签名密钥（HMAC-SM3），只显示这一次")


class ListingOut(Output):
    """An entry of the share catalog: what a department needs to decide whether to ask."""

    id: int
    code: str
    name: str
    provider_department_id: int
    provider: str = Field(description="提供部门")
    contact: str = Field(description="联系方式")
    share_type: str | None = Field(description="unconditional / conditional / not_shared")
    share_conditions: str = Field(description="共享条件")
    share_methods: list[str] = Field(description="共享方式（目录所载）")
    share_basis: str = Field(description="不予共享或有条件共享的依据")
    update_cycle: str | None = Field(description="更新周期")
    quality_score: float | None = Field(description="现行数据版本的质量得分；无数据时为空")


class GrantVersionOut(Output):
    number: int
    published_at: datetime | None


class GrantDictionaryOut(Output):
    """The data dictionary as a grant covers it: the granted fields only, and of the version its
    number — not its row count, size or checksum, which describe rows the grant may not cover."""

    code: str
    name: str
    version: GrantVersionOut
    fields: list[DictionaryField]
