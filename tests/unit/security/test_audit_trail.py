"""The audit trail: every change leaves an event, only auditors read it, nothing edits it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from kuaishu.accounts.roles import Role
from kuaishu.security.models import AuditEvent, AuditImmutableError
from kuaishu.web.app import create_app
from tests import factories as f
from tests.functional.test_api_contract import all_routes

SRC = Path(__file__).resolve().parents[3] / "src" / "kuaishu"


def events(db: Session, action: str) -> list[AuditEvent]:
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_every_state_change_route_is_audited(client: TestClient, db: Session) -> None:
    """Drive every POST/DELETE API route once and find its event; a new route must join."""
    operator = f.user(db, roles=[Role.PLATFORM_OPERATOR], username="op-audit")
    target = f.user(db, roles=[Role.CONSUMER], username="target-audit")
    key = f.api_key(db, operator)
    db.commit()
    h = {"X-API-Key": key}
    province = client.post(
        "/api/v1/regions",
        headers=h,
        json={"code": "450000", "name": "广西壮族自治区", "level": "province"},
    )
    calls: dict[tuple[str, str], tuple[Any, str]] = {}
    calls[("POST", "/api/v1/regions")] = (province, "region.create")
    calls[("POST", "/api/v1/departments")] = (
        client.post(
            "/api/v1/departments",
            headers=h,
            json={
                "code": "45001",
                "name": "广西某厅",
                "credit_code": f.credit_code(),
                "region_id": province.json()["id"],
            },
        ),
        "department.create",
    )
    dept_id = calls[("POST", "/api/v1/departments")][0].json()["id"]
    calls[("POST", "/api/v1/users")] = (
        client.post(
            "/api/v1/users",
            headers=h,
            json={
                "username": "new-audit",
                "display_name": "新人",
                "password": f.PASSWORD,
                "department_id": dept_id,
                "roles": ["consumer"],
            },
        ),
        "user.create",
    )
    calls[("POST", "/api/v1/users/{user_id}/roles")] = (
        client.post(
            f"/api/v1/users/{target.id}/roles",
            headers=h,
            json={"department_id": dept_id, "role": "reviewer"},
        ),
        "role.assign",
    )
    calls[("DELETE", "/api/v1/users/{user_id}/roles")] = (
        client.delete(
            f"/api/v1/users/{target.id}/roles",
            headers=h,
            params={"department_id": dept_id, "role": "reviewer"},
        ),
        "role.revoke",
    )
    calls[("POST", "/api/v1/users/{user_id}/password-reset")] = (
        client.post(
            f"/api/v1/users/{target.id}/password-reset",
            headers=h,
            json={"new_password": "Another-Passw0rd!"},
        ),
        "user.reset_password",
    )
    calls[("POST", "/api/v1/users/{user_id}/disable")] = (
        client.post(f"/api/v1/users/{target.id}/disable", headers=h, json={"reason": "调离"}),
        "user.disable",
    )
    calls[("POST", "/api/v1/users/{user_id}/enable")] = (
        client.post(f"/api/v1/users/{target.id}/enable", headers=h),
        "user.enable",
    )
    calls[("POST", "/api/v1/register")] = (
        client.post(
            "/api/v1/register",
            json={
                "username": "citizen-audit",
                "display_name": "公众",
                "password": f.PASSWORD,
                "id_number": f.id_number(321),
            },
        ),
        "user.register",
    )
    made = client.post("/api/v1/me/api-keys", headers=h, json={"name": "k"})
    calls[("POST", "/api/v1/me/api-keys")] = (made, "apikey.create")
    calls[("DELETE", "/api/v1/me/api-keys/{key_id}")] = (
        client.delete(f"/api/v1/me/api-keys/{made.json()['id']}", headers=h),
        "apikey.revoke",
    )
    calls[("POST", "/api/v1/me/password")] = (
        client.post(
            "/api/v1/me/password",
            headers=h,
            json={"current_password": f.PASSWORD, "new_password": "Brand-New-Passw0rd!"},
        ),
        "account.change_password",
    )

    allowed = client.post(
        "/api/v1/egress/allowed",
        headers=h,
        json={"kind": "host", "value": "qzj.example.gov.cn", "note": "前置机"},
    )
    calls[("POST", "/api/v1/egress/allowed")] = (allowed, "egress.allow")
    calls[("DELETE", "/api/v1/egress/allowed/{destination_id}")] = (
        client.delete(f"/api/v1/egress/allowed/{allowed.json()['id']}", headers=h),
        "egress.disallow",
    )

    changing = {
        (method, route.path)
        for route in all_routes(create_app().routes)
        if isinstance(route, APIRoute)
        and route.path.startswith("/api/")
        # driven in tests/functional/catalog/test_catalog_api.py and
        # tests/functional/collect/test_audit.py, where their data exists
        and not route.path.startswith(
            (
                "/api/v1/catalog/",
                "/api/v1/collect/",
                "/api/v1/data/",
                "/api/v1/clean/",
                "/api/v1/share/",  # tests/functional/share/test_audit.py
                "/api/v1/me/notifications/",  # tests/functional/share/test_notifications.py
            )
        )
        for method in route.methods
        if method in {"POST", "PUT", "PATCH", "DELETE"}
    }
    assert changing == set(calls), f"routes without an audit check: {changing ^ set(calls)}"
    for (method, path), (response, action) in calls.items():
        assert response.status_code in (200, 201, 202, 204), (method, path, response.text)
        found = events(db, action)
        assert found, f"{method} {path} left no {action} event"
        assert found[-1].outcome == "success"


def test_only_auditors_read_the_trail_and_refusals_are_recorded(
    client: TestClient, db: Session
) -> None:
    operator = f.user(db, roles=[Role.PLATFORM_OPERATOR])
    auditor = f.user(db, roles=[Role.SECURITY_AUDITOR])
    op_key, au_key = f.api_key(db, operator), f.api_key(db, auditor)
    db.commit()
    for url in ("/api/v1/audit/events", "/api/v1/audit/events.csv"):
        refused = client.get(url, headers={"X-API-Key": op_key})
        assert refused.status_code == 403
    denied = [e for e in events(db, "audit.read") if e.outcome == "denied"]
    assert denied and denied[-1].actor_username == operator.username
    read = client.get(
        "/api/v1/audit/events",
        headers={"X-API-Key": au_key},
        params={"action": "audit.read", "outcome": "denied"},
    )
    assert read.status_code == 200
    assert any(item["actor_username"] == operator.username for item in read.json()["items"])
    csv = client.get(
        "/api/v1/audit/events.csv", headers={"X-API-Key": au_key}, params={"action": "user."}
    )
    assert csv.status_code == 200 and csv.text.startswith("\ufeffid,occurred_at")
    assert "attachment" in csv.headers["content-disposition"]
    assert events(db, "audit.export")


def test_audit_api_only_reads() -> None:
    audit_routes = [
        r
        for r in all_routes(create_app().routes)
        if getattr(r, "path", "").startswith(("/api/v1/audit", "/audit"))
    ]
    assert audit_routes
    for route in audit_routes:
        assert route.methods <= {"GET", "HEAD"}, route.path


def test_orm_refuses_to_change_or_delete_an_event(db: Session) -> None:
    f.department(db)
    db.commit()
    event = db.scalars(select(AuditEvent)).first()
    assert event is not None
    event.action = "forged"
    with pytest.raises(AuditImmutableError):
        db.flush()
    db.rollback()
    event = db.scalars(select(AuditEvent)).first()
    db.delete(event)
    with pytest.raises(AuditImmutableError):
        db.flush()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET action = 'forged'",
        "DELETE FROM audit_events",
    ],
)
def test_database_refuses_to_change_or_delete_events(db: Session, statement: str) -> None:
    f.department(db)
    db.flush()
    with pytest.raises(Exception, match="append-only"), db.begin_nested():
        db.execute(text(statement))


def test_postgres_refuses_truncate(db: Session, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("TRUNCATE exists on PostgreSQL only")
    with pytest.raises(Exception, match="append-only"), db.begin_nested():
        db.execute(text("TRUNCATE audit_events"))


def test_no_source_issues_update_or_delete_on_events() -> None:
    pattern = re.compile(
        r"(update|delete)\(\s*AuditEvent|audit_events\s+(SET|WHERE)|"
        r"DELETE\s+FROM\s+audit_events",
        re.IGNORECASE,
    )
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if "migrations" not in path.parts and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert not offenders


def test_bulk_orm_update_is_refused_by_the_database(db: Session) -> None:
    f.department(db)
    db.flush()
    with pytest.raises(Exception, match="append-only"), db.begin_nested():
        db.execute(update(AuditEvent).values(outcome="success"))
    with pytest.raises(Exception, match="append-only"), db.begin_nested():
        db.execute(delete(AuditEvent))
