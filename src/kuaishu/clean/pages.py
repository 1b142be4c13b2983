"""Console pages of cleaning and masking: an entry's cleaning rules, its masking per data item and
channel with the quasi-identifiers of the release check, and each version's quality report and
lineage as a timeline. The pages call the same services as the API."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from kuaishu.accounts.actor import Actor
from kuaishu.authz import Denied, check
from kuaishu.clean import services
from kuaishu.clean.masking import METHOD_LABELS, MaskMethod
from kuaishu.clean.models import CleaningRuleSet, MaskingPolicy
from kuaishu.clean.rules import KINDS
from kuaishu.collect.services import entry_for, entry_items, versions_for
from kuaishu.errors import AppError, ValidationFailed
from kuaishu.settings import get_settings
from kuaishu.web.deps import CurrentActor, SessionDep
from kuaishu.web.forms import redirect
from kuaishu.web.templating import render

router = APIRouter(prefix="/clean", include_in_schema=False)

RULE_KIND_LABELS = {
    "normalise": "全角转半角、合并空白",
    "null_tokens": "视为空值的占位符",
    "map": "值映射",
    "regex": "正则格式",
    "range": "数值范围",
    "enum": "取值范围（枚举）",
    "identifier": "标识校验（身份证号、信用代码等）",
    "reference": "引用另一资源（如区划代码须存在）",
    "id_consistency": "多元校核（身份证号与出生日期、性别）",
    "dedupe": "去重（说明保留哪一行）",
}
SHOW = services.SHOW


async def read_form(request: Request) -> FormData:
    return await request.form()


FormDep = Annotated[FormData, Depends(read_form)]


def _page(
    request: Request,
    db: SessionDep,
    actor: Actor,
    entry_id: int,
    *,
    error: AppError | None = None,
    rules_text: str | None = None,
) -> Response:
    entry = entry_for(db, entry_id, actor=actor)
    rules = services.history(db, CleaningRuleSet, actor=actor, entry=entry)
    policies = services.history(db, MaskingPolicy, actor=actor, entry=entry)
    policy = policies[0] if policies else None
    chosen = {(r["item"], r["channel"]): r for r in (policy.rules if policy else [])}
    items = entry_items(db, entry)
    shown = rules_text
    if shown is None:
        shown = json.dumps(rules[0].rules if rules else [], ensure_ascii=False, indent=2)
    return render(
        request,
        "clean/entry.html",
        {
            "entry": entry,
            "tab": "clean",
            "items": items,
            "channels": list(services.Channel),
            "channel_labels": services.CHANNEL_LABELS,
            "methods": [SHOW, *MaskMethod],
            "method_labels": {SHOW: "原样显示", **METHOD_LABELS},
            "chosen": chosen,
            "defaults": services.channel_view(db, actor=actor, entry=entry)["channels"],
            "policy": policy,
            "policies": policies,
            "rule_sets": rules,
            "rules_text": shown,
            "rule_kinds": [(kind, RULE_KIND_LABELS[kind]) for kind in KINDS],
            "k_default": get_settings().k_anonymity,
            "may_rules": check(actor, "clean.manage_rules", entry) is not None,
            "may_masking": check(actor, "clean.manage_masking", entry) is not None,
            "error": error,
        },
        status_code=error.status if error else 200,
    )


@router.get("/entries/{entry_id}")
def entry_page(request: Request, entry_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    return _page(request, db, actor, entry_id)


@router.post("/entries/{entry_id}/rules")
def save_rules(
    request: Request, entry_id: int, db: SessionDep, actor: CurrentActor, form: FormDep
) -> Response:
    text = str(form.get("rules", ""))
    try:
        entry = entry_for(db, entry_id, actor=actor)
        try:
            rules = json.loads(text or "[]")
        except json.JSONDecodeError as exc:
            raise ValidationFailed(
                "规则不是有效的 JSON：第 {line} 行附近。", code="bad_json", line=exc.lineno
            ) from exc
        if not isinstance(rules, list):
            raise ValidationFailed("规则应为 JSON 数组：[{…}, {…}]。", code="bad_json")
        services.set_rules(
            db, actor=actor, entry=entry, rules=rules, note=str(form.get("note", ""))
        )
    except Denied:
        raise
    except AppError as exc:
        db.rollback()
        return _page(request, db, actor, entry_id, error=exc, rules_text=text)
    return redirect(f"/clean/entries/{entry_id}", "saved")


def _masking_from(form: FormData, names: list[str]) -> list[dict[str, Any]]:
    """Rows ``m-<i>-<channel>`` (method) and ``p-<i>-<channel>`` (JSON parameters)."""
    rules: list[dict[str, Any]] = []
    for index, name in enumerate(names):
        for channel in services.Channel:
            method = str(form.get(f"m-{index}-{channel}", ""))
            if not method:
                continue
            raw = str(form.get(f"p-{index}-{channel}", "")).strip() or "{}"
            try:
                params = json.loads(raw)
            except ValueError as exc:
                raise ValidationFailed(
                    '“{item}”（{channel}）的参数不是有效的 JSON，如 {{"first": 3}}。',
                    code="bad_json",
                    item=name,
                    channel=services.CHANNEL_LABELS[channel],
                ) from exc
            rules.append({"item": name, "channel": channel, "method": method, "params": params})
    return rules


@router.post("/entries/{entry_id}/masking")
def save_masking(
    request: Request, entry_id: int, db: SessionDep, actor: CurrentActor, form: FormDep
) -> Response:
    try:
        entry = entry_for(db, entry_id, actor=actor)
        names = [item.name for item in entry_items(db, entry)]
        k = str(form.get("k", "")).strip()
        services.set_policy(
            db,
            actor=actor,
            entry=entry,
            rules=_masking_from(form, names),
            note=str(form.get("note", "")),
            quasi_identifiers=[str(v) for v in form.getlist("quasi")],
            k=int(k) if k.isdigit() else None,
        )
    except Denied:
        raise
    except AppError as exc:
        db.rollback()
        return _page(request, db, actor, entry_id, error=exc)
    return redirect(f"/clean/entries/{entry_id}", "saved")


@router.get("/entries/{entry_id}/quality")
def quality_page(request: Request, entry_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    entry = entry_for(db, entry_id, actor=actor)
    versions, current_id = versions_for(db, actor=actor, entry=entry)
    current = next((v for v in versions if v.id == current_id), versions[0] if versions else None)
    return render(
        request,
        "clean/quality.html",
        {
            "entry": entry,
            "tab": "quality",
            "versions": versions,
            "current": current,
            "report": (current.quality or {}) if current else {},
            "trend": [(v.number, (v.quality or {}).get("score")) for v in reversed(list(versions))],
        },
    )
