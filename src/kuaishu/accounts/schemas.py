"""Request and response bodies of the accounts API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from kuaishu.accounts.roles import AccountKind, LevelKind, Role
from kuaishu.schemas import Input, Output


class RegionIn(Input):
    code: str = Field(max_length=12, description="行政区划代码")
    name: str = Field(max_length=100)
    level: LevelKind
    parent_id: int | None = None


class RegionOut(Output):
    id: int
    code: str
    name: str
    level: LevelKind
    parent_id: int | None


class DepartmentIn(Input):
    code: str = Field(max_length=5, description="部门代码（GB/T 21063.5，5 位）")
    name: str = Field(max_length=200)
    credit_code: str = Field(max_length=18, description="统一社会信用代码")
    region_id: int
    contact: str | None = Field(default=None, max_length=200)


class DepartmentOut(Output):
    id: int
    code: str
    name: str
    credit_code: str
    region_id: int
    contact: str | None
    is_active: bool


class RoleOut(Output):
    department_id: int
    role: Role


class UserIn(Input):
    username: str = Field(max_length=150)
    display_name: str = Field(max_length=100)
    password: str = Field(max_length=256)
    department_id: int
    roles: list[Role] = Field(default_factory=list)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)


class RegistrationIn(Input):
    username: str = Field(max_length=150)
    display_name: str = Field(max_length=100, description="真实姓名")
    password: str = Field(max_length=256)
    id_number: str = Field(max_length=32, description="公民身份号码")
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    credit_code: str | None = Field(default=None, max_length=18, description="企业统一社会信用代码")
    organization: str | None = Field(default=None, max_length=200)


class RegistrationOut(BaseModel):
    """The answer to a registration: the same for a new account and for an ID number that
    already had one."""

    message: str


class UserOut(Output):
    id: int
    username: str
    display_name: str
    kind: AccountKind
    email: str | None
    phone: str | None
    id_number_masked: str | None
    credit_code: str | None
    organization: str | None
    is_active: bool
    locked_until: datetime | None
    created_at: datetime
    roles: list[RoleOut]


class RoleAssignmentIn(Input):
    department_id: int
    role: Role


class DisableIn(Input):
    reason: str = Field(max_length=500)


class PasswordResetIn(Input):
    new_password: str = Field(max_length=256)


class PasswordChangeIn(Input):
    current_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256)


class ApiKeyIn(Input):
    name: str = Field(max_length=100)
    scopes: list[str] = Field(default_factory=lambda: ["read"])
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class ApiKeyOut(Output):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


class IssuedApiKeyOut(ApiKeyOut):
    secret: str = Field(description="完整密钥，仅显示这一次")


class SignInIn(Input):
    username: str = Field(max_length=150)
    password: str = Field(max_length=256)
