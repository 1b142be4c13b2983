"""REST endpoints for regions, departments, users, roles, one's account and API keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from kuaishu.accounts import auth, services
from kuaishu.accounts.roles import Role
from kuaishu.accounts.schemas import (
    ApiKeyIn,
    ApiKeyOut,
    DepartmentIn,
    DepartmentOut,
    DisableIn,
    IssuedApiKeyOut,
    PasswordChangeIn,
    PasswordResetIn,
    RegionIn,
    RegionOut,
    RegistrationIn,
    RegistrationOut,
    RoleAssignmentIn,
    UserIn,
    UserOut,
)
from kuaishu.authz import authorize
from kuaishu.pagination import Paged, PageOut
from kuaishu.schemas import Output
from kuaishu.web.deps import ActorDep, CurrentActor, PageDep, SessionDep
from kuaishu.web.forms import notice_text

router = APIRouter(prefix="/api/v1", tags=["accounts"])


def page_out(result: Paged[Any], model: type[Output]) -> dict[str, object]:
    """The page as the one list shape every endpoint returns."""
    return {
        "items": [model.model_validate(item) for item in result.items],
        "page": result.page,
        "page_size": result.page_size,
        "total": result.total,
        "pages": result.pages,
    }


@router.get("/regions", response_model=PageOut[RegionOut], summary="行政区列表")
def list_regions(
    db: SessionDep, actor: CurrentActor, page: PageDep, parent_id: int | None = None
) -> dict[str, object]:
    result = services.list_regions(db, actor=actor, page=page, parent_id=parent_id)
    return page_out(result, RegionOut)


@router.post("/regions", response_model=RegionOut, status_code=201, summary="新建行政区")
def create_region(body: RegionIn, db: SessionDep, actor: CurrentActor) -> object:
    return services.create_region(db, actor=actor, **body.model_dump())


@router.get("/departments", response_model=PageOut[DepartmentOut], summary="部门列表")
def list_departments(
    db: SessionDep,
    actor: CurrentActor,
    page: PageDep,
    region_id: int | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, object]:
    result = services.list_departments(db, actor=actor, page=page, region_id=region_id, q=q)
    return page_out(result, DepartmentOut)


@router.post("/departments", response_model=DepartmentOut, status_code=201, summary="新建部门")
def create_department(body: DepartmentIn, db: SessionDep, actor: CurrentActor) -> object:
    return services.create_department(db, actor=actor, **body.model_dump())


@router.get("/departments/{department_id}", response_model=DepartmentOut, summary="部门详情")
def get_department(department_id: int, db: SessionDep, actor: CurrentActor) -> object:
    authorize(actor, "department.list")
    return services.get_department(db, department_id)


@router.get("/users", response_model=PageOut[UserOut], summary="用户列表")
def list_users(
    db: SessionDep,
    actor: CurrentActor,
    page: PageDep,
    department_id: int | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, object]:
    result = services.list_users(db, actor=actor, page=page, department_id=department_id, q=q)
    return page_out(result, UserOut)


@router.post("/users", response_model=UserOut, status_code=201, summary="新建政务人员账户")
def create_user(body: UserIn, db: SessionDep, actor: CurrentActor) -> object:
    return services.create_staff_user(db, actor=actor, **body.model_dump())


@router.get("/users/{user_id}", response_model=UserOut, summary="用户详情")
def get_user(user_id: int, db: SessionDep, actor: CurrentActor) -> object:
    return services.view_user(db, user_id, actor=actor)


@router.post("/users/{user_id}/disable", response_model=UserOut, summary="停用账户")
def disable_user(user_id: int, body: DisableIn, db: SessionDep, actor: CurrentActor) -> object:
    return services.disable_user(db, actor=actor, user_id=user_id, reason=body.reason)


@router.post("/users/{user_id}/enable", response_model=UserOut, summary="启用账户")
def enable_user(user_id: int, db: SessionDep, actor: CurrentActor) -> object:
    return services.enable_user(db, actor=actor, user_id=user_id)


@router.post("/users/{user_id}/password-reset", response_model=UserOut, summary="重置密码")
def reset_password(
    user_id: int, body: PasswordResetIn, db: SessionDep, actor: CurrentActor
) -> object:
    return services.reset_password(db, actor=actor, user_id=user_id, new_password=body.new_password)


@router.post("/users/{user_id}/roles", response_model=UserOut, status_code=201, summary="授予角色")
def assign_role(
    user_id: int, body: RoleAssignmentIn, db: SessionDep, actor: CurrentActor
) -> object:
    services.assign_role(db, actor=actor, user_id=user_id, **body.model_dump())
    return services.get_user(db, user_id)


@router.delete("/users/{user_id}/roles", status_code=204, summary="撤销角色")
def revoke_role(
    user_id: int, department_id: int, role: Role, db: SessionDep, actor: CurrentActor
) -> Response:
    services.revoke_role(db, actor=actor, user_id=user_id, department_id=department_id, role=role)
    return Response(status_code=204)


@router.post("/register", response_model=RegistrationOut, status_code=202, summary="公众实名注册")
def register(body: RegistrationIn, db: SessionDep, actor: ActorDep) -> object:
    """The same answer whether or not the ID number already had an account (see the service)."""
    services.register_public_user(db, actor=actor, **body.model_dump())
    return RegistrationOut(message=notice_text("registered") or "")


@router.get("/me", response_model=UserOut, summary="本人账户")
def me(db: SessionDep, actor: CurrentActor) -> object:
    authorize(actor, "account.view")
    return services.get_user(db, actor.user_id or 0)


@router.post("/me/password", status_code=204, summary="修改本人密码")
def change_password(body: PasswordChangeIn, db: SessionDep, actor: CurrentActor) -> Response:
    auth.change_password(
        db, actor=actor, current_password=body.current_password, new_password=body.new_password
    )
    return Response(status_code=204)


@router.get("/me/api-keys", response_model=PageOut[ApiKeyOut], summary="本人 API 密钥")
def list_api_keys(db: SessionDep, actor: CurrentActor, page: PageDep) -> dict[str, object]:
    keys = list(auth.list_api_keys(db, actor=actor))
    window = keys[page.offset : page.offset + page.page_size]
    return page_out(Paged(window, len(keys), page.page, page.page_size), ApiKeyOut)


@router.post(
    "/me/api-keys", response_model=IssuedApiKeyOut, status_code=201, summary="创建 API 密钥"
)
def create_api_key(body: ApiKeyIn, db: SessionDep, actor: CurrentActor) -> object:
    issued = auth.create_api_key(
        db, actor=actor, name=body.name, scopes=body.scopes, expires_in_days=body.expires_in_days
    )
    return IssuedApiKeyOut.model_validate(
        {**ApiKeyOut.model_validate(issued.record).model_dump(), "secret": issued.secret}
    )


@router.delete("/me/api-keys/{key_id}", status_code=204, summary="撤销 API 密钥")
def revoke_api_key(key_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    auth.revoke_api_key(db, actor=actor, key_id=key_id)
    return Response(status_code=204)
