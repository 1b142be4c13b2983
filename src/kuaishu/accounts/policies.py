"""Who may do what with regions, departments, users, roles, keys and one's own account."""

from __future__ import annotations

from typing import Any

from kuaishu.accounts.actor import Actor
from kuaishu.accounts.roles import Role
from kuaishu.authz import Grant, anyone_signed_in, either, has_any, policy

OPERATOR = has_any(Role.PLATFORM_OPERATOR)

# Roles a department admin may hand out inside their own department.
DEPARTMENT_ROLES = frozenset({Role.CATALOGUER, Role.REVIEWER, Role.DATA_OFFICER, Role.CONSUMER})


def _admin_of_department(actor: Actor, department_id: Any) -> Grant | None:
    if isinstance(department_id, int) and actor.has_role_in(Role.DEPT_ADMIN, department_id):
        return department_id, Role.DEPT_ADMIN
    return None


def _admin_of_user(actor: Actor, user: Any) -> Grant | None:
    """A department admin manages accounts whose every role lies in their department."""
    roles = getattr(user, "roles", None) or []
    departments = {assignment.department_id for assignment in roles}
    held = {assignment.role for assignment in roles}
    if not departments or len(departments) != 1:
        return None
    if held - DEPARTMENT_ROLES:
        return None
    return _admin_of_department(actor, next(iter(departments)))


def _admin_assigning(actor: Actor, target: Any) -> Grant | None:
    """``target`` is (department_id, role)."""
    department_id, role = target
    if role not in DEPARTMENT_ROLES:
        return None
    return _admin_of_department(actor, department_id)


def _self(actor: Actor, user: Any) -> Grant | None:
    if actor.user_id is not None and getattr(user, "id", None) == actor.user_id:
        return actor.primary
    return None


def _staff(actor: Actor, _target: Any) -> Grant | None:
    return actor.primary if actor.roles else None


policy("region.list", "查看行政区", anyone_signed_in, scope="read")
policy("region.create", "新建行政区", OPERATOR)
policy("region.update", "修改行政区", OPERATOR)
policy("department.list", "查看部门", anyone_signed_in, scope="read")
policy("department.create", "新建部门", OPERATOR)
policy("department.update", "修改部门", OPERATOR)
policy("user.list", "查看用户列表", either(OPERATOR, has_any(Role.DEPT_ADMIN)), scope="read")
policy("user.view", "查看用户", either(OPERATOR, _admin_of_user, _self), scope="read")
policy("user.create", "新建用户", either(OPERATOR, _admin_of_department))
policy("user.disable", "停用用户", either(OPERATOR, _admin_of_user))
policy("user.enable", "启用用户", either(OPERATOR, _admin_of_user))
policy("user.reset_password", "重置密码", either(OPERATOR, _admin_of_user))
policy("role.assign", "授予角色", either(OPERATOR, _admin_assigning))
policy("role.revoke", "撤销角色", either(OPERATOR, _admin_assigning))
policy("account.view", "查看本人账户", anyone_signed_in, scope="read")
policy("account.change_password", "修改本人密码", anyone_signed_in)
policy("apikey.create", "创建本人 API 密钥", anyone_signed_in)
policy("apikey.list", "查看本人 API 密钥", anyone_signed_in, scope="read")
policy("apikey.revoke", "撤销本人 API 密钥", anyone_signed_in)
policy("console.view", "进入政务工作台", _staff, scope="read")
