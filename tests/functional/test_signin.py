"""Sign-in through the web form and the API-key paths."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from kuaishu.accounts.roles import Role
from tests import factories as f


def test_sign_in_and_create_key_then_use_it(client: TestClient, db: Session) -> None:
    u = f.user(db, roles=[Role.CATALOGUER])
    db.commit()
    login = f.sign_in(client, u.username)
    made = client.post(
        "/api/v1/me/api-keys",
        json={"name": "脚本", "scopes": ["read"]},
        headers={"X-CSRF-Token": login.csrf},
    )
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    client.cookies.clear()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.json()["username"] == u.username
    me2 = client.get("/api/v1/me", headers={"X-API-Key": secret})
    assert me2.status_code == 200


def test_cookie_post_without_csrf_is_refused(client: TestClient, db: Session) -> None:
    u = f.user(db, roles=[Role.CATALOGUER])
    db.commit()
    f.sign_in(client, u.username)
    refused = client.post("/api/v1/me/api-keys", json={"name": "x"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"


def test_english_error_message(client: TestClient) -> None:
    response = client.get("/api/v1/me", headers={"Accept-Language": "en"})
    assert response.status_code == 401
    body = response.json()["error"]
    assert body["code"] == "not_authenticated"
