"""Who may do what with the catalog: departments compile, reviewers review, all may read."""

from __future__ import annotations

from typing import Any

from kuaishu.accounts.actor import Actor
from kuaishu.accounts.roles import DEPARTMENT_ROLES, Role
from kuaishu.authz import Grant, anyone_signed_in, either, has_any, in_department, policy

OPERATOR = has_any(Role.PLATFORM_OPERATOR)
# A department's members are those holding a department role there; a platform role seated in a
# department (operator, security administrator, auditor) makes no one a member of it.
STAFF_ROLES = tuple(sorted(DEPARTMENT_ROLES))


def _department(target: Any) -> int | None:
    """An entry's department, or the department id itself."""
    if isinstance(target, int):
        return target
    return getattr(target, "department_id", None)


def _anyone(actor: Actor, _target: Any) -> Grant | None:
    return actor.primary


COMPILERS = in_department(Role.CATALOGUER, Role.DATA_OFFICER, department_of=_department)
REVIEWERS = in_department(Role.REVIEWER, department_of=_department)
PUBLISHERS = in_department(Role.REVIEWER, Role.DATA_OFFICER, department_of=_department)
OFFICERS = in_department(Role.DATA_OFFICER, department_of=_department)
MEMBERS = in_department(*STAFF_ROLES, department_of=_department)

policy("catalog.create", "新建目录条目", COMPILERS)
policy("catalog.edit", "编辑目录条目", COMPILERS)
policy("catalog.submit", "提交审核", COMPILERS)
policy("catalog.review", "审核目录条目", either(REVIEWERS, OPERATOR))
policy("catalog.publish", "发布目录条目", either(PUBLISHERS, OPERATOR))
policy("catalog.withdraw", "撤销目录条目", either(OFFICERS, OPERATOR))
policy("catalog.report_change", "登记数据结构变化", COMPILERS)
policy(
    "catalog.view_department", "查看本部门目录（含草稿）", either(MEMBERS, OPERATOR), scope="read"
)
policy("catalog.read", "查看已发布目录", anyone_signed_in, scope="read")
policy("catalog.negative_list", "查看负面清单", _anyone, scope="read")
policy("catalog.overdue_all", "查看全部逾期条目", OPERATOR, scope="read")
policy("catalog.elements", "管理数据元（一数一源）", OPERATOR)
policy("catalog.import", "导入外部已发布目录", OPERATOR)
