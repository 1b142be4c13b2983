"""The masking-policy API: read an entry's policy (its history) and set a new version."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from kuaishu.clean import services
from kuaishu.clean.schemas import ChannelViewOut, MaskingPolicyIn, MaskingPolicyOut
from kuaishu.collect.services import entry_for
from kuaishu.web.deps import CurrentActor, SessionDep

router = APIRouter(prefix="/api/v1/clean", tags=["clean"])


@router.get(
    "/entries/{entry_id}/masking",
    response_model=list[MaskingPolicyOut],
    summary="脱敏策略（各版本，新→旧）",
)
def masking_history(entry_id: int, db: SessionDep, actor: CurrentActor) -> object:
    entry = entry_for(db, entry_id, actor=actor)
    return services.policy_history(db, actor=actor, entry=entry)


@router.put(
    "/entries/{entry_id}/masking",
    response_model=MaskingPolicyOut,
    summary="设置脱敏策略（生成新版本；规则全部校验通过才保存）",
)
def set_masking(
    entry_id: int, body: MaskingPolicyIn, db: SessionDep, actor: CurrentActor
) -> object:
    entry = entry_for(db, entry_id, actor=actor)
    rules = [rule.model_dump() for rule in body.rules]
    return services.set_policy(db, actor=actor, entry=entry, rules=rules, note=body.note)


@router.get(
    "/entries/{entry_id}/masking/channels",
    response_model=ChannelViewOut,
    summary="各渠道实际脱敏方式（含敏感信息项的默认置空）",
)
def channel_view(entry_id: int, db: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    entry = entry_for(db, entry_id, actor=actor)
    return services.channel_view(db, actor=actor, entry=entry)
