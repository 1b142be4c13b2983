"""Reading the exchange's console forms into what the services take.

Each form is checked by the API's own schema (``ApplyIn``, ``ApproveIn``…), so a page accepts what
the API accepts; the raw values go back to the form when something is wrong. Row filters are
written one per line as ``parameter=value``, like the data API's query string.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError
from starlette.datastructures import FormData

from kuaishu.clean.masking import METHOD_LABELS, MaskMethod
from kuaishu.clean.services import SHOW
from kuaishu.errors import PROBLEM_MESSAGES, ValidationFailed
from kuaishu.i18n import gettext_
from kuaishu.share import services
from kuaishu.share.models import ShareApplication

# The API's own reading of an ApplyIn, so a page asks for exactly what the API would.
from kuaishu.share.routes import as_request
from kuaishu.share.schemas import AnswerIn, ApplyIn, ApproveIn, ObjectionIn, RenewIn, SubscribeIn

Schema = TypeVar("Schema", bound=BaseModel)
FIELD_LABELS = {
    "purpose": "使用目的",
    "legal_basis": "申请依据",
    "fields": "信息项",
    "row_filter": "行范围",
    "methods": "共享方式",
    "period_end": "使用期限",
    "expected_volume": "预计调用量",
    "masking": "脱敏覆盖",
    "expires_on": "有效期",
    "rate_limit": "每分钟调用上限",
    "reason": "说明",
    "records": "有疑义的记录",
    "description": "问题说明",
    "evidence": "依据",
    "corrected_in": "更正所在版本",
    "mode": "订阅方式",
    "endpoint": "推送地址",
    "target_url": "目标数据库地址",
    "target_table": "目标表",
    "password": "数据库密码",
    "since_version": "起始版本",
    "batch_size": "每批条数",
}
# A grant's masking override per item: "" keeps the entry's share-channel policy.
MASK_CHOICES: list[str] = [SHOW, *MaskMethod]
MASK_LABELS: dict[str, str] = {SHOW: "原样显示", **{str(m): t for m, t in METHOD_LABELS.items()}}


def field_label(field: str) -> str:
    """``row_filter[2]`` → 行范围 (第 3 项): the form's name for a field a service complains of."""
    name, _, rest = field.partition("[")
    label = gettext_(FIELD_LABELS.get(name, name))
    index = rest.split("]", 1)[0]
    return f"{label} {int(index) + 1}" if index.isdigit() else label


def validated(schema: type[Schema], values: dict[str, Any]) -> Schema:
    try:
        return schema.model_validate(values)
    except ValidationError as exc:
        details = [
            {
                "field": ".".join(str(p) for p in e["loc"]),
                "message": gettext_(PROBLEM_MESSAGES.get(e["type"], "取值无效")),
            }
            for e in exc.errors()
        ]
        first = details[0]
        raise ValidationFailed(
            "表单有 {n} 处错误：{first}",
            code="bad_form",
            details=details,
            first=f"{field_label(first['field'])} {first['message']}",
            n=len(details),
        ) from exc


def _text(form: FormData, name: str) -> str:
    return str(form.get(name, "")).strip()


def filter_lines(text: str) -> list[list[str]]:
    """``区划代码__in=520102,520103`` per line → ``[["区划代码__in", "520102,520103"]]``."""
    pairs: list[list[str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, equals, value = line.partition("=")
        if not equals or not name.strip():
            raise ValidationFailed(
                "行范围第 {n} 行应写成“参数=值”，如 区划代码__in=520102,520103。",
                code="bad_filter_line",
                n=number,
            )
        pairs.append([name.strip(), value.strip()])
    return pairs


def filter_text(pairs: list[list[str]]) -> str:
    return "\n".join(f"{p[0]}={p[1]}" for p in pairs if len(p) == 2)


def _chosen_fields(fields: list[str]) -> list[str]:
    """Ticked items; none ticked is a mistake here, not "every item" as in the API."""
    if not fields:
        raise ValidationFailed("请至少选择一个信息项。", code="fields_required")
    return fields


# Applying (and resubmitting) ------------------------------------------------------------------


def request_values(form: FormData) -> dict[str, Any]:
    """The apply form as typed, to show again."""
    return {
        "purpose": _text(form, "purpose"),
        "legal_basis": _text(form, "legal_basis"),
        "fields": [str(v) for v in form.getlist("fields")],
        "row_filter": str(form.get("row_filter", "")),
        "methods": [str(v) for v in form.getlist("methods")],
        "period_end": _text(form, "period_end"),
        "expected_volume": _text(form, "expected_volume"),
    }


def request_from(values: dict[str, Any]) -> services.Request:
    body = validated(
        ApplyIn,
        {
            **values,
            "fields": _chosen_fields(values["fields"]),
            "row_filter": filter_lines(values["row_filter"]),
            "period_end": values["period_end"] or None,
        },
    )
    return as_request(body)


def asked_values(application: ShareApplication) -> dict[str, Any]:
    """An application's request, to revise."""
    return {
        "purpose": application.purpose,
        "legal_basis": application.legal_basis,
        "fields": list(application.fields),
        "row_filter": filter_text(application.row_filter),
        "methods": list(application.methods),
        "period_end": application.period_end.isoformat() if application.period_end else "",
        "expected_volume": application.expected_volume,
    }


# Approving ------------------------------------------------------------------------------------


def approval_values(form: FormData, names: list[str]) -> dict[str, Any]:
    """The approve form as typed; masking rows are ``mask-<i>`` (method) and ``params-<i>``."""
    masking = {
        name: {"method": _text(form, f"mask-{i}"), "params": _text(form, f"params-{i}")}
        for i, name in enumerate(names)
    }
    return {
        "fields": [str(v) for v in form.getlist("fields")],
        "row_filter": str(form.get("row_filter", "")),
        "masking": {name: m for name, m in masking.items() if m["method"]},
        "methods": [str(v) for v in form.getlist("methods")],
        "expires_on": _text(form, "expires_on"),
        "rate_limit": _text(form, "rate_limit"),
        "reason": _text(form, "reason"),
    }


def offered_values(application: ShareApplication, names: list[str]) -> dict[str, Any]:
    """The approve form before the provider touches it: what was asked."""
    return {
        "fields": list(application.fields) or names,
        "row_filter": filter_text(application.row_filter),
        "masking": {},
        "methods": list(application.methods),
        "expires_on": application.period_end.isoformat() if application.period_end else "",
        "rate_limit": "",
        "reason": "",
    }


def _params(item: str, text: str) -> dict[str, Any]:
    try:
        found = json.loads(text or "{}")
    except ValueError:
        found = None
    if not isinstance(found, dict):
        raise ValidationFailed(
            '“{item}”的脱敏参数应为 JSON 对象，如 {{"first": 1}}。', code="bad_json", item=item
        )
    return found


def approval_from(values: dict[str, Any]) -> ApproveIn:
    masking = [
        {"item": item, "method": m["method"], "params": _params(item, m["params"])}
        for item, m in values["masking"].items()
    ]
    return validated(
        ApproveIn,
        {
            "fields": _chosen_fields(values["fields"]),
            "row_filter": filter_lines(values["row_filter"]),
            "masking": masking,
            "methods": values["methods"],
            "expires_on": values["expires_on"] or None,
            "rate_limit": values["rate_limit"] or None,
            "reason": values["reason"],
        },
    )


# Grants and objections -------------------------------------------------------------------------


def renewal_from(form: FormData) -> RenewIn:
    return validated(
        RenewIn,
        {"expires_on": _text(form, "expires_on") or None, "reason": _text(form, "reason")},
    )


def objection_values(form: FormData) -> dict[str, Any]:
    return {
        "records": str(form.get("records", "")),
        "fields": [str(v) for v in form.getlist("fields")],
        "description": _text(form, "description"),
        "evidence": _text(form, "evidence"),
    }


def objection_from(values: dict[str, Any]) -> ObjectionIn:
    """Records are key values, one per line (or separated by commas)."""
    text = values["records"].replace("，", "\n").replace(",", "\n")
    records = [line.strip() for line in text.splitlines() if line.strip()]
    return validated(ObjectionIn, {**values, "records": records})


def answer_from(form: FormData) -> AnswerIn:
    return validated(
        AnswerIn,
        {"corrected_in": _text(form, "corrected_in") or None, "reason": _text(form, "reason")},
    )


def keys_from(form: FormData, key_names: list[str]) -> dict[str, str]:
    """A lookup's key values by key item name (``key-<i>``), blanks left out."""
    found = {name: _text(form, f"key-{i}") for i, name in enumerate(key_names)}
    return {name: value for name, value in found.items() if value}


# Subscriptions --------------------------------------------------------------------------------

SUBSCRIPTION_FIELDS = (
    "mode",
    "endpoint",
    "target_url",
    "target_table",
    "since_version",
    "batch_size",
)


def subscription_values(form: FormData) -> dict[str, str]:
    """A subscription form as typed (the password field apart)."""
    return {name: _text(form, name) for name in SUBSCRIPTION_FIELDS}


def without_password(values: dict[str, str]) -> dict[str, str]:
    """What to show again: a password typed into the target's address is left out of it."""
    try:
        url = make_url(values["target_url"])
    except (ArgumentError, ValueError):
        return values
    if url.password is None:
        return values
    return {
        **values,
        "target_url": url._replace(password=None).render_as_string(hide_password=False),
    }


def subscription_from(values: dict[str, str], password: str) -> SubscribeIn:
    """Blank fields take the API's defaults (from the beginning, 500 a batch)."""
    typed = {name: value for name, value in values.items() if value}
    return validated(SubscribeIn, {**typed, "password": password})
