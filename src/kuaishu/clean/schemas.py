"""Shapes of the masking-policy API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from kuaishu.schemas import Input, Output


class MaskRuleIn(Input):
    item: str = Field(min_length=1, max_length=200, description="信息项名称")
    channel: str = Field(description="渠道：share 共享、open 开放、sandbox 沙箱")
    method: str = Field(
        description="脱敏方法：mask、truncate、generalise、null、substitute、shuffle、noise、"
        "date_shift、hash、pseudonym、encrypt；none 表示原样显示（须慎重）"
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="方法参数，如 mask 的 first、last；generalise 的 to（year、month、range、"
        "round、district）",
    )


class MaskingPolicyIn(Input):
    rules: list[MaskRuleIn] = Field(max_length=2000, description="每个信息项、每个渠道一条")
    note: str = Field(default="", max_length=500, description="修改原因")
    quasi_identifiers: list[str] = Field(
        default_factory=list, max_length=50, description="准标识符（开放前按其计算 k 匿名）"
    )
    k: int | None = Field(default=None, ge=2, le=1000, description="k 阈值；不填用平台默认值")


class RulesIn(Input):
    rules: list[dict[str, Any]] = Field(
        max_length=500,
        description="清洗规则，每条 {kind, …}：normalise、null_tokens、map、regex、range、enum、"
        "identifier、reference、id_consistency、dedupe",
    )
    note: str = Field(default="", max_length=500, description="修改原因")


class VersionedRulesOut(Output):
    id: int
    entry_id: int
    number: int = Field(description="版本号（新版本生效，旧版本留存）")
    rules: list[dict[str, Any]]
    note: str
    created_by: int | None
    created_at: datetime


class MaskingPolicyOut(VersionedRulesOut):
    quasi_identifiers: list[str]
    k: int | None


class ChannelViewOut(Output):
    """What each data item shows in each channel under the policy in force."""

    policy_number: int | None
    channels: dict[str, dict[str, dict[str, Any] | None]] = Field(
        description="渠道 → 信息项 → 脱敏方法与参数（null 为原样显示）"
    )


class DecryptIn(Input):
    tokens: list[str] = Field(min_length=1, max_length=1000, description="加密脱敏后的值")
    purpose: str = Field(min_length=2, max_length=200, description="解密用途（记入审计）")


class DecryptOut(Output):
    values: list[str | None] = Field(description="与 tokens 一一对应；不是本平台密文的为 null")


class FindingOut(Output):
    column: str
    kind: str = Field(
        description="citizen_id、credit_code、mobile、email、bank_card、licence_plate、"
        "passport、person_name、address、coordinate"
    )
    share: float = Field(description="抽样非空值中符合的比例")
    evidence: str = Field(description="判定依据（表头、校验、邻列）")
    level: str = Field(description="建议的敏感级别")
    method: str | None = Field(description="建议的脱敏方法；null 为原样显示")
    params: dict[str, Any]


class ConfirmIn(Input):
    columns: list[str] = Field(min_length=1, max_length=500, description="确认的字段")
    note: str = Field(default="", max_length=500)
