"""How the console words the catalog: field names, review remarks' targets, values as labels."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from kuaishu.catalog.enums import (
    LABELS,
    ItemType,
    OpenType,
    ResourceClass,
    ResourceFormat,
    ShareMethod,
    ShareType,
    UpdateCycle,
)
from kuaishu.catalog.models import CatalogRevision
from kuaishu.i18n import gettext_

FIELD_LABELS = {
    "name": "信息资源名称",
    "summary": "信息资源摘要",
    "resource_class": "类",
    "subject_code": "项",
    "category_code": "目",
    "subcategory_code": "细目",
    "resource_format": "信息资源格式",
    "share_type": "共享类型",
    "share_conditions": "共享条件",
    "share_methods": "共享方式",
    "share_basis": "共享依据",
    "open_type": "开放类型",
    "open_conditions": "开放条件",
    "open_basis": "开放依据",
    "update_cycle": "更新周期",
    "domain": "领域",
    "security_level": "安全级别",
    "keywords": "关键字",
    "contact": "联系方式",
    "related_codes": "关联资源代码",
    "licence": "开放许可",
    "source_systems": "来源系统",
    "items": "信息项",
}

ITEM_LABELS = {
    "name": "信息项名称",
    "type_code": "数据类型",
    "length": "长度",
    "description": "描述",
    "is_key": "是否主键",
    "sensitivity": "敏感级别",
}
ENUM_FIELDS: dict[str, type[StrEnum]] = {
    "resource_class": ResourceClass,
    "resource_format": ResourceFormat,
    "share_type": ShareType,
    "share_methods": ShareMethod,
    "open_type": OpenType,
    "update_cycle": UpdateCycle,
}
_ITEM_FIELD = re.compile(r"^items\[(\d+)\](?:\.(\w+))?$")


def field_label(field: str, revision: CatalogRevision | None = None) -> str:
    """A field as a reader knows it: 信息资源摘要, or 信息项 2（年末常住人口）· 描述."""
    found = _ITEM_FIELD.match(field)
    if found is None:
        return gettext_(FIELD_LABELS[field]) if field in FIELD_LABELS else field
    position, part = int(found.group(1)), found.group(2)
    text = gettext_("信息项 {n}", n=position)
    names = {i.position: i.name for i in revision.items} if revision is not None else {}
    if position in names:
        text += f"（{names[position]}）"
    if part:
        text += " · " + (gettext_(ITEM_LABELS[part]) if part in ITEM_LABELS else part)
    return text


def shown(field: str, value: Any) -> str:
    """A field's value as text for the comparison page: labels, not codes or JSON."""
    if value is None or value == [] or value == "":
        return "—"
    if isinstance(value, list):
        return "、".join(shown(field, v) for v in value)
    if isinstance(value, dict):  # a data item
        code = str(value["type_code"])
        parts = [str(value["name"]), f"{code} {gettext_(LABELS[ItemType].get(code, code))}"]
        parts += [str(value[k]) for k in ("length", "description", "sensitivity") if value.get(k)]
        if value.get("is_key"):
            parts.append(gettext_("主键"))
        return " · ".join(parts)
    kind = ENUM_FIELDS.get(field)
    if kind is not None and str(value) in LABELS[kind]:
        return gettext_(LABELS[kind][str(value)])
    return str(value)
