"""Factories for test objects: regions, departments, users with roles, signed-in clients."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.cn import ric, uscc

from kuaishu.accounts import auth, services
from kuaishu.accounts.actor import Actor
from kuaishu.accounts.models import Department, Region, User
from kuaishu.accounts.roles import LevelKind, Role
from kuaishu.catalog.models import CatalogEntry
from kuaishu.security import egress
from kuaishu.security.models import AllowedDestination, DestinationKind

PASSWORD = "Test-Passw0rd!"
ROOT = Actor(
    user_id=None,
    username="test-root",
    auth_method="cli",
    roles=frozenset({(0, Role.PLATFORM_OPERATOR)}),
)
_seq = itertools.count(1)


def credit_code(n: int | None = None) -> str:
    body = f"115200{(n or next(_seq)):010d}0"[:17]
    return body + uscc.calc_check_digit(body)


def id_number(n: int | None = None) -> str:
    body = f"52010219900307{(n or next(_seq)) % 1000:03d}"
    return next(body + d for d in "0123456789X" if ric.is_valid(body + d))


def region(
    db: Session,
    *,
    code: str = "520000",
    level: LevelKind = LevelKind.PROVINCE,
    parent: Region | None = None,
    name: str | None = None,
) -> Region:
    return services.create_region(
        db,
        actor=ROOT,
        code=code,
        name=name or f"区{code}",
        level=level,
        parent_id=parent.id if parent else None,
    )


def department(
    db: Session, *, where: Region | None = None, code: str | None = None, name: str | None = None
) -> Department:
    where = where or _province(db)
    n = next(_seq)
    code = code or f"{where.code[:2]}0{n % 10}{'ABCDEFGHJK'[n // 10 % 10]}"
    return services.create_department(
        db,
        actor=ROOT,
        code=code,
        name=name or f"测试部门{n}",
        credit_code=credit_code(n),
        region_id=where.id,
    )


def _province(db: Session) -> Region:
    from sqlalchemy import select

    found = db.scalar(select(Region).where(Region.code == "520000"))
    return found or region(db)


def user(
    db: Session,
    *,
    roles: list[Role] | None = None,
    dept: Department | None = None,
    username: str | None = None,
) -> User:
    dept = dept or department(db)
    return services.create_staff_user(
        db,
        actor=ROOT,
        username=username or f"user{next(_seq)}",
        display_name="测试用户",
        password=PASSWORD,
        department_id=dept.id,
        roles=roles or [],
    )


def actor(u: User) -> Actor:
    return auth.actor_for(u, client_addr="127.0.0.1", request_id="test")


@dataclass
class Login:
    client: TestClient
    csrf: str


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> Login:
    """Sign in through the real form (CSRF cookie and all); returns the session's CSRF token."""
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    home = client.get("/")
    csrf = home.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return Login(client=client, csrf=csrf)


def api_key(db: Session, u: User, scopes: tuple[str, ...] = ("read", "write")) -> str:
    return auth.create_api_key(db, actor=actor(u), name="test", scopes=scopes).secret


def published_entry(
    db: Session,
    *,
    dept: Department | None = None,
    name: str = "常住人口统计表",
    items: list[tuple[str, str]] | None = None,
    keys: tuple[str, ...] = (),
    sensitive: tuple[str, ...] = (),
    **fields: object,
) -> CatalogEntry:
    """A published catalog entry whose data items are ``(name, type_code)`` pairs; the
    ``sensitive`` ones are marked 涉及用户隐私."""
    from kuaishu.catalog.schemas import DataItemIn, RevisionIn
    from kuaishu.catalog.services import import_published

    dept = dept or department(db)
    data = RevisionIn(
        name=name,
        summary=fields.pop("summary", "测试数据"),  # type: ignore[arg-type]
        resource_class=fields.pop("resource_class", "3"),  # type: ignore[arg-type]
        share_type=fields.pop("share_type", "unconditional"),  # type: ignore[arg-type]
        share_methods=fields.pop("share_methods", ["api", "file"]),  # type: ignore[arg-type]
        open_type=fields.pop("open_type", "unconditional"),  # type: ignore[arg-type]
        update_cycle=fields.pop("update_cycle", "daily"),  # type: ignore[arg-type]
        domain=fields.pop("domain", "社保就业"),  # type: ignore[arg-type]
        items=[
            DataItemIn(
                name=item,
                type_code=kind,  # type: ignore[arg-type]
                is_key=item in keys,
                sensitivity="涉及用户隐私" if item in sensitive else "",
            )
            for item, kind in (items or [("地区", "C"), ("人口", "N")])
        ],
        **fields,  # type: ignore[arg-type]
    )
    return import_published(db, actor=ROOT, department_id=dept.id, data=data)


def allow_loopback(db: Session, *folders: Path, names: tuple[str, ...] = ()) -> None:
    """Test-only allow-list entries: the loopback address (the tests' local HTTP servers and
    databases), ``folders`` (their SQLite files) and host ``names`` that are never contacted.
    Without them the platform refuses all of these, as tests/security/test_ssrf.py shows."""
    wanted = [(DestinationKind.HOST, "127.0.0.1/32")]
    wanted += [(DestinationKind.HOST, name) for name in names]
    wanted += [(DestinationKind.FOLDER, str(folder.resolve())) for folder in folders]
    have = {(e.kind, e.value) for e in db.scalars(select(AllowedDestination))}
    for kind, value in wanted:
        if (kind, value) not in have:
            egress.add_destination(db, actor=ROOT, kind=kind, value=value, note="测试专用")
