"""Console pages: each role sees what it may, forms are CSRF-protected, output is escaped,
and every user-facing Chinese string has an English translation."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from kuaishu.accounts.roles import Role
from kuaishu.i18n import translations
from kuaishu.messages import all_messages
from tests import factories as f

ADMIN_LINKS = ("/admin/regions", "/admin/departments", "/admin/users")


def test_every_user_facing_string_has_english() -> None:
    catalog = translations("en")
    missing = [m for m in all_messages() if catalog.gettext(m) == m]
    assert not missing, f"add English for these to messages.po (scripts/po.py): {missing[:20]}"


def test_english_placeholders_match_chinese() -> None:
    catalog = translations("en")
    for message in all_messages():
        names = set(re.findall(r"{(\w+)}", message))
        assert names == set(re.findall(r"{(\w+)}", catalog.gettext(message))), message


def test_operator_sees_admin_pages(client: TestClient, db: Session) -> None:
    operator = f.user(db, roles=[Role.PLATFORM_OPERATOR])
    db.commit()
    f.sign_in(client, operator.username)
    home = client.get("/")
    for link in ADMIN_LINKS:
        assert f'href="{link}"' in home.text
    assert 'href="/audit"' not in home.text
    for link in (*ADMIN_LINKS, "/admin/users/new", f"/admin/users/{operator.id}", "/account"):
        page = client.get(link)
        assert page.status_code == 200, link
    assert client.get("/audit").status_code == 403


def test_auditor_sees_only_the_audit_trail(client: TestClient, db: Session) -> None:
    auditor = f.user(db, roles=[Role.SECURITY_AUDITOR])
    db.commit()
    f.sign_in(client, auditor.username)
    page = client.get("/audit")
    assert page.status_code == 200
    assert "auth.sign_in" in page.text
    for link in ADMIN_LINKS:
        assert client.get(link).status_code == 403
    filtered = client.get("/audit", params={"action": "auth.", "outcome": "", "since": ""})
    assert filtered.status_code == 200


def test_cataloguer_has_no_admin_pages(client: TestClient, db: Session) -> None:
    cataloguer = f.user(db, roles=[Role.CATALOGUER])
    db.commit()
    f.sign_in(client, cataloguer.username)
    home = client.get("/")
    assert all(f'href="{link}"' not in home.text for link in ADMIN_LINKS)
    assert client.get("/admin/users").status_code == 403
    assert "您没有执行此操作的权限" in client.get("/admin/users").text


def test_anonymous_is_sent_to_sign_in(client: TestClient) -> None:
    response = client.get("/admin/users", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=/admin/users")


def test_english_pages(client: TestClient) -> None:
    client.cookies.set("ks_lang", "en")
    page = client.get("/login")
    assert "Sign in" in page.text and "登录" not in page.text.split("<main", 1)[1]


def test_form_without_csrf_token_is_refused(client: TestClient, db: Session) -> None:
    operator = f.user(db, roles=[Role.PLATFORM_OPERATOR])
    db.commit()
    f.sign_in(client, operator.username)
    response = client.post(
        "/admin/regions", data={"code": "110000", "name": "北京市", "level": "province"}
    )
    assert response.status_code == 403
    assert "CSRF" in response.text


def test_login_form_needs_its_csrf_cookie(client: TestClient, db: Session) -> None:
    target = f.user(db, roles=[Role.CONSUMER])
    db.commit()
    response = client.post(
        "/login", data={"username": target.username, "password": f.PASSWORD, "csrf_token": "forged"}
    )
    assert response.status_code == 403


def test_html_in_names_is_escaped(client: TestClient, db: Session) -> None:
    operator = f.user(db, roles=[Role.PLATFORM_OPERATOR])
    f.department(db, name="<script>alert(1)</script>统计局")
    db.commit()
    login = f.sign_in(client, operator.username)
    page = login.client.get("/admin/departments")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;统计局" in page.text


@pytest.mark.parametrize("bad", ["short", "alllowercaseletters"])
def test_weak_password_shows_the_rule(client: TestClient, db: Session, bad: str) -> None:
    operator = f.user(db, roles=[Role.PLATFORM_OPERATOR])
    dept = f.department(db)
    db.commit()
    login = f.sign_in(client, operator.username)
    response = login.client.post(
        "/admin/users/new",
        data={
            "csrf_token": login.csrf,
            "username": "newbie",
            "display_name": "新人",
            "password": bad,
            "department_id": str(dept.id),
            "roles": "consumer",
        },
    )
    assert response.status_code == 422
    assert "密码不符合要求" in response.text
    assert "newbie" in response.text  # the form keeps what was typed
