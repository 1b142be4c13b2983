"""Role escalation and separation of duties (三员分立, GB/T 39477) — issue 10, class 6.

The examples found, as the HTTP calls that made them, each refused with nothing changed; then two
generated matrices with 0 wrong answers: the platform roles × every registered operation (a new
operation is in it the moment it is declared), and a department admin × every other department's
staff × every staff-management action. The data side, through a real exchange, is in
test_roles_data.py.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from kuaishu.accounts import services
from kuaishu.accounts.actor import Actor
from kuaishu.accounts.models import Department, RoleAssignment, User
from kuaishu.accounts.policies import RoleChange
from kuaishu.accounts.roles import DATA_ROLES, PLATFORM_ROLES, Role
from kuaishu.authz import REGISTRY, check
from kuaishu.demo import credit_code_for
from kuaishu.errors import AppError
from kuaishu.pagination import PageRequest
from tests import factories as f
from tests.http import ok, refused

USERS = "/api/v1/users"

# Escalation through the accounts API ---------------------------------------------------------------


@dataclass
class Office:
    """A department admin's department with a colleague in it, another department with its chief
    data officer, and the platform's three separated roles seated in the admin's department."""

    mine: Department
    theirs: Department
    admin: User
    colleague: User
    officer_elsewhere: User
    operator: User
    security_admin: User
    auditor: User
    keys: dict[str, dict[str, str]]


@pytest.fixture
def office(db: Session) -> Office:
    mine, theirs = f.department(db), f.department(db)
    people = {
        "admin": f.user(db, roles=[Role.DEPT_ADMIN], dept=mine),
        "colleague": f.user(db, roles=[Role.CATALOGUER], dept=mine),
        "officer_elsewhere": f.user(db, roles=[Role.DATA_OFFICER], dept=theirs),
        "operator": f.user(db, roles=[Role.PLATFORM_OPERATOR], dept=mine),
        "security_admin": f.user(db, roles=[Role.SECURITY_ADMIN], dept=mine),
        "auditor": f.user(db, roles=[Role.SECURITY_AUDITOR], dept=mine),
    }
    keys = {who: {"X-API-Key": f.api_key(db, u)} for who, u in people.items()}
    db.commit()
    return Office(mine=mine, theirs=theirs, keys=keys, **people)


def accounts_state(db: Session) -> list[tuple[Any, ...]]:
    """Every account with what could be changed about it: roles, password, whether active."""
    db.expire_all()
    users = db.scalars(select(User).order_by(User.id)).all()
    assignments = db.execute(
        select(RoleAssignment.user_id, RoleAssignment.department_id, RoleAssignment.role).order_by(
            RoleAssignment.id
        )
    ).all()
    return [(u.id, u.username, u.password_hash, u.is_active) for u in users] + [
        tuple(a) for a in assignments
    ]


@dataclass(frozen=True)
class Attempt:
    name: str
    who: str
    method: str
    path: Callable[[Office], str]
    body: Callable[[Office], dict[str, Any]]
    status: int
    code: str


def _role(user: str, department: str, role: Role) -> Callable[[Office], dict[str, Any]]:
    return lambda o: {"department_id": getattr(o, department).id, "role": role.value}


def _new(department: str, *roles: Role) -> Callable[[Office], dict[str, Any]]:
    return lambda o: {
        "username": f"new-{'-'.join(roles) or 'none'}",
        "display_name": "新账户",
        "password": f.PASSWORD,
        "department_id": getattr(o, department).id,
        "roles": [r.value for r in roles],
    }


def _of(user: str, tail: str = "roles") -> Callable[[Office], str]:
    return lambda o: f"{USERS}/{getattr(o, user).id}/{tail}"


DENIED = (403, "permission_denied")
SEPARATION = (409, "separation_of_duties")
ATTEMPTS = [
    # The examples found.
    Attempt("admin gives the security auditor a role in its department", "admin", "POST",
            _of("auditor"), _role("auditor", "mine", Role.CATALOGUER), *DENIED),
    Attempt("admin gives another department's chief data officer a role in its department",
            "admin", "POST", _of("officer_elsewhere"),
            _role("officer_elsewhere", "mine", Role.DATA_OFFICER), *DENIED),
    Attempt("admin makes itself data officer", "admin", "POST", _of("admin"),
            _role("admin", "mine", Role.DATA_OFFICER), *DENIED),
    # The class around them: a department admin.
    Attempt("admin grants a role it does not hold (department admin)", "admin", "POST",
            _of("colleague"), _role("colleague", "mine", Role.DEPT_ADMIN), *DENIED),
    Attempt("admin grants a platform role to its own staff", "admin", "POST", _of("colleague"),
            _role("colleague", "mine", Role.SECURITY_AUDITOR), *DENIED),
    Attempt("admin grants its staff a role in another department", "admin", "POST",
            _of("colleague"), _role("colleague", "theirs", Role.CONSUMER), *DENIED),
    Attempt("admin gives the operator a data role", "admin", "POST", _of("operator"),
            _role("operator", "mine", Role.CONSUMER), *DENIED),
    Attempt("admin creates an auditor", "admin", "POST", lambda o: USERS,
            _new("mine", Role.SECURITY_AUDITOR), *DENIED),
    Attempt("admin creates staff in another department", "admin", "POST", lambda o: USERS,
            _new("theirs", Role.CONSUMER), *DENIED),
    Attempt("admin disables another department's officer", "admin", "POST",
            _of("officer_elsewhere", "disable"), lambda o: {"reason": "越权"}, *DENIED),
    Attempt("admin resets the auditor's password", "admin", "POST",
            _of("auditor", "password-reset"), lambda o: {"new_password": "Other-Passw0rd!"},
            *DENIED),
    Attempt("admin resets its own password as an administrator", "admin", "POST",
            _of("admin", "password-reset"), lambda o: {"new_password": "Other-Passw0rd!"},
            *DENIED),
    # The platform roles: appointed at the shell only, held alone, never silencing each other.
    Attempt("operator makes itself a data officer", "operator", "POST", _of("operator"),
            _role("operator", "mine", Role.DATA_OFFICER), *DENIED),
    Attempt("operator appoints a security auditor", "operator", "POST", _of("colleague"),
            _role("colleague", "mine", Role.SECURITY_AUDITOR), *DENIED),
    Attempt("operator creates an auditor", "operator", "POST", lambda o: USERS,
            _new("mine", Role.SECURITY_AUDITOR), *DENIED),
    Attempt("operator creates an account both operator and cataloguer", "operator", "POST",
            lambda o: USERS, _new("mine", Role.PLATFORM_OPERATOR, Role.CATALOGUER), *SEPARATION),
    Attempt("operator creates an account both auditor and security admin", "operator", "POST",
            lambda o: USERS, _new("mine", Role.SECURITY_AUDITOR, Role.SECURITY_ADMIN),
            *SEPARATION),
    Attempt("operator gives the auditor a consumer role", "operator", "POST", _of("auditor"),
            _role("auditor", "theirs", Role.CONSUMER), *DENIED),
    Attempt("operator resets the auditor's password", "operator", "POST",
            _of("auditor", "password-reset"), lambda o: {"new_password": "Other-Passw0rd!"},
            *DENIED),
    Attempt("operator disables the auditor", "operator", "POST", _of("auditor", "disable"),
            lambda o: {"reason": "不想被审计"}, *DENIED),
    Attempt("operator disables the security admin", "operator", "POST",
            _of("security_admin", "disable"), lambda o: {"reason": "越权"}, *DENIED),
    Attempt("security admin grants itself a data role", "security_admin", "POST",
            _of("security_admin"), _role("security_admin", "mine", Role.CONSUMER), *DENIED),
    Attempt("auditor grants a colleague a role", "auditor", "POST", _of("colleague"),
            _role("colleague", "mine", Role.REVIEWER), *DENIED),
]  # fmt: skip


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=lambda a: a.name)
def test_escalation_is_refused_and_nothing_changes(
    client: TestClient, db: Session, office: Office, attempt: Attempt
) -> None:
    before = accounts_state(db)
    response = client.request(
        attempt.method,
        attempt.path(office),
        json=attempt.body(office),
        headers=office.keys[attempt.who],
    )
    error = refused(response, attempt.status, attempt.code)
    assert error["message"], "the refusal says what was refused"
    assert accounts_state(db) == before


def test_revoking_is_bound_like_granting(client: TestClient, db: Session, office: Office) -> None:
    before = accounts_state(db)
    for who, user, department, role in (
        ("admin", office.officer_elsewhere, office.theirs, Role.DATA_OFFICER),
        ("admin", office.auditor, office.mine, Role.SECURITY_AUDITOR),
        ("admin", office.admin, office.mine, Role.DEPT_ADMIN),
        ("operator", office.auditor, office.mine, Role.SECURITY_AUDITOR),
    ):
        response = client.delete(
            f"{USERS}/{user.id}/roles",
            params={"department_id": department.id, "role": role.value},
            headers=office.keys[who],
        )
        refused(response, 403, "permission_denied")
    assert accounts_state(db) == before


def test_what_a_department_admin_and_the_operator_still_do(
    client: TestClient, db: Session, office: Office
) -> None:
    """The guards are not blanket refusals: the admin staffs its own department, the operator
    appoints department roles — the same calls that were refused above, on the right targets."""
    made = ok(
        client.post(
            _of("colleague")(office),
            json={"department_id": office.mine.id, "role": "reviewer"},
            headers=office.keys["admin"],
        ),
        201,
    )
    assert {r["role"] for r in made["roles"]} == {"cataloguer", "reviewer"}
    created = ok(
        client.post(USERS, json=_new("mine", Role.CONSUMER)(office), headers=office.keys["admin"]),
        201,
    )
    ok(
        client.post(
            f"{USERS}/{created['id']}/password-reset",
            json={"new_password": "Other-Passw0rd!"},
            headers=office.keys["admin"],
        )
    )
    ok(
        client.post(
            _of("colleague")(office),
            json={"department_id": office.mine.id, "role": "dept_admin"},
            headers=office.keys["operator"],
        ),
        201,
    )


def test_the_admin_lists_only_the_staff_it_manages(
    client: TestClient, db: Session, office: Office
) -> None:
    listed = ok(client.get(USERS, params={"page_size": 200}, headers=office.keys["admin"]))["items"]
    names = {u["username"] for u in listed}
    assert office.colleague.username in names
    for outsider in (office.operator, office.auditor, office.security_admin, office.admin):
        assert outsider.username not in names


def _cli(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUAISHU_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    env.pop("KUAISHU_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "kuaishu.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_kuaishu_user_add_keeps_the_platform_roles_apart(tmp_path: Path) -> None:
    assert _cli(["init"], tmp_path).returncode == 0
    assert _cli(["region-add", "520000", "贵州省", "province"], tmp_path).returncode == 0
    credit = credit_code_for("MB1526010", "520000")
    added = _cli(["dept", "add", "52001", "大数据局", credit, "--region-code", "520000"], tmp_path)
    assert added.returncode == 0, added.stdout

    def user_add(name: str, *roles: Role) -> subprocess.CompletedProcess[str]:
        flags = [x for r in roles for x in ("--role", r.value)]
        args = ["user", "add", name, "某人", "--department", "52001", *flags]
        return _cli([*args, "--password", f.PASSWORD], tmp_path)

    for roles in (
        (Role.PLATFORM_OPERATOR, Role.CATALOGUER),
        (Role.SECURITY_AUDITOR, Role.CONSUMER),
        (Role.SECURITY_ADMIN, Role.PLATFORM_OPERATOR),
        (Role.SECURITY_AUDITOR, Role.DEPT_ADMIN),
    ):
        mixed = user_add("mixed", *roles)
        assert mixed.returncode == 2 and "separation_of_duties" in mixed.stdout, mixed.stdout
    assert user_add("secadmin", Role.SECURITY_ADMIN).returncode == 0
    listed = _cli(["user", "list"], tmp_path).stdout
    assert "secadmin" in listed and "mixed" not in listed


# Generated: the platform roles × every registered operation ------------------------------------

OWN, OTHER = 1, 2
# Every platform role may use its own account and see what every signed-in user sees.
ANY_ACCOUNT = {
    "account.view",
    "account.change_password",
    "apikey.create",
    "apikey.list",
    "apikey.revoke",
    "console.view",
    "region.list",
    "department.list",
    "catalog.read",
    "catalog.negative_list",
}
# What each platform role may do beyond that. Everything else the registry holds — every data
# operation, today's and any declared later — must be refused to it, whatever the target.
PLATFORM_DUTIES: dict[Role, set[str]] = {
    Role.PLATFORM_OPERATOR: {
        # accounts and organisation
        *(op for op in REGISTRY if op.startswith(("region.", "department.", "user.", "role."))),
        # metadata and oversight: catalog review, loads, masking and rules, the exchange
        "catalog.review",
        "catalog.publish",
        "catalog.withdraw",
        "catalog.view_department",
        "catalog.overdue_all",
        "catalog.elements",
        "catalog.import",
        "collect.manage_source",
        "collect.load",
        "collect.push",
        "collect.cancel",
        "collect.view",
        "store.publish",
        "clean.manage_rules",
        "clean.manage_masking",
        "clean.view",
        "clean.override_release",
        "share.browse",
        "share.view",
        "share.arbitrate",
        "share.manage_grant",
        # the outbound allow list (sources, push endpoints, sync targets) is the operator's
        "egress.manage",
        "egress.view",
    },
    Role.SECURITY_ADMIN: set(),
    Role.SECURITY_AUDITOR: {"audit.read", "audit.export"},
}
# Reads of data, and the data roles' work: never a platform role's.
MUST_BE_REFUSED = {
    "data.read_own",
    "share.read",
    "share.subscribe",
    "share.object",
    "share.apply",
    "share.decide",
    "clean.decrypt",
    "catalog.create",
    "catalog.edit",
    "catalog.submit",
}


@dataclass(frozen=True)
class Assigned:
    department_id: int
    role: Role


@dataclass(frozen=True)
class Anything:
    """A target belonging to the subject's department (or another) in every way a policy may
    ask: an entry of ``provider``, an application or grant from ``provider`` to ``consumer``, an
    account whose only role is in ``provider``."""

    provider: int
    consumer: int
    id: int = 77

    @property
    def department_id(self) -> int:
        return self.provider

    @property
    def provider_department_id(self) -> int:
        return self.provider

    @property
    def consumer_department_id(self) -> int:
        return self.consumer

    @property
    def roles(self) -> list[Assigned]:
        return [Assigned(self.provider, Role.CONSUMER)]


def targets() -> list[Any]:
    found: list[Any] = [None, OWN, OTHER]
    pairs = list(itertools.product((OWN, OTHER), repeat=2))
    found += [Anything(p, c) for p, c in pairs]
    found += [
        RoleChange(user, department, role)
        for user in (None, *(Anything(p, c) for p, c in pairs))
        for department in (OWN, OTHER)
        for role in Role
    ]
    return found


TARGETS = targets()


def platform_subject(role: Role) -> Actor:
    return Actor(
        user_id=10, username=role.value, roles=frozenset({(OWN, role)}), auth_method="session"
    )


def test_the_platform_duties_name_real_operations() -> None:
    named = set().union(*PLATFORM_DUTIES.values()) | ANY_ACCOUNT | MUST_BE_REFUSED
    assert named <= set(REGISTRY), sorted(named - set(REGISTRY))
    assert not MUST_BE_REFUSED & set().union(*PLATFORM_DUTIES.values())


@pytest.mark.parametrize("role", sorted(PLATFORM_ROLES))
def test_platform_roles_by_every_operation(role: Role) -> None:
    subject = platform_subject(role)
    allowed = PLATFORM_DUTIES[role] | ANY_ACCOUNT
    wrong: list[str] = []
    for operation in sorted(REGISTRY):
        answers = [check(subject, operation, target) is not None for target in TARGETS]
        if operation in allowed and not any(answers):
            wrong.append(f"{role} should be able to {operation}")
        if operation not in allowed and any(answers):
            granted = [t for t, a in zip(TARGETS, answers, strict=True) if a]
            wrong.append(f"{role} must not {operation} (granted on {granted[0]!r})")
    assert not wrong, f"{len(wrong)} wrong answers:\n" + "\n".join(wrong)


def test_an_admin_of_two_departments_keeps_their_staff_apart() -> None:
    """Staff of one department do not become staff of the other through their shared admin."""
    admin = Actor(
        user_id=10,
        username="admin",
        roles=frozenset({(OWN, Role.DEPT_ADMIN), (OTHER, Role.DEPT_ADMIN)}),
        auth_method="session",
    )
    staff = Anything(OWN, OWN)
    assert check(admin, "role.assign", RoleChange(staff, OWN, Role.REVIEWER)) is not None
    assert check(admin, "role.assign", RoleChange(staff, OTHER, Role.REVIEWER)) is None


# Generated: a department admin × every other department's staff × every staff action --------------

MANAGEMENT = sorted(op for op in REGISTRY if op.startswith(("user.", "role.")))
NEW_PASSWORD = "Other-Passw0rd!"
_made = itertools.count(1)


@dataclass(frozen=True)
class Try:
    """One way to carry out a staff-management operation."""

    operation: str
    run: Callable[[], object]
    role: Role | None = None
    department: int | None = None

    def __str__(self) -> str:
        where = f" {self.role} in department {self.department}" if self.role else ""
        return f"{self.operation}{where}"


def attempts(db: Session, actor: Actor, operation: str, target: User, mine: int) -> list[Try]:
    """Every way to carry out ``operation`` on ``target``: each role, in the target's
    departments and the admin's."""
    uid = target.id
    where = sorted({a.department_id for a in target.roles} | {mine})
    if operation == "user.list":
        return [
            Try(operation, lambda: services.list_users(db, actor=actor, page=PageRequest(1, 500)))
        ]
    if operation == "user.view":
        return [Try(operation, lambda: services.view_user(db, uid, actor=actor))]
    if operation == "user.disable":
        return [
            Try(
                operation,
                lambda: services.disable_user(db, actor=actor, user_id=uid, reason="越权"),
            )
        ]
    if operation == "user.enable":
        return [Try(operation, lambda: services.enable_user(db, actor=actor, user_id=uid))]
    if operation == "user.reset_password":
        return [
            Try(
                operation,
                lambda: services.reset_password(
                    db, actor=actor, user_id=uid, new_password=NEW_PASSWORD
                ),
            )
        ]
    if operation in ("role.assign", "role.revoke"):
        act = services.assign_role if operation == "role.assign" else services.revoke_role

        def change(role: Role, department: int) -> Callable[[], object]:
            return lambda: act(db, actor=actor, user_id=uid, department_id=department, role=role)

        return [Try(operation, change(r, d), r, d) for r in Role for d in where]
    if operation == "user.create":

        def create(role: Role, department: int) -> Callable[[], object]:
            return lambda: services.create_staff_user(
                db,
                actor=actor,
                username=f"made{next(_made)}",
                display_name="新账户",
                password=f.PASSWORD,
                department_id=department,
                roles=[role],
            )

        return [Try(operation, create(r, d), r, d) for r in Role for d in where]
    raise AssertionError(f"say how to attempt {operation!r} in tests/security/test_roles.py")


def its_right(attempt: Try, target: User, mine: int, *, itself: bool) -> bool:
    """Whether the admin of ``mine`` may make ``attempt`` on ``target``: only on its own
    department's staff (data roles, all in ``mine``), handing out data roles there; creating
    staff with a data role there; viewing its own account."""
    if attempt.operation == "user.create":
        return attempt.department == mine and attempt.role in DATA_ROLES
    if itself:
        return attempt.operation == "user.view"
    held = {(a.department_id, a.role) for a in target.roles}
    staff = bool(held) and all(d == mine and r in DATA_ROLES for d, r in held)
    if attempt.operation.startswith("role."):
        return staff and attempt.department == mine and attempt.role in DATA_ROLES
    return staff


@dataclass
class Staffing:
    admin: User
    mine: Department
    others: list[Department]
    strangers: dict[str, User]  # what the admin must not manage, by description


@pytest.fixture
def staffing(db: Session) -> Staffing:
    mine = f.department(db)
    others = [f.department(db), f.department(db)]
    admin = f.user(db, roles=[Role.DEPT_ADMIN], dept=mine)
    strangers: dict[str, User] = {"itself": admin}
    for n, department in enumerate(others):
        for role in Role:
            strangers[f"{role} of department {n + 1}"] = f.user(db, roles=[role], dept=department)
    for role in (*sorted(PLATFORM_ROLES), Role.DEPT_ADMIN):
        strangers[f"{role} seated in the admin's department"] = f.user(db, roles=[role], dept=mine)
    both = f.user(db, roles=[Role.CONSUMER], dept=mine)
    services.assign_role(
        db, actor=f.ROOT, user_id=both.id, department_id=others[0].id, role=Role.CATALOGUER
    )
    strangers["a consumer here who is also a cataloguer elsewhere"] = both
    strangers["an account with no role"] = f.user(db, roles=[], dept=mine)
    return Staffing(admin=admin, mine=mine, others=others, strangers=strangers)


def test_department_admin_by_every_other_department_s_staff_by_every_action(
    db: Session, staffing: Staffing
) -> None:
    actor = f.actor(staffing.admin)
    mine = staffing.mine.id
    before = accounts_state(db)
    wrong: list[str] = []
    tried = 0
    for who, target in staffing.strangers.items():
        for operation in MANAGEMENT:
            for attempt in attempts(db, actor, operation, target, mine):
                if its_right(attempt, target, mine, itself=who == "itself"):
                    continue  # creating its own staff, viewing itself: below, not here
                tried += 1
                try:
                    result = attempt.run()
                except AppError as error:
                    if error.status != 403:
                        wrong.append(f"{attempt} on {who}: {error.status} {error.code}, not 403")
                    continue
                if operation == "user.list":
                    if target.id in {u.id for u in result.items}:  # type: ignore[attr-defined]
                        wrong.append(f"{who} is listed among the admin's staff")
                    continue
                wrong.append(f"{attempt} on {who}: allowed")
    assert tried > 500, tried
    assert not wrong, f"{len(wrong)} wrong answers of {tried}:\n" + "\n".join(wrong)
    assert accounts_state(db) == before


@pytest.mark.parametrize("role", sorted(DATA_ROLES))
def test_the_same_actions_on_its_own_staff_succeed(db: Session, role: Role) -> None:
    """The other half of 0 wrong answers: the admin is refused none of its rights."""
    mine = f.department(db)
    actor = f.actor(f.user(db, roles=[Role.DEPT_ADMIN], dept=mine))
    for operation in MANAGEMENT:
        target = f.user(db, roles=[role], dept=mine)
        for attempt in attempts(db, actor, operation, target, mine.id):
            if not its_right(attempt, target, mine.id, itself=False):
                continue
            if attempt.operation == "role.assign" and attempt.role == role:
                continue  # already held: a 409, not a refusal
            if attempt.operation == "role.revoke" and attempt.role != role:
                continue  # not held: a 404
            result = attempt.run()
            if operation == "user.list":
                assert target.id in {u.id for u in result.items}  # type: ignore[attr-defined]
