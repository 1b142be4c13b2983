"""The masking-policy API: read an entry's policy (its history) and set a new version."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from kuaishu.clean import services
from kuaishu.clean.models import CleaningRuleSet, MaskingPolicy
from kuaishu.clean.schemas import (
    ChannelViewOut,
    ConfirmIn,
    DecryptIn,
    DecryptOut,
    FindingOut,
    MaskingPolicyIn,
    MaskingPolicyOut,
    RulesIn,
    VersionedRulesOut,
)
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
    return services.history(db, MaskingPolicy, actor=actor, entry=entry)


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
    return services.set_policy(
        db,
        actor=actor,
        entry=entry,
        rules=rules,
        note=body.note,
        quasi_identifiers=body.quasi_identifiers,
        k=body.k,
    )


@router.get(
    "/entries/{entry_id}/masking/channels",
    response_model=ChannelViewOut,
    summary="各渠道实际脱敏方式（含敏感信息项的默认置空）",
)
def channel_view(entry_id: int, db: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    entry = entry_for(db, entry_id, actor=actor)
    return services.channel_view(db, actor=actor, entry=entry)


@router.get(
    "/entries/{entry_id}/rules",
    response_model=list[VersionedRulesOut],
    summary="清洗规则（各版本，新→旧）",
)
def rules_history(entry_id: int, db: SessionDep, actor: CurrentActor) -> object:
    entry = entry_for(db, entry_id, actor=actor)
    return services.history(db, CleaningRuleSet, actor=actor, entry=entry)


@router.put(
    "/entries/{entry_id}/rules",
    response_model=VersionedRulesOut,
    summary="设置清洗规则（生成新版本，之后的每次加载都按它清洗；全部校验通过才保存）",
)
def set_rules(entry_id: int, body: RulesIn, db: SessionDep, actor: CurrentActor) -> object:
    entry = entry_for(db, entry_id, actor=actor)
    return services.set_rules(db, actor=actor, entry=entry, rules=body.rules, note=body.note)


@router.post(
    "/entries/{entry_id}/decrypt",
    response_model=DecryptOut,
    summary="解密 SM4 加密脱敏的值（仅本部门首席数据官，须说明用途，记入审计）",
)
def decrypt(entry_id: int, body: DecryptIn, db: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    entry = entry_for(db, entry_id, actor=actor)
    values = services.decrypt_values(
        db, actor=actor, entry=entry, tokens=body.tokens, purpose=body.purpose
    )
    return {"values": values}


@router.get(
    "/entries/{entry_id}/discovery",
    response_model=list[FindingOut],
    summary="敏感数据发现：扫描现行数据版本，建议敏感级别与脱敏方法",
)
def discovery(entry_id: int, db: SessionDep, actor: CurrentActor) -> list[dict[str, Any]]:
    entry = entry_for(db, entry_id, actor=actor)
    return [
        {
            "column": f.column,
            "kind": str(f.kind),
            "share": f.share,
            "evidence": f.evidence,
            "level": f.level,
            "method": str(f.method) if f.method is not None else None,
            "params": f.params,
        }
        for f in services.discover_sensitive(db, actor=actor, entry=entry)
    ]


@router.post(
    "/entries/{entry_id}/discovery/confirm",
    response_model=MaskingPolicyOut,
    summary="确认发现结果：按建议生成新版脱敏策略（各渠道）",
)
def confirm(entry_id: int, body: ConfirmIn, db: SessionDep, actor: CurrentActor) -> object:
    entry = entry_for(db, entry_id, actor=actor)
    return services.confirm_findings(
        db, actor=actor, entry=entry, columns=body.columns, note=body.note
    )
