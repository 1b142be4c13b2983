"""Who may do what with regions, departments, users, roles, keys and one's own account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kuaishu.accounts.actor import Actor
from kuaishu.accounts.roles import DATA_ROLES, DEPARTMENT_ROLES, PLATFORM_ROLES, Role
from kuaishu.authz import Grant, anyone_signed_in, either, has_any, policy

OPERATOR = has_any(Role.PLATFORM_OPERATOR)


@dataclass(frozen=True)
class RoleChange:
    """What ``role.assign`` and ``role.revoke`` act on: ``role`` in ``department_id`` for
    ``user`` (None: an account being created now)."""

    user: Any
    department_id: int
    role: Role

    @property
    def id(self) -> int | None:
        """The account's id, for the audit event of a refusal."""
        return getattr(self.user, "id", None)


def _roles_of(user: Any) -> list[Any]:
    return list(getattr(user, "roles", None) or [])


def home_department(user: Any) -> int | None:
    """The one department in which ``user`` holds every role; None when it has no role or roles
    in several departments (then only the operator manages it)."""
    departments = {assignment.department_id for assignment in _roles_of(user)}
    return next(iter(departments)) if len(departments) == 1 else None


def holds_platform_role(user: Any) -> bool:
    return any(assignment.role in PLATFORM_ROLES for assignment in _roles_of(user))


def _shell(actor: Actor, _target: Any) -> Grant | None:
    """The server's own command line (``kuaishu user …``): whoever holds the shell holds the
    database, so it is where the platform roles are appointed and their holders managed."""
    if actor.user_id is None and actor.auth_method == "cli":
        return actor.primary
    return None


def _admin_of_department(actor: Actor, department_id: Any) -> Grant | None:
    if isinstance(department_id, int) and actor.has_role_in(Role.DEPT_ADMIN, department_id):
        return department_id, Role.DEPT_ADMIN
    return None


def _admin_of_user(actor: Actor, user: Any) -> Grant | None:
    """A department admin manages its department's staff: accounts holding only data roles, all
    in the department it administers — so never itself, another admin or a platform role."""
    held = {assignment.role for assignment in _roles_of(user)}
    if not held or held - DATA_ROLES:
        return None
    return _admin_of_department(actor, home_department(user))


def _operator_of_user(actor: Actor, user: Any) -> Grant | None:
    """The operator manages every account except those holding a platform role (the auditor
    and the security administrator it would otherwise silence or take over)."""
    if holds_platform_role(user):
        return None
    return OPERATOR(actor, user)


def _admin_assigning(actor: Actor, target: Any) -> Grant | None:
    """A department admin hands out only data roles, only in the department it administers,
    only to that department's staff (or an account it creates there), never to itself."""
    if not isinstance(target, RoleChange) or target.role not in DATA_ROLES:
        return None
    if target.user is not None:
        if not _admin_of_user(actor, target.user):
            return None
        if home_department(target.user) != target.department_id:
            return None
    return _admin_of_department(actor, target.department_id)


def _operator_assigning(actor: Actor, target: Any) -> Grant | None:
    """The operator staffs departments (department roles), but appoints no platform role and
    changes no platform-role holder's roles."""
    if not isinstance(target, RoleChange) or target.role not in DEPARTMENT_ROLES:
        return None
    if target.user is not None and holds_platform_role(target.user):
        return None
    return OPERATOR(actor, target)


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
policy("user.disable", "停用用户", either(_operator_of_user, _admin_of_user, _shell))
policy("user.enable", "启用用户", either(_operator_of_user, _admin_of_user, _shell))
policy("user.reset_password", "重置密码", either(_operator_of_user, _admin_of_user, _shell))
policy("role.assign", "授予角色", either(_operator_assigning, _admin_assigning, _shell))
policy("role.revoke", "撤销角色", either(_operator_assigning, _admin_assigning, _shell))
policy("account.view", "查看本人账户", anyone_signed_in, scope="read")
policy("account.change_password", "修改本人密码", anyone_signed_in)
policy("apikey.create", "创建本人 API 密钥", anyone_signed_in)
policy("apikey.list", "查看本人 API 密钥", anyone_signed_in, scope="read")
policy("apikey.revoke", "撤销本人 API 密钥", anyone_signed_in)
policy("console.view", "进入政务工作台", _staff, scope="read")
