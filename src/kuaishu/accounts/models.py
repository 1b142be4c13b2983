"""Account tables: regions (government levels), departments, users, roles, API keys, sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kuaishu.accounts.roles import AccountKind, LevelKind, Role
from kuaishu.db import Base, str_enum, utcnow


class Region(Base):
    """A level of government (行政区): province → city → county."""

    __tablename__ = "regions"
    __table_args__ = {"comment": "行政区 — the hierarchy of government levels"}

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True, comment="行政区划代码 (GB/T 2260)")
    name: Mapped[str] = mapped_column(String(100), comment="name, e.g. 贵州省")
    level: Mapped[LevelKind] = mapped_column(
        str_enum(LevelKind, 16), comment="province | city | county"
    )
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("regions.id", ondelete="RESTRICT"), index=True, comment="enclosing region"
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, comment="created (UTC)")

    parent: Mapped[Region | None] = relationship(remote_side="Region.id")


class Department(Base):
    """A government department (部门) within a region."""

    __tablename__ = "departments"
    __table_args__ = {"comment": "部门 — data providers and consumers"}

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(
        String(5), unique=True, comment="部门代码 (GB/T 21063.5, 5 chars)"
    )
    name: Mapped[str] = mapped_column(String(200), comment="full name")
    credit_code: Mapped[str] = mapped_column(
        String(18), unique=True, comment="统一社会信用代码 (GB 32100), checksum-validated"
    )
    region_id: Mapped[int] = mapped_column(
        ForeignKey("regions.id", ondelete="RESTRICT"), index=True, comment="region it belongs to"
    )
    contact: Mapped[str | None] = mapped_column(String(200), comment="contact person / phone")
    is_active: Mapped[bool] = mapped_column(default=True, comment="false once dissolved")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, comment="created (UTC)")

    region: Mapped[Region] = relationship()


class User(Base):
    """An account: government staff, a real-name public user, or an enterprise user."""

    __tablename__ = "users"
    __table_args__ = {"comment": "accounts"}

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(
        String(150), unique=True, comment="sign-in name, lower-case"
    )
    display_name: Mapped[str] = mapped_column(String(100), comment="real name (姓名)")
    kind: Mapped[AccountKind] = mapped_column(
        str_enum(AccountKind, 16), comment="staff | public | enterprise"
    )
    email: Mapped[str | None] = mapped_column(String(254), comment="e-mail address")
    phone: Mapped[str | None] = mapped_column(String(32), comment="mobile number")
    password_hash: Mapped[str] = mapped_column(String(255), comment="Argon2id hash")
    id_number_cipher: Mapped[str | None] = mapped_column(
        String(255), comment="公民身份号码, SM4-GCM encrypted"
    )
    id_number_digest: Mapped[str | None] = mapped_column(
        String(64), unique=True, comment="keyed SM3 of the ID number, for uniqueness"
    )
    id_number_masked: Mapped[str | None] = mapped_column(String(18), comment="masked for display")
    credit_code: Mapped[str | None] = mapped_column(String(18), comment="enterprise credit code")
    organization: Mapped[str | None] = mapped_column(String(200), comment="enterprise name")
    is_active: Mapped[bool] = mapped_column(default=True, comment="false = disabled")
    failed_logins: Mapped[int] = mapped_column(default=0, comment="consecutive failed sign-ins")
    locked_until: Mapped[datetime | None] = mapped_column(comment="lock-out end (UTC)")
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow, comment="(UTC)")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, comment="created (UTC)")

    roles: Mapped[list[RoleAssignment]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )


class RoleAssignment(Base):
    """A role a user holds in one department."""

    __tablename__ = "role_assignments"
    __table_args__ = (
        UniqueConstraint("user_id", "department_id", "role"),
        {"comment": "who holds which role where"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, comment="holder"
    )
    department_id: Mapped[int] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT"), index=True, comment="where it is held"
    )
    role: Mapped[Role] = mapped_column(str_enum(Role), comment="role name")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, comment="granted (UTC)")

    user: Mapped[User] = relationship(back_populates="roles")
    department: Mapped[Department] = relationship(lazy="joined")


class ApiKey(Base):
    """A key for programs: shown once, stored as a digest, with a visible prefix."""

    __tablename__ = "api_keys"
    __table_args__ = {"comment": "API keys"}

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, comment="owner"
    )
    name: Mapped[str] = mapped_column(String(100), comment="what the key is for")
    prefix: Mapped[str] = mapped_column(String(16), unique=True, comment="visible start of the key")
    secret_digest: Mapped[str] = mapped_column(String(64), comment="SM3 of the whole key")
    scopes: Mapped[list[str]] = mapped_column(JSON, comment="read | write")
    expires_at: Mapped[datetime | None] = mapped_column(comment="expiry (UTC)")
    revoked_at: Mapped[datetime | None] = mapped_column(comment="revoked (UTC)")
    last_used_at: Mapped[datetime | None] = mapped_column(comment="last accepted (UTC)")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, comment="created (UTC)")


class WebSession(Base):
    """A signed-in browser; the cookie holds a random token, the table only its digest."""

    __tablename__ = "web_sessions"
    __table_args__ = {"comment": "browser sessions"}

    id: Mapped[int] = mapped_column(primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True, comment="SM3 of the token")
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, comment="who"
    )
    csrf_token: Mapped[str] = mapped_column(String(64), comment="synchronizer token for forms")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, comment="signed in (UTC)")
    expires_at: Mapped[datetime] = mapped_column(comment="ends (UTC)")


class SignInFailure(Base):
    """A failed sign-in, counted per address and per (name, address) to slow guessing without
    letting anyone lock an account out from elsewhere (see docs/decisions/0002)."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (
        Index("ix_sign_in_failures_address_time", "address", "failed_at"),
        Index("ix_sign_in_failures_name_address", "name_digest", "address"),
        {"comment": "failed sign-ins of the last window, for throttling"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name_digest: Mapped[str] = mapped_column(
        String(64), comment="SM3 of the name as typed, lower-case (known or not)"
    )
    address: Mapped[str] = mapped_column(String(64), comment="client address")
    failed_at: Mapped[datetime] = mapped_column(default=utcnow, comment="(UTC)")
