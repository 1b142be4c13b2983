"""Reading the console's entry form (with its data-item table) into a :class:`RevisionIn`."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from kuaishu.catalog.display import field_label
from kuaishu.catalog.schemas import RevisionIn
from kuaishu.errors import PROBLEM_MESSAGES, ValidationFailed
from kuaishu.i18n import gettext_

LIST_FIELDS = ("keywords", "related_codes", "source_systems")
ITEM_FIELDS = ("name", "type_code", "length", "description", "sensitivity")
BLANK_ITEM_ROWS = 5


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.replace("，", ",").replace("、", ",").split(",") if p.strip()]


def _items(form: FormData) -> list[dict[str, Any]]:
    items = []
    for n in range(1, 2001):
        if f"items-{n}-name" not in form:
            break
        row = {f: str(form.get(f"items-{n}-{f}", "")).strip() for f in ITEM_FIELDS}
        if not row["name"]:
            continue
        item: dict[str, Any] = {k: v for k, v in row.items() if v}
        item["is_key"] = form.get(f"items-{n}-is_key") == "1"
        items.append(item)
    return items


def revision_from_form(form: FormData) -> RevisionIn:
    """The entry the form describes; empty optional fields are left out."""
    values: dict[str, Any] = {}
    for field in RevisionIn.model_fields:
        if field in ("items", "share_methods") or field in LIST_FIELDS:
            continue
        text = str(form.get(field, "")).strip()
        if text:
            values[field] = text
    values["share_methods"] = [str(v) for v in form.getlist("share_methods")]
    for field in LIST_FIELDS:
        values[field] = _split(str(form.get(field, "")))
    values["items"] = _items(form)
    try:
        return RevisionIn.model_validate(values)
    except ValidationError as exc:
        details = [
            {
                "field": _field(e["loc"]),
                "message": gettext_(PROBLEM_MESSAGES.get(e["type"], "取值无效")),
            }
            for e in exc.errors()
        ]
        raise ValidationFailed(
            "目录信息不符合要求：{first}（共 {n} 处）",
            code="catalog_rules",
            details=details,
            first=f"{field_label(details[0]['field'])} {details[0]['message']}",
            n=len(details),
        ) from exc


def _field(loc: tuple[int | str, ...]) -> str:
    """Pydantic's location as the catalog names fields: ``items[2].length`` counts rows from 1."""
    if len(loc) >= 2 and loc[0] == "items" and isinstance(loc[1], int):
        rest = "".join(f".{part}" for part in loc[2:])
        return f"items[{loc[1] + 1}]{rest}"
    return ".".join(str(part) for part in loc)


def form_values(data: RevisionIn | None) -> dict[str, Any]:
    """What the form shows: a revision's values, lists joined for text inputs."""
    if data is None:
        return {"items": [], "share_methods": []}
    values = data.model_dump(mode="json")
    for field in LIST_FIELDS:
        values[field] = "，".join(values[field])
    return values
