"""Bad input gets a clear 4xx with a stable code, and nothing half-done is stored."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from kuaishu.accounts.models import Department, User, WebSession
from kuaishu.accounts.roles import Role
from kuaishu.db import make_engine, make_sessionmaker, transaction, utcnow
from kuaishu.migrate import upgrade
from kuaishu.security.models import AuditEvent
from kuaishu.settings import get_settings
from kuaishu.web.app import create_app
from tests import factories as f
from tests.conftest import fresh_database_url


def operator_key(db: Session) -> str:
    operator = f.user(db, roles=[Role.PLATFORM_OPERATOR])
    key = f.api_key(db, operator)
    db.commit()
    return key


def test_oversized_body_declared(client: TestClient, db: Session) -> None:
    key = operator_key(db)
    limit = get_settings().max_body_bytes
    response = client.post(
        "/api/v1/regions",
        content=b"x" * (limit + 1),
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_oversized_body_streamed_without_length(client: TestClient, db: Session) -> None:
    key = operator_key(db)
    limit = get_settings().max_body_bytes

    def chunks() -> Iterator[bytes]:
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    response = client.post(
        "/api/v1/regions",
        content=chunks(),
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_expired_session(client: TestClient, db: Session) -> None:
    u = f.user(db, roles=[Role.CONSUMER])
    db.commit()
    f.sign_in(client, u.username)
    db.execute(
        update(WebSession)
        .where(WebSession.user_id == u.id)
        .values(expires_at=utcnow() - timedelta(minutes=1))
    )
    db.commit()
    api = client.get("/api/v1/me")
    assert api.status_code == 401 and api.json()["error"]["code"] == "session_expired"
    page = client.get("/account", follow_redirects=False)
    assert page.status_code == 303 and "expired=1" in page.headers["location"]


def test_html_and_sql_in_names_are_stored_as_written(client: TestClient, db: Session) -> None:
    key = operator_key(db)
    region = client.post(
        "/api/v1/regions",
        headers={"X-API-Key": key},
        json={"code": "520000", "name": "贵州省", "level": "province"},
    )
    assert region.status_code in (201, 409)
    region_id = db.scalar(select(Department.region_id).limit(1)) or region.json().get("id")
    for name in ("<script>alert(1)</script>", "'; DROP TABLE users; --"):
        made = client.post(
            "/api/v1/departments",
            headers={"X-API-Key": key},
            json={
                "code": f"520{'09' if 'script' in name else '08'}"[:5],
                "name": name,
                "credit_code": f.credit_code(),
                "region_id": region_id,
            },
        )
        assert made.status_code == 201, made.text
        assert made.json()["name"] == name
    assert db.scalar(select(func.count(User.id))) >= 1  # the users table is still there


def test_failed_request_stores_nothing(client: TestClient, db: Session) -> None:
    key = operator_key(db)
    dept = f.department(db)
    db.commit()
    users_before = db.scalar(select(func.count(User.id)))
    events_before = db.scalar(select(func.count(AuditEvent.id)))
    response = client.post(
        "/api/v1/users",
        headers={"X-API-Key": key},
        json={
            "username": "weakling",
            "display_name": "弱密码",
            "password": "123",
            "department_id": dept.id,
            "roles": ["consumer"],
        },
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "weak_password"
    assert db.scalar(select(func.count(User.id))) == users_before
    assert db.scalar(select(func.count(AuditEvent.id))) == events_before


def test_duplicate_created_at_the_same_moment(backend: str) -> None:
    """Two operators create the same department at once: one 201, one 409, one row."""
    engine = make_engine(fresh_database_url(backend, "race"))
    upgrade(engine)
    with transaction(make_sessionmaker(engine)) as session:
        province = f.region(session)
        operator = f.user(session, roles=[Role.PLATFORM_OPERATOR])
        keys = [f.api_key(session, operator), f.api_key(session, operator)]
        region_id = province.id
    events_before = _department_events(engine)
    app = create_app(engine=engine)
    barrier = threading.Barrier(2)
    results: list[int] = []
    credit = f.credit_code()

    def create(key: str) -> None:
        with TestClient(app) as client:
            barrier.wait()
            response = client.post(
                "/api/v1/departments",
                headers={"X-API-Key": key},
                json={
                    "code": "52077",
                    "name": "同时创建局",
                    "credit_code": credit,
                    "region_id": region_id,
                },
            )
            results.append(response.status_code)
            if response.status_code == 409:
                assert response.json()["error"]["code"] in ("duplicate_department", "conflict")

    threads = [threading.Thread(target=create, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == [201, 409]
    with make_sessionmaker(engine)() as session:
        assert (
            session.scalar(select(func.count(Department.id)).where(Department.code == "52077")) == 1
        )
    assert _department_events(engine) == events_before + 1
    engine.dispose()


def _department_events(engine: Engine) -> int:
    with make_sessionmaker(engine)() as session:
        count = session.scalar(
            select(func.count(AuditEvent.id)).where(AuditEvent.action == "department.create")
        )
        return int(count or 0)


@pytest.mark.parametrize("payload", [b"[]", b'"text"', b"123", b"null"])
def test_body_that_is_not_an_object(client: TestClient, db: Session, payload: bytes) -> None:
    key = operator_key(db)
    response = client.post(
        "/api/v1/regions",
        content=payload,
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    assert response.status_code in (400, 422)
    assert set(response.json()["error"]) == {"code", "message", "details"}


def test_malformed_form(client: TestClient) -> None:
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post("/login", data={"csrf_token": token})  # no username or password
    assert response.status_code == 422
    assert "缺少必填项" in response.text
