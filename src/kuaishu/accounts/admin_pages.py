"""Operator and department-admin pages: regions, departments, users and their roles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from kuaishu.accounts import services
from kuaishu.accounts.actor import Actor
from kuaishu.accounts.models import Department, User
from kuaishu.accounts.policies import RoleChange
from kuaishu.accounts.roles import LEVEL_LABELS, ROLE_LABELS, LevelKind, Role
from kuaishu.authz import authorize, check
from kuaishu.errors import AppError
from kuaishu.pagination import PageRequest
from kuaishu.web.deps import CurrentActor, PageDep, SessionDep
from kuaishu.web.forms import redirect
from kuaishu.web.templating import render

router = APIRouter(prefix="/admin", include_in_schema=False)
ALL = PageRequest(page=1, page_size=10_000)


def _regions_page(
    request: Request, db: SessionDep, actor: CurrentActor, **extra: object
) -> Response:
    regions = services.list_regions(db, actor=actor, page=ALL).items
    status = extra.pop("status_code", 200)
    return render(
        request,
        "admin/regions.html",
        {"regions": regions, "levels": LEVEL_LABELS, "form": {}, **extra},
        status_code=int(status),  # type: ignore[call-overload]
    )


@router.get("/regions")
def regions(request: Request, db: SessionDep, actor: CurrentActor) -> Response:
    authorize(actor, "region.create")
    return _regions_page(request, db, actor)


@router.post("/regions")
def create_region(
    request: Request,
    db: SessionDep,
    actor: CurrentActor,
    code: Annotated[str, Form(max_length=12)],
    name: Annotated[str, Form(max_length=100)],
    level: Annotated[LevelKind, Form()],
    parent_id: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    try:
        services.create_region(
            db,
            actor=actor,
            code=code,
            name=name,
            level=level,
            parent_id=int(parent_id) if parent_id.isdigit() else None,
        )
    except AppError as exc:
        db.rollback()
        form = {"code": code, "name": name, "level": level, "parent_id": parent_id}
        return _regions_page(request, db, actor, error=exc, form=form, status_code=exc.status)
    return redirect("/admin/regions", "created")


def _departments_page(
    request: Request,
    db: SessionDep,
    actor: CurrentActor,
    page: PageRequest,
    q: str | None,
    **extra: object,
) -> Response:
    result = services.list_departments(db, actor=actor, page=page, q=q)
    regions = services.list_regions(db, actor=actor, page=ALL).items
    status = extra.pop("status_code", 200)
    return render(
        request,
        "admin/departments.html",
        {"result": result, "regions": regions, "q": q or "", "form": {}, **extra},
        status_code=int(status),  # type: ignore[call-overload]
    )


@router.get("/departments")
def departments(
    request: Request,
    db: SessionDep,
    actor: CurrentActor,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    authorize(actor, "department.create")
    return _departments_page(request, db, actor, page, q)


@router.post("/departments")
def create_department(
    request: Request,
    db: SessionDep,
    actor: CurrentActor,
    code: Annotated[str, Form(max_length=5)],
    name: Annotated[str, Form(max_length=200)],
    credit_code: Annotated[str, Form(max_length=18)],
    region_id: Annotated[int, Form()],
    contact: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        services.create_department(
            db,
            actor=actor,
            code=code,
            name=name,
            credit_code=credit_code,
            region_id=region_id,
            contact=contact or None,
        )
    except AppError as exc:
        db.rollback()
        form = {
            "code": code,
            "name": name,
            "credit_code": credit_code,
            "region_id": region_id,
            "contact": contact,
        }
        return _departments_page(
            request, db, actor, PageRequest(), None, error=exc, form=form, status_code=exc.status
        )
    return redirect("/admin/departments", "created")


@router.get("/users")
def users(
    request: Request,
    db: SessionDep,
    actor: CurrentActor,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=100)] = None,
    department_id: int | None = None,
) -> Response:
    result = services.list_users(db, actor=actor, page=page, q=q, department_id=department_id)
    departments_list = services.list_departments(db, actor=actor, page=ALL).items
    return render(
        request,
        "admin/users.html",
        {
            "result": result,
            "q": q or "",
            "department_id": department_id,
            "departments": departments_list,
        },
    )


def _grantable(actor: Actor, departments: list[Department]) -> dict[Role, str]:
    """The roles ``actor`` may hand out in one of ``departments``: the only ones offered."""
    return {
        role: label
        for role, label in ROLE_LABELS.items()
        if any(check(actor, "role.assign", RoleChange(None, d.id, role)) for d in departments)
    }


def _detail(actor: Actor, user: User, departments: list[Department]) -> dict[str, object]:
    """What the account page offers: the roles the actor may grant, and which held ones it may
    revoke."""
    revocable = {
        (a.department_id, a.role)
        for a in user.roles
        if check(actor, "role.revoke", RoleChange(user, a.department_id, a.role))
    }
    return {
        "account": user,
        "departments": departments,
        "roles": _grantable(actor, departments),
        "revocable": revocable,
    }


def _new_user_page(
    request: Request, db: SessionDep, actor: CurrentActor, **extra: object
) -> Response:
    departments_list = [
        d
        for d in services.list_departments(db, actor=actor, page=ALL).items
        if actor.has_role(Role.PLATFORM_OPERATOR) or actor.has_role_in(Role.DEPT_ADMIN, d.id)
    ]
    status = extra.pop("status_code", 200)
    return render(
        request,
        "admin/user_new.html",
        {
            "departments": departments_list,
            "roles": _grantable(actor, departments_list),
            "form": {},
            **extra,
        },
        status_code=int(status),  # type: ignore[call-overload]
    )


@router.get("/users/new")
def new_user(request: Request, db: SessionDep, actor: CurrentActor) -> Response:
    authorize(actor, "user.list")
    return _new_user_page(request, db, actor)


@router.post("/users/new")
def create_user(
    request: Request,
    db: SessionDep,
    actor: CurrentActor,
    username: Annotated[str, Form(max_length=150)],
    display_name: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=256)],
    department_id: Annotated[int, Form()],
    roles: Annotated[list[Role] | None, Form()] = None,
    email: Annotated[str, Form(max_length=254)] = "",
    phone: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    try:
        user = services.create_staff_user(
            db,
            actor=actor,
            username=username,
            display_name=display_name,
            password=password,
            department_id=department_id,
            roles=roles or [],
            email=email or None,
            phone=phone or None,
        )
    except AppError as exc:
        db.rollback()
        form = {
            "username": username,
            "display_name": display_name,
            "department_id": department_id,
            "roles": roles or [],
            "email": email,
            "phone": phone,
        }
        return _new_user_page(request, db, actor, error=exc, form=form, status_code=exc.status)
    return redirect(f"/admin/users/{user.id}", "created")


@router.get("/users/{user_id}")
def user_detail(request: Request, user_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    user = services.view_user(db, user_id, actor=actor)
    departments_list = services.list_departments(db, actor=actor, page=ALL).items
    return render(
        request,
        "admin/user_detail.html",
        _detail(actor, user, departments_list),
    )


def _user_action_failed(
    request: Request, db: SessionDep, actor: CurrentActor, user_id: int, exc: AppError
) -> Response:
    db.rollback()
    user = services.view_user(db, user_id, actor=actor)
    departments_list = services.list_departments(db, actor=actor, page=ALL).items
    return render(
        request,
        "admin/user_detail.html",
        {**_detail(actor, user, departments_list), "error": exc},
        status_code=exc.status,
    )


@router.post("/users/{user_id}/disable")
def disable_user(
    request: Request,
    user_id: int,
    db: SessionDep,
    actor: CurrentActor,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    try:
        services.disable_user(db, actor=actor, user_id=user_id, reason=reason)
    except AppError as exc:
        return _user_action_failed(request, db, actor, user_id, exc)
    return redirect(f"/admin/users/{user_id}", "disabled")


@router.post("/users/{user_id}/enable")
def enable_user(user_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    services.enable_user(db, actor=actor, user_id=user_id)
    return redirect(f"/admin/users/{user_id}", "enabled")


@router.post("/users/{user_id}/roles")
def assign_role(
    request: Request,
    user_id: int,
    db: SessionDep,
    actor: CurrentActor,
    department_id: Annotated[int, Form()],
    role: Annotated[Role, Form()],
) -> Response:
    try:
        services.assign_role(
            db, actor=actor, user_id=user_id, department_id=department_id, role=role
        )
    except AppError as exc:
        return _user_action_failed(request, db, actor, user_id, exc)
    return redirect(f"/admin/users/{user_id}", "role_assigned")


@router.post("/users/{user_id}/roles/revoke")
def revoke_role(
    user_id: int,
    db: SessionDep,
    actor: CurrentActor,
    department_id: Annotated[int, Form()],
    role: Annotated[Role, Form()],
) -> Response:
    services.revoke_role(db, actor=actor, user_id=user_id, department_id=department_id, role=role)
    return redirect(f"/admin/users/{user_id}", "role_revoked")


@router.post("/users/{user_id}/password")
def reset_password(
    request: Request,
    user_id: int,
    db: SessionDep,
    actor: CurrentActor,
    new_password: Annotated[str, Form(max_length=256)],
) -> Response:
    try:
        services.reset_password(db, actor=actor, user_id=user_id, new_password=new_password)
    except AppError as exc:
        return _user_action_failed(request, db, actor, user_id, exc)
    return redirect(f"/admin/users/{user_id}", "password_reset")
