"""Shapes of the masking-policy API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from kuaishu.clean.identifiers import IdentifierKind
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


# Parameters of masking methods and cleaning rules ------------------------------------------------
#
# Every value here reaches DuckDB SQL, so each is typed and bounded: a closed set (Literal), a
# bounded number, a short text that is only ever quoted by ``clean.sqltext.literal``, or a name
# checked against the entry's data items and quoted as an identifier. Anything else is refused
# whole; nothing of an unchecked value is ever pasted into SQL.

NAME = 200  # the longest data-item name a rule may name
# Marks a parameter that names one of the entry's data items: checked against them, then quoted.
ITEM_NAME: dict[str, Any] = {"names": "item"}
BIGINT = 2**63 - 1


class Parameters(BaseModel):
    """Strict: unknown parameters, a number given as text or a flag given as a number are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


# Masking methods (see clean.masking) ----------------------------------------------------------


class MaskParams(Parameters):
    first: int = Field(default=0, ge=0, le=1000, description="保留前几位")
    last: int = Field(default=0, ge=0, le=1000, description="保留后几位")
    char: str = Field(default="*", min_length=1, max_length=1, description="遮盖字符")
    keep_from: str | None = Field(
        default=None, min_length=1, max_length=20, description="从此标记起原样保留（如 @）"
    )


class TruncateParams(Parameters):
    keep: int = Field(ge=1, le=10_000, description="保留前几位")


class GeneraliseParams(Parameters):
    to: Literal["year", "month", "range", "round", "district"] = Field(description="泛化到")
    width: float | None = Field(default=None, gt=0, le=1e15, description="range 的区间宽度")
    digits: int = Field(default=0, ge=0, le=15, description="round 保留的小数位")

    @model_validator(mode="after")
    def _range_has_width(self) -> GeneraliseParams:
        if self.to == "range" and self.width is None:
            raise PydanticCustomError("missing", "{name}", {"name": "width"})
        return self


class NoParams(Parameters):
    """Methods without parameters (置空, and the keyed hash, pseudonym and encryption)."""


class SubstituteParams(Parameters):
    value: str = Field(max_length=200, description="替换成的常量")


class RowKeyed(Parameters):
    """Methods whose output is stable per row: keyed by the row's position or by a data item."""

    row_key: str = Field(
        default="rowid",
        min_length=1,
        max_length=NAME,
        description="rowid 或本资源的信息项",
        json_schema_extra=ITEM_NAME,
    )
    seed: int | str | None = Field(default=None, description="种子；不填由主密钥派生")

    @field_validator("seed")
    @classmethod
    def _seed_bounded(cls, seed: int | str | None) -> int | str | None:
        if isinstance(seed, int) and not -BIGINT <= seed <= BIGINT:
            raise PydanticCustomError("less_than_equal", "{name}", {"name": "seed"})
        if isinstance(seed, str) and not 1 <= len(seed) <= 200:
            raise PydanticCustomError("string_too_long", "{name}", {"name": "seed"})
        return seed


class ShuffleParams(RowKeyed):
    pass


class NoiseParams(RowKeyed):
    percent: float = Field(gt=0, le=1000, description="噪声幅度（百分比）")


class DateShiftParams(RowKeyed):
    days: int = Field(ge=1, le=36_500, description="最多偏移的天数")


# Cleaning rules (see clean.rules) ---------------------------------------------------------------

ItemName = Annotated[str, Field(min_length=1, max_length=NAME, json_schema_extra=ITEM_NAME)]
Token = Annotated[str, Field(max_length=1000)]


class RuleParams(Parameters):
    kind: str


class NormaliseRule(RuleParams):
    kind: Literal["normalise"]
    item: ItemName


class NullTokensRule(RuleParams):
    kind: Literal["null_tokens"]
    item: ItemName
    tokens: list[Token] = Field(min_length=1, max_length=1000)


class MapRule(RuleParams):
    kind: Literal["map"]
    item: ItemName
    values: dict[Token, Token] = Field(min_length=1, max_length=100_000)


class RegexRule(RuleParams):
    kind: Literal["regex"]
    item: ItemName
    pattern: str = Field(min_length=1, max_length=2000)


class RangeRule(RuleParams):
    kind: Literal["range"]
    item: ItemName
    min: float | None = Field(default=None, ge=-1e300, le=1e300)
    max: float | None = Field(default=None, ge=-1e300, le=1e300)


class EnumRule(RuleParams):
    kind: Literal["enum"]
    item: ItemName
    values: list[Token] = Field(min_length=1, max_length=100_000)


class IdentifierRule(RuleParams):
    kind: Literal["identifier"]
    item: ItemName
    identifier: IdentifierKind = Field(strict=False)


class ReferenceRule(RuleParams):
    kind: Literal["reference"]
    item: ItemName
    entry: str = Field(min_length=1, max_length=100)
    column: ItemName


class IdConsistencyRule(RuleParams):
    kind: Literal["id_consistency"]
    id_item: ItemName
    birth_item: ItemName | None = None
    sex_item: ItemName | None = None


class DedupeRule(RuleParams):
    kind: Literal["dedupe"]
    by: list[ItemName] = Field(default_factory=list, max_length=100)
    keep: Literal["first", "last"] = "first"


RULE_PARAMS: dict[str, type[RuleParams]] = {
    "normalise": NormaliseRule,
    "null_tokens": NullTokensRule,
    "map": MapRule,
    "regex": RegexRule,
    "range": RangeRule,
    "enum": EnumRule,
    "identifier": IdentifierRule,
    "reference": ReferenceRule,
    "id_consistency": IdConsistencyRule,
    "dedupe": DedupeRule,
}
