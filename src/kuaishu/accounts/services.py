"""Account operations: regions, departments, users and roles. Callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kuaishu.accounts import passwords
from kuaishu.accounts.actor import Actor
from kuaishu.accounts.identifiers import (
    mask_id_number,
    normalize_credit_code,
    normalize_id_number,
    validate_department_code,
)
from kuaishu.accounts.models import ApiKey, Department, Region, RoleAssignment, User, WebSession
from kuaishu.accounts.policies import RoleChange
from kuaishu.accounts.roles import (
    DATA_ROLES,
    PARENT_LEVEL,
    AccountKind,
    LevelKind,
    Role,
    separation_conflict,
)
from kuaishu.authz import authorize
from kuaishu.db import utcnow
from kuaishu.errors import Conflict, NotFound, ValidationFailed
from kuaishu.pagination import Paged, PageRequest, paginate
from kuaishu.security import audit
from kuaishu.security.crypto import keyring
from kuaishu.security.models import Outcome

ID_NUMBER_PURPOSE = "account.id_number"


def _flush_unique(session: Session, message: str, *, code: str, **params: object) -> None:
    """Flush now so a duplicate surfaces as a clear 409, not a late 500."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        error = Conflict(message, code=code)
        error.params = params
        raise error from exc


def _require_text(value: str, field: str, label: str, *, max_length: int) -> str:
    text = value.strip()
    if not text:
        raise ValidationFailed(
            "{label}不能为空。", code="required", details={"field": field}, label=label
        )
    if len(text) > max_length:
        raise ValidationFailed(
            "{label}不能超过 {n} 个字符。",
            code="too_long",
            details={"field": field},
            label=label,
            n=max_length,
        )
    return text


# Regions ---------------------------------------------------------------------------------------


def list_regions(
    session: Session, *, actor: Actor, page: PageRequest, parent_id: int | None = None
) -> Paged[Region]:
    authorize(actor, "region.list")
    stmt = select(Region).order_by(Region.code)
    if parent_id is not None:
        stmt = stmt.where(Region.parent_id == parent_id)
    return paginate(session, stmt, page)


def get_region(session: Session, region_id: int) -> Region:
    region = session.get(Region, region_id)
    if region is None:
        raise NotFound("行政区不存在。", code="region_not_found")
    return region


def create_region(
    session: Session,
    *,
    actor: Actor,
    code: str,
    name: str,
    level: LevelKind,
    parent_id: int | None = None,
) -> Region:
    """Add a province, city or county; a city sits in a province, a county in a city."""
    grant = authorize(actor, "region.create")
    code = code.strip()
    if not (code.isdigit() and len(code) in (6, 12)):
        raise ValidationFailed(
            "行政区划代码应为 6 位或 12 位数字。",
            code="invalid_region_code",
            details={"field": "code"},
        )
    name = _require_text(name, "name", "名称", max_length=100)
    expected_parent = PARENT_LEVEL[level]
    parent = get_region(session, parent_id) if parent_id is not None else None
    if (parent.level if parent else None) != expected_parent:
        raise ValidationFailed(
            "上级行政区层级不正确：省级无上级，市级属于省级，县级属于市级。",
            code="invalid_region_parent",
            details={"field": "parent_id"},
        )
    region = Region(code=code, name=name, level=level, parent_id=parent_id)
    session.add(region)
    _flush_unique(session, "行政区划代码 {value} 已存在。", code="duplicate_region", value=code)
    audit.record(
        session,
        actor,
        "region.create",
        target_type="region",
        target_id=region.id,
        details={"code": code, "name": name, "level": level},
        as_role=grant,
    )
    return region


# Departments -----------------------------------------------------------------------------------


def list_departments(
    session: Session,
    *,
    actor: Actor,
    page: PageRequest,
    region_id: int | None = None,
    q: str | None = None,
) -> Paged[Department]:
    authorize(actor, "department.list")
    stmt = select(Department).order_by(Department.code)
    if region_id is not None:
        stmt = stmt.where(Department.region_id == region_id)
    if q:
        stmt = stmt.where(Department.name.contains(q) | Department.code.contains(q.upper()))
    return paginate(session, stmt, page)


def get_department(session: Session, department_id: int) -> Department:
    department = session.get(Department, department_id)
    if department is None:
        raise NotFound("部门不存在。", code="department_not_found")
    return department


def get_department_by_code(session: Session, code: str) -> Department:
    department = session.scalar(select(Department).where(Department.code == code.upper()))
    if department is None:
        raise NotFound("部门代码 {value} 不存在。", code="department_not_found", value=code)
    return department


def create_department(
    session: Session,
    *,
    actor: Actor,
    code: str,
    name: str,
    credit_code: str,
    region_id: int,
    contact: str | None = None,
) -> Department:
    """Register a department with its GB/T 21063.5 code and unified social credit code."""
    grant = authorize(actor, "department.create")
    region = get_region(session, region_id)
    code = validate_department_code(code, region_code=region.code, level=region.level)
    credit = normalize_credit_code(credit_code)
    name = _require_text(name, "name", "部门名称", max_length=200)
    if session.scalar(select(Department.id).where(Department.code == code)) is not None:
        raise Conflict("部门代码 {value} 已被使用。", code="duplicate_department", value=code)
    if session.scalar(select(Department.id).where(Department.credit_code == credit)) is not None:
        raise Conflict(
            "统一社会信用代码 {value} 已被其他部门使用。", code="duplicate_department", value=credit
        )
    department = Department(
        code=code, name=name, credit_code=credit, region_id=region.id, contact=contact
    )
    session.add(department)
    _flush_unique(session, "部门代码 {value} 已被使用。", code="duplicate_department", value=code)
    audit.record(
        session,
        actor,
        "department.create",
        target_type="department",
        target_id=department.id,
        details={"code": code, "name": name, "credit_code": credit},
        as_role=grant,
    )
    return department


# Users -----------------------------------------------------------------------------------------


def normalize_username(username: str) -> str:
    value = username.strip().lower()
    if not (3 <= len(value) <= 150) or not all(c.isalnum() or c in "._-@" for c in value):
        raise ValidationFailed(
            "用户名应为 3–150 个字符，只含字母、数字和 . _ - @。",
            code="invalid_username",
            details={"field": "username"},
        )
    return value


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("用户不存在。", code="user_not_found")
    return user


def get_user_by_username(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username.strip().lower()))


def list_users(
    session: Session,
    *,
    actor: Actor,
    page: PageRequest,
    department_id: int | None = None,
    q: str | None = None,
) -> Paged[User]:
    """All users for the operator; a department admin sees their department's staff — accounts
    holding only data roles, all in that department (those it manages)."""
    grant = authorize(actor, "user.list")
    stmt = select(User).order_by(User.username)
    if grant[1] != Role.PLATFORM_OPERATOR:
        department_id = grant[0]
        elsewhere = select(RoleAssignment.user_id).where(
            (RoleAssignment.department_id != department_id)
            | RoleAssignment.role.not_in(sorted(DATA_ROLES))
        )
        stmt = stmt.where(User.id.not_in(elsewhere))
    if department_id is not None:
        stmt = stmt.where(
            User.id.in_(
                select(RoleAssignment.user_id).where(RoleAssignment.department_id == department_id)
            )
        )
    if q:
        stmt = stmt.where(User.username.contains(q.lower()) | User.display_name.contains(q))
    return paginate(session, stmt, page)


def view_user(session: Session, user_id: int, *, actor: Actor) -> User:
    user = get_user(session, user_id)
    authorize(actor, "user.view", user)
    return user


def _new_user(
    session: Session,
    *,
    username: str,
    display_name: str,
    password: str,
    kind: AccountKind,
    email: str | None,
    phone: str | None,
) -> User:
    username = normalize_username(username)
    display_name = _require_text(display_name, "display_name", "姓名", max_length=100)
    passwords.check_policy(password, username=username)
    if get_user_by_username(session, username) is not None:
        raise Conflict("用户名 {value} 已被使用。", code="duplicate_user", value=username)
    user = User(
        username=username,
        display_name=display_name,
        kind=kind,
        email=(email or None),
        phone=(phone or None),
        password_hash=passwords.hash_password(password),
    )
    session.add(user)
    return user


def create_staff_user(
    session: Session,
    *,
    actor: Actor,
    username: str,
    display_name: str,
    password: str,
    department_id: int,
    roles: Sequence[Role],
    email: str | None = None,
    phone: str | None = None,
) -> User:
    """Create a government account holding ``roles`` in ``department_id``."""
    grant = authorize(actor, "user.create", department_id)
    get_department(session, department_id)
    _check_exclusive(set(roles))
    for role in roles:
        authorize(actor, "role.assign", RoleChange(None, department_id, role))
    user = _new_user(
        session,
        username=username,
        display_name=display_name,
        password=password,
        kind=AccountKind.STAFF,
        email=email,
        phone=phone,
    )
    for role in roles:
        user.roles.append(RoleAssignment(department_id=department_id, role=role))
    _flush_unique(session, "用户名 {value} 已被使用。", code="duplicate_user", value=user.username)
    audit.record(
        session,
        actor,
        "user.create",
        target_type="user",
        target_id=user.id,
        details={
            "username": user.username,
            "department_id": department_id,
            "roles": [str(r) for r in roles],
        },
        as_role=grant,
    )
    return user


def register_public_user(
    session: Session,
    *,
    actor: Actor,
    username: str,
    display_name: str,
    password: str,
    id_number: str,
    phone: str | None = None,
    email: str | None = None,
    credit_code: str | None = None,
    organization: str | None = None,
) -> User | None:
    """Self-registration with real name (实名); an enterprise user also gives a credit code.

    One person, one account: an ID number that already has one creates nothing (None) — but the
    caller answers exactly as for a new account, and every check and the password hashing run
    either way, so registering does not tell whether a person has an account."""
    number = normalize_id_number(id_number)
    ring = keyring()
    digest = ring.digest(ID_NUMBER_PURPOSE, number)
    taken = session.scalar(select(User.id).where(User.id_number_digest == digest)) is not None
    kind = AccountKind.PUBLIC
    if credit_code:
        credit_code = normalize_credit_code(credit_code)
        organization = _require_text(organization or "", "organization", "企业名称", max_length=200)
        kind = AccountKind.ENTERPRISE
    user = _new_user(
        session,
        username=username,
        display_name=display_name,
        password=password,
        kind=kind,
        email=email,
        phone=phone,
    )
    if taken:
        session.expunge(user)
        audit.record(
            session,
            actor,
            "user.register",
            target_type="user",
            outcome=Outcome.FAILURE,
            details={"username": user.username, "reason": "id_number_registered"},
        )
        return None
    user.id_number_cipher = ring.encrypt_text(ID_NUMBER_PURPOSE, number)
    user.id_number_digest = digest
    user.id_number_masked = mask_id_number(number)
    user.credit_code = credit_code
    user.organization = organization if credit_code else None
    _flush_unique(session, "用户名 {value} 已被使用。", code="duplicate_user", value=user.username)
    audit.record(
        session,
        actor,
        "user.register",
        target_type="user",
        target_id=user.id,
        details={"username": user.username, "kind": kind},
    )
    return user


def _check_exclusive(roles: set[Role]) -> None:
    conflict = separation_conflict(roles)
    if conflict is not None:
        raise Conflict(
            "职责分离：同一账户不能同时担任“{first}”和“{second}”——平台运营者、安全管理员、"
            "安全审计员各自独任，不兼任任何其他角色。",
            code="separation_of_duties",
            details={"roles": sorted(conflict)},
            first=conflict[0].label,
            second=conflict[1].label,
        )


def assign_role(
    session: Session, *, actor: Actor, user_id: int, department_id: int, role: Role
) -> RoleAssignment:
    """Grant ``role`` in ``department_id``; refused where it breaks separation of duties."""
    user = get_user(session, user_id)
    grant = authorize(actor, "role.assign", RoleChange(user, department_id, role))
    if user.kind != AccountKind.STAFF:
        raise ValidationFailed("只有政务人员账户可以担任部门角色。", code="role_needs_staff")
    get_department(session, department_id)
    _check_exclusive({assignment.role for assignment in user.roles} | {role})
    if any(a.department_id == department_id and a.role == role for a in user.roles):
        raise Conflict("该用户已在此部门担任此角色。", code="duplicate_role")
    assignment = RoleAssignment(department_id=department_id, role=role)
    user.roles.append(assignment)
    _flush_unique(session, "该用户已在此部门担任此角色。", code="duplicate_role")
    audit.record(
        session,
        actor,
        "role.assign",
        target_type="user",
        target_id=user.id,
        details={"department_id": department_id, "role": str(role)},
        as_role=grant,
    )
    return assignment


def revoke_role(
    session: Session, *, actor: Actor, user_id: int, department_id: int, role: Role
) -> None:
    user = get_user(session, user_id)
    grant = authorize(actor, "role.revoke", RoleChange(user, department_id, role))
    found = [a for a in user.roles if a.department_id == department_id and a.role == role]
    if not found:
        raise NotFound("该用户未在此部门担任此角色。", code="role_not_found")
    user.roles.remove(found[0])
    _end_sessions(session, user)
    audit.record(
        session,
        actor,
        "role.revoke",
        target_type="user",
        target_id=user.id,
        details={"department_id": department_id, "role": str(role)},
        as_role=grant,
    )


def _end_sessions(session: Session, user: User) -> int:
    sessions = session.scalars(select(WebSession).where(WebSession.user_id == user.id)).all()
    for web_session in sessions:
        session.delete(web_session)
    return len(sessions)


def disable_user(session: Session, *, actor: Actor, user_id: int, reason: str) -> User:
    """Disable an account: its sessions end and its API keys are revoked at once."""
    user = get_user(session, user_id)
    grant = authorize(actor, "user.disable", user)
    reason = _require_text(reason, "reason", "停用原因", max_length=500)
    if user.id == actor.user_id:
        raise ValidationFailed("不能停用自己的账户。", code="cannot_disable_self")
    user.is_active = False
    ended = _end_sessions(session, user)
    now = utcnow()
    keys = session.scalars(
        select(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
    ).all()
    for key in keys:
        key.revoked_at = now
    audit.record(
        session,
        actor,
        "user.disable",
        target_type="user",
        target_id=user.id,
        details={"reason": reason, "sessions_ended": ended, "keys_revoked": len(keys)},
        as_role=grant,
    )
    return user


def enable_user(session: Session, *, actor: Actor, user_id: int) -> User:
    user = get_user(session, user_id)
    grant = authorize(actor, "user.enable", user)
    user.is_active = True
    user.failed_logins = 0
    user.locked_until = None
    audit.record(
        session, actor, "user.enable", target_type="user", target_id=user.id, as_role=grant
    )
    return user


def reset_password(session: Session, *, actor: Actor, user_id: int, new_password: str) -> User:
    """An administrator sets a new password; the user's sessions end."""
    user = get_user(session, user_id)
    grant = authorize(actor, "user.reset_password", user)
    passwords.check_policy(new_password, username=user.username)
    user.password_hash = passwords.hash_password(new_password)
    user.password_changed_at = utcnow()
    user.failed_logins = 0
    user.locked_until = None
    _end_sessions(session, user)
    audit.record(
        session, actor, "user.reset_password", target_type="user", target_id=user.id, as_role=grant
    )
    return user


def count_users(session: Session) -> int:
    return int(session.scalar(select(func.count(User.id))) or 0)
