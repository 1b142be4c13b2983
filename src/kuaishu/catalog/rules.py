"""The rules an entry obeys: some at every write, the rest before it can be submitted.

Each broken rule is reported with the field it concerns, a stable code and a Chinese message;
all of them at once, so a cataloguer fixes the form in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from kuaishu.catalog.enums import (
    BASE_SUBJECTS,
    BASE_SUBJECTS_MUST_SHARE,
    DOMAINS,
    SECURITY_LEVELS,
    OpenType,
    ResourceClass,
    ShareType,
)
from kuaishu.catalog.schemas import RevisionIn
from kuaishu.errors import ValidationFailed
from kuaishu.i18n import gettext_


@dataclass(frozen=True)
class Problem:
    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": gettext_(self.message)}


def write_problems(data: RevisionIn) -> list[Problem]:
    """Rules that hold whenever an entry is saved, however unfinished."""
    problems: list[Problem] = []
    if data.share_type in (ShareType.CONDITIONAL, ShareType.NOT_SHARED) and not data.share_basis:
        problems.append(
            Problem(
                "share_basis",
                "share_basis_required",
                "有条件共享和不予共享必须注明法律、法规或政策依据（否则应为无条件共享）。",
            )
        )
    if data.open_type in (OpenType.ON_APPLICATION, OpenType.NOT_OPEN) and not data.open_basis:
        problems.append(
            Problem(
                "open_basis",
                "open_basis_required",
                "依申请开放和不予开放必须注明依据，并将公开列入负面清单。",
            )
        )
    if (
        data.resource_class == ResourceClass.BASE
        and data.subject_code in BASE_SUBJECTS_MUST_SHARE
        and data.share_type == ShareType.NOT_SHARED
    ):
        problems.append(
            Problem(
                "share_type",
                "base_data_must_share",
                "基础信息资源（人口、法人、自然资源和空间地理、电子证照）必须共享，不能设为不予共享。",
            )
        )
    if (
        data.resource_class == ResourceClass.BASE
        and data.subject_code
        and (data.subject_code not in BASE_SUBJECTS)
    ):
        problems.append(
            Problem("subject_code", "unknown_subject", "基础信息资源的“项”应为 01–05。")
        )
    if data.domain and data.domain not in DOMAINS:
        problems.append(Problem("domain", "unknown_domain", "领域应为国家试点的 21 个领域之一。"))
    if data.security_level and data.security_level not in SECURITY_LEVELS:
        problems.append(
            Problem("security_level", "unknown_security_level", "安全级别不在配置的级别列表中。")
        )
    problems += _item_problems(data)
    return problems


def _item_problems(data: RevisionIn) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, item in enumerate(data.items, start=1):
        name = item.name.strip()
        if name in seen:
            problems.append(Problem(f"items[{index}].name", "duplicate_item", "信息项名称重复。"))
        seen.add(name)
        if item.sensitivity and item.sensitivity not in SECURITY_LEVELS:
            problems.append(
                Problem(
                    f"items[{index}].sensitivity",
                    "unknown_security_level",
                    "敏感级别不在配置的级别列表中。",
                )
            )
    return problems


def submit_problems(data: RevisionIn) -> list[Problem]:
    """What must be filled in before an entry goes to review."""
    problems = write_problems(data)
    required = {
        "summary": (data.summary, "信息资源摘要"),
        "resource_format": (data.resource_format, "信息资源格式"),
        "share_type": (data.share_type, "共享类型"),
        "open_type": (data.open_type, "开放类型"),
        "update_cycle": (data.update_cycle, "更新周期"),
        "domain": (data.domain, "领域"),
    }
    for field, (value, _label) in required.items():
        if not value:
            problems.append(Problem(field, "required", "提交审核前必须填写此项。"))
    if data.resource_class != ResourceClass.DEPARTMENT and not data.subject_code:
        problems.append(Problem("subject_code", "required", "基础和主题信息资源必须填写“项”。"))
    if (
        data.share_type in (ShareType.UNCONDITIONAL, ShareType.CONDITIONAL)
        and not data.share_methods
    ):
        problems.append(
            Problem("share_methods", "share_methods_required", "可共享的资源必须注明共享方式。")
        )
    if data.share_type == ShareType.CONDITIONAL and not data.share_conditions:
        problems.append(
            Problem("share_conditions", "share_conditions_required", "有条件共享必须注明共享条件。")
        )
    if data.open_type == OpenType.ON_APPLICATION and not data.open_conditions:
        problems.append(
            Problem("open_conditions", "open_conditions_required", "依申请开放必须注明开放条件。")
        )
    if not data.items:
        problems.append(Problem("items", "items_required", "至少要有一个信息项。"))
    return problems


def raise_if(problems: list[Problem]) -> None:
    """Refuse the write, naming every broken rule."""
    if problems:
        raise ValidationFailed(
            "目录信息不符合要求：{first}（共 {n} 处）",
            code="catalog_rules",
            details=[p.as_dict() for p in problems],
            first=gettext_(problems[0].message),
            n=len(problems),
        )
