"""Roles held within a department, and the kinds of account."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A duty held within one department (GB/T 39477 separates administration, audit, operation)."""

    PLATFORM_OPERATOR = "platform_operator"  # 平台运营者
    SECURITY_AUDITOR = "security_auditor"  # 安全审计员
    SECURITY_ADMIN = "security_admin"  # 安全管理员
    DEPT_ADMIN = "dept_admin"  # 部门管理员
    CATALOGUER = "cataloguer"  # 编目员
    REVIEWER = "reviewer"  # 审核员
    DATA_OFFICER = "data_officer"  # 首席数据官
    CONSUMER = "consumer"  # 使用部门用户

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS: dict[Role, str] = {
    Role.PLATFORM_OPERATOR: "平台运营者",
    Role.SECURITY_AUDITOR: "安全审计员",
    Role.SECURITY_ADMIN: "安全管理员",
    Role.DEPT_ADMIN: "部门管理员",
    Role.CATALOGUER: "编目员",
    Role.REVIEWER: "审核员",
    Role.DATA_OFFICER: "首席数据官",
    Role.CONSUMER: "使用部门用户",
}

# The platform's three separated duties (三员分立, GB/T 39477): operation (system administration),
# security administration and audit. Each is held alone: one account holding a platform role
# holds no other role — neither another platform role nor any department role — anywhere.
PLATFORM_ROLES = frozenset({Role.PLATFORM_OPERATOR, Role.SECURITY_ADMIN, Role.SECURITY_AUDITOR})
# Roles held to do a department's work; the data roles among them touch its data.
DEPARTMENT_ROLES = frozenset(Role) - PLATFORM_ROLES
DATA_ROLES = DEPARTMENT_ROLES - {Role.DEPT_ADMIN}


def separation_conflict(roles: set[Role]) -> tuple[Role, Role] | None:
    """Two of ``roles`` that one account may not hold together, or None."""
    platform = sorted(roles & PLATFORM_ROLES)
    if platform and len(roles) > 1:
        other = sorted(roles - {platform[0]})[0]
        return platform[0], other
    return None


class AccountKind(StrEnum):
    """Who an account belongs to."""

    STAFF = "staff"  # 政务人员
    PUBLIC = "public"  # 社会公众（实名）
    ENTERPRISE = "enterprise"  # 企业用户


ACCOUNT_KIND_LABELS: dict[AccountKind, str] = {
    AccountKind.STAFF: "政务人员",
    AccountKind.PUBLIC: "社会公众",
    AccountKind.ENTERPRISE: "企业用户",
}


class LevelKind(StrEnum):
    """A level of government (行政层级)."""

    PROVINCE = "province"  # 省级
    CITY = "city"  # 市级
    COUNTY = "county"  # 县级


LEVEL_LABELS: dict[LevelKind, str] = {
    LevelKind.PROVINCE: "省级",
    LevelKind.CITY: "市级",
    LevelKind.COUNTY: "县级",
}

PARENT_LEVEL: dict[LevelKind, LevelKind | None] = {
    LevelKind.PROVINCE: None,
    LevelKind.CITY: LevelKind.PROVINCE,
    LevelKind.COUNTY: LevelKind.CITY,
}
