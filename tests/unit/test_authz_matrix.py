"""Every role against every operation that exists: the expected answers are data, here.

A new operation without rows in ``EXPECTED`` fails ``test_every_operation_has_expectations``;
a domain adds its own block of rows (see ``ACCOUNTS`` and ``SECURITY``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from kuaishu.accounts.actor import Actor
from kuaishu.accounts.policies import RoleChange
from kuaishu.accounts.roles import DEPARTMENT_ROLES, AccountKind, Role
from kuaishu.authz import REGISTRY, check
from kuaishu.web.app import load_domains

load_domains()

OWN, OTHER = 1, 2  # the subject's department, and somebody else's
ROLES = [r.value for r in Role]
SUBJECTS = [*ROLES, "anonymous", "public", "enterprise"]
STAFF = set(ROLES)
# Members of a department: the department roles. The platform roles (operator, security
# administrator, auditor) are members of none, wherever they are seated.
MEMBERS = {r.value for r in DEPARTMENT_ROLES}
OPERATOR = {"platform_operator"}
SIGNED_IN = {*ROLES, "public", "enterprise"}


def subject(name: str, *, scopes: frozenset[str] | None = None) -> Actor:
    if name == "anonymous":
        return Actor(user_id=None, username="anonymous", auth_method="anonymous")
    if name in ("public", "enterprise"):
        return Actor(
            user_id=90, username=name, kind=AccountKind(name), auth_method="session", scopes=scopes
        )
    return Actor(
        user_id=10,
        username=name,
        roles=frozenset({(OWN, Role(name))}),
        auth_method="session",
        scopes=scopes,
    )


@dataclass
class FakeAssignment:
    department_id: int
    role: Role


@dataclass
class FakeUser:
    id: int
    roles: list[FakeAssignment] = field(default_factory=list)


@dataclass
class FakeShare:
    """An application or grant between a providing and a consuming department."""

    provider_department_id: int
    consumer_department_id: int


def target(operation: str, relation: str) -> Any:
    """The object an operation acts on, in the given relation to the subject."""
    department = OWN if relation == "own" else OTHER
    if operation in {"user.view", "user.disable", "user.enable", "user.reset_password"}:
        return FakeUser(id=20, roles=[FakeAssignment(department, Role.CONSUMER)])
    if operation == "user.create":
        return department
    if operation in {"role.assign", "role.revoke"}:
        staff = FakeUser(id=20, roles=[FakeAssignment(department, Role.CONSUMER)])
        return RoleChange(staff, department, Role.CATALOGUER)
    if operation.startswith("share."):
        # "own": the subject's department provides; "other": it is the consuming department.
        provider, consumer = (OWN, OTHER) if relation == "own" else (OTHER, OWN)
        return FakeShare(provider, consumer)
    if operation.startswith(("catalog.", "collect.", "store.", "data.", "clean.")):
        return department  # an entry's department (the policies accept the id itself)
    return None


# operation → {relation: subjects allowed}. "any" means the relation does not matter.
ACCOUNTS: dict[str, dict[str, set[str]]] = {
    "region.list": {"any": SIGNED_IN},
    "region.create": {"any": {"platform_operator"}},
    "region.update": {"any": {"platform_operator"}},
    "department.list": {"any": SIGNED_IN},
    "department.create": {"any": {"platform_operator"}},
    "department.update": {"any": {"platform_operator"}},
    "user.list": {"any": {"platform_operator", "dept_admin"}},
    "user.view": {"own": {"platform_operator", "dept_admin"}, "other": {"platform_operator"}},
    "user.create": {"own": {"platform_operator", "dept_admin"}, "other": {"platform_operator"}},
    "user.disable": {"own": {"platform_operator", "dept_admin"}, "other": {"platform_operator"}},
    "user.enable": {"own": {"platform_operator", "dept_admin"}, "other": {"platform_operator"}},
    "user.reset_password": {
        "own": {"platform_operator", "dept_admin"},
        "other": {"platform_operator"},
    },
    "role.assign": {"own": {"platform_operator", "dept_admin"}, "other": {"platform_operator"}},
    "role.revoke": {"own": {"platform_operator", "dept_admin"}, "other": {"platform_operator"}},
    "account.view": {"any": SIGNED_IN},
    "account.change_password": {"any": SIGNED_IN},
    "apikey.create": {"any": SIGNED_IN},
    "apikey.list": {"any": SIGNED_IN},
    "apikey.revoke": {"any": SIGNED_IN},
    "console.view": {"any": STAFF},
}
SECURITY: dict[str, dict[str, set[str]]] = {
    "audit.read": {"any": {"security_auditor"}},
    "audit.export": {"any": {"security_auditor"}},
    "egress.view": {"any": {"platform_operator"}},
    "egress.manage": {"any": {"platform_operator"}},
}
COMPILERS = {"cataloguer", "data_officer"}
CATALOG: dict[str, dict[str, set[str]]] = {
    "catalog.create": {"own": COMPILERS, "other": set()},
    "catalog.edit": {"own": COMPILERS, "other": set()},
    "catalog.submit": {"own": COMPILERS, "other": set()},
    "catalog.report_change": {"own": COMPILERS, "other": set()},
    "catalog.review": {"own": {"reviewer", "platform_operator"}, "other": {"platform_operator"}},
    "catalog.publish": {
        "own": {"reviewer", "data_officer", "platform_operator"},
        "other": {"platform_operator"},
    },
    "catalog.withdraw": {
        "own": {"data_officer", "platform_operator"},
        "other": {"platform_operator"},
    },
    "catalog.view_department": {"own": MEMBERS | OPERATOR, "other": OPERATOR},
    "catalog.read": {"any": SIGNED_IN},
    "catalog.negative_list": {"any": set(SUBJECTS)},
    "catalog.overdue_all": {"any": {"platform_operator"}},
    "catalog.elements": {"any": {"platform_operator"}},
    "catalog.import": {"any": {"platform_operator"}},
}
LOADERS = {"cataloguer", "data_officer", "platform_operator"}
COLLECT: dict[str, dict[str, set[str]]] = {
    "collect.manage_source": {"own": LOADERS, "other": {"platform_operator"}},
    "collect.load": {"own": LOADERS, "other": {"platform_operator"}},
    "collect.push": {"own": LOADERS, "other": {"platform_operator"}},
    "collect.cancel": {"own": LOADERS, "other": {"platform_operator"}},
    "collect.view": {"own": MEMBERS | OPERATOR, "other": OPERATOR},
    "store.publish": {"own": LOADERS, "other": {"platform_operator"}},
    # Raw data: its own department's members only — not the operator, not the auditor.
    "data.read_own": {"own": MEMBERS, "other": set()},
    "clean.manage_masking": {"own": LOADERS, "other": {"platform_operator"}},
    "clean.manage_rules": {"own": LOADERS, "other": {"platform_operator"}},
    "clean.view": {"own": MEMBERS | OPERATOR, "other": OPERATOR},
    "clean.override_release": {"any": {"platform_operator"}},
    "clean.decrypt": {"own": {"data_officer"}, "other": set()},
}
READERS = {"consumer", "data_officer"}
SHARE: dict[str, dict[str, set[str]]] = {
    "share.browse": {"any": MEMBERS | OPERATOR},
    "share.apply": {"own": set(), "other": READERS},
    "share.decide": {"own": {"data_officer"}, "other": set()},
    "share.arbitrate": {"any": {"platform_operator"}},
    "share.manage_grant": {
        "own": {"data_officer", "platform_operator"},
        "other": {"platform_operator"},
    },
    "share.view": {"any": MEMBERS | OPERATOR},
    "share.read": {"own": set(), "other": READERS},
    "share.subscribe": {"own": set(), "other": READERS},
    "share.object": {"own": set(), "other": READERS},
}
EXPECTED: dict[str, dict[str, set[str]]] = {**ACCOUNTS, **SECURITY, **CATALOG, **COLLECT, **SHARE}


def test_every_operation_has_expectations() -> None:
    missing = sorted(set(REGISTRY) - set(EXPECTED))
    assert not missing, (
        f"add rows for these operations to tests/unit/test_authz_matrix.py: {missing}"
    )
    stale = sorted(set(EXPECTED) - set(REGISTRY))
    assert not stale, f"these rows name operations that no longer exist: {stale}"


CASES = [
    (operation, relation, name)
    for operation, rows in sorted(EXPECTED.items())
    for relation in ("own", "other")
    for name in SUBJECTS
]


@pytest.mark.parametrize(("operation", "relation", "name"), CASES)
def test_matrix(operation: str, relation: str, name: str) -> None:
    rows = EXPECTED[operation]
    allowed = name in rows.get("any", rows.get(relation, set()))
    granted = check(subject(name), operation, target(operation, relation)) is not None
    assert granted == allowed, (
        f"{name} {'should' if allowed else 'must not'} {operation} ({relation})"
    )


def test_self_may_view_own_account_but_not_disable_it() -> None:
    me = subject("consumer")
    assert check(me, "user.view", FakeUser(id=me.user_id or 0)) is not None
    assert check(me, "user.disable", FakeUser(id=me.user_id or 0)) is None


def test_dept_admin_cannot_hand_out_platform_roles() -> None:
    admin = subject("dept_admin")
    for role in (Role.PLATFORM_OPERATOR, Role.SECURITY_AUDITOR, Role.DEPT_ADMIN):
        staff = FakeUser(id=20, roles=[FakeAssignment(OWN, Role.CONSUMER)])
        assert check(admin, "role.assign", RoleChange(staff, OWN, role)) is None


def test_dept_admin_cannot_manage_an_operator_in_their_department() -> None:
    admin = subject("dept_admin")
    operator = FakeUser(id=30, roles=[FakeAssignment(OWN, Role.PLATFORM_OPERATOR)])
    assert check(admin, "user.disable", operator) is None


@pytest.mark.parametrize(
    "operation", sorted(o for o, op in REGISTRY.items() if op.scope == "write")
)
def test_read_only_key_cannot_write(operation: str) -> None:
    operator = subject("platform_operator", scopes=frozenset({"read"}))
    assert check(operator, operation, target(operation, "own")) is None


def test_unknown_operation_is_denied() -> None:
    assert check(subject("platform_operator"), "no.such.operation") is None
