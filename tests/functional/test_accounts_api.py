"""Accounts through HTTP: disabling, revoking and expiring keys, separation of duties."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from kuaishu.accounts.models import ApiKey
from kuaishu.accounts.roles import Role
from kuaishu.db import utcnow
from tests import factories as f


def test_disabling_an_account_stops_its_keys_and_sessions_at_once(
    client: TestClient, db: Session
) -> None:
    operator = f.user(db, roles=[Role.PLATFORM_OPERATOR])
    worker = f.user(db, roles=[Role.CATALOGUER])
    op_key, worker_key = f.api_key(db, operator), f.api_key(db, worker)
    db.commit()
    assert client.get("/api/v1/me", headers={"X-API-Key": worker_key}).status_code == 200
    browser = TestClient(client.app)
    f.sign_in(browser, worker.username)
    assert browser.get("/api/v1/me").status_code == 200
    disabled = client.post(
        f"/api/v1/users/{worker.id}/disable",
        headers={"X-API-Key": op_key},
        json={"reason": "调离岗位"},
    )
    assert disabled.status_code == 200 and disabled.json()["is_active"] is False
    refused = client.get("/api/v1/me", headers={"X-API-Key": worker_key})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert browser.get("/api/v1/me").status_code == 401


def test_revoked_and_expired_keys_get_401(client: TestClient, db: Session) -> None:
    u = f.user(db, roles=[Role.CONSUMER])
    revoked, expired = f.api_key(db, u), f.api_key(db, u)
    db.commit()
    h = {"Authorization": f"Bearer {revoked}"}
    listed = client.get("/api/v1/me/api-keys", headers=h).json()["items"]
    own = [k for k in listed if revoked.startswith(k["prefix"] + ".")]
    assert len(own) == 1
    assert client.delete(f"/api/v1/me/api-keys/{own[0]['id']}", headers=h).status_code == 204
    assert client.get("/api/v1/me", headers=h).status_code == 401
    prefix = expired.split(".", 1)[0]
    db.execute(
        update(ApiKey)
        .where(ApiKey.prefix == prefix)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    db.commit()
    gone = client.get("/api/v1/me", headers={"X-API-Key": expired})
    assert gone.status_code == 401 and gone.json()["error"]["code"] == "invalid_api_key"
    forged = client.get("/api/v1/me", headers={"X-API-Key": prefix + ".forged"})
    assert forged.status_code == 401


def test_operator_cannot_also_be_auditor_through_the_api(client: TestClient, db: Session) -> None:
    operator = f.user(db, roles=[Role.PLATFORM_OPERATOR])
    dept = f.department(db)
    key = f.api_key(db, operator)
    db.commit()
    both = client.post(
        "/api/v1/users",
        headers={"X-API-Key": key},
        json={
            "username": "both-hats",
            "display_name": "两顶帽子",
            "password": f.PASSWORD,
            "department_id": dept.id,
            "roles": ["platform_operator", "security_auditor"],
        },
    )
    assert both.status_code == 409
    assert both.json()["error"]["code"] == "separation_of_duties"
    later = client.post(
        f"/api/v1/users/{operator.id}/roles",
        headers={"X-API-Key": key},
        json={"department_id": dept.id, "role": "security_auditor"},
    )
    # Platform roles are appointed at the server's shell only, and an account holding one has
    # its roles changed there only: refused before separation of duties is even weighed.
    assert later.status_code == 403
    assert later.json()["error"]["code"] == "permission_denied"


def test_read_only_key_cannot_change_anything(client: TestClient, db: Session) -> None:
    operator = f.user(db, roles=[Role.PLATFORM_OPERATOR])
    key = f.api_key(db, operator, scopes=("read",))
    db.commit()
    assert client.get("/api/v1/users", headers={"X-API-Key": key}).status_code == 200
    refused = client.post(
        "/api/v1/regions",
        headers={"X-API-Key": key},
        json={"code": "110000", "name": "北京市", "level": "province"},
    )
    assert refused.status_code == 403


def test_department_admin_sees_only_their_department(client: TestClient, db: Session) -> None:
    mine, theirs = f.department(db), f.department(db)
    admin = f.user(db, roles=[Role.DEPT_ADMIN], dept=mine)
    colleague = f.user(db, roles=[Role.CATALOGUER], dept=mine)
    stranger = f.user(db, roles=[Role.CATALOGUER], dept=theirs)
    key = f.api_key(db, admin)
    db.commit()
    listed = client.get(
        "/api/v1/users",
        headers={"X-API-Key": key},
        params={"department_id": theirs.id, "page_size": 200},
    ).json()
    names = {u["username"] for u in listed["items"]}
    assert colleague.username in names and stranger.username not in names
    assert client.get(f"/api/v1/users/{stranger.id}", headers={"X-API-Key": key}).status_code == 403
