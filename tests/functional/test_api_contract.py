"""The same error body, language switch and pagination on every endpoint — enumerated from the
app's routes, so a new route is covered without anyone listing it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from kuaishu.accounts.roles import Role
from kuaishu.pagination import PageOut
from kuaishu.web.app import create_app
from tests import factories as f


def all_routes(routes: list[Any]) -> list[Any]:
    """Routes of the app, with included routers opened up (FastAPI keeps them nested)."""
    flat: list[Any] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        flat += all_routes(inner.routes) if inner is not None else [route]
    return flat


ROUTES = all_routes(create_app().routes)
# The documented API (the docs page itself, /api/v1/docs, is a public HTML page, not in it).
API_ROUTES = [
    r
    for r in ROUTES
    if isinstance(r, APIRoute) and r.path.startswith("/api/v1") and r.include_in_schema
]
PUBLIC = {("POST", "/api/v1/register"), ("GET", "/api/v1/catalog/negative-list")}
# Lists under an object that must exist first; their paging is tested with their domain.
NEEDS_OBJECT = {"/api/v1/catalog/entries/{entry_id}/revisions"}


def concrete(path: str) -> str:
    return re.sub(r"{[^}]+}", "1", path)


def cases() -> list[tuple[str, str, APIRoute]]:
    return [(method, route.path, route) for route in API_ROUTES for method in sorted(route.methods)]


def assert_error_shape(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    if code:
        assert body["error"]["code"] == code
    return dict(body["error"])


CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize(("method", "path", "route"), cases(), ids=lambda v: str(v))
def test_unauthenticated_gets_401_in_both_languages(
    client: TestClient, method: str, path: str, route: APIRoute
) -> None:
    if (method, path) in PUBLIC:
        pytest.skip("public endpoint")
    url = concrete(path)
    zh = assert_error_shape(client.request(method, url, json={}), 401, "not_authenticated")
    assert CJK.search(zh["message"])
    en = assert_error_shape(
        client.request(method, url, json={}, headers={"Accept-Language": "en"}),
        401,
        "not_authenticated",
    )
    assert not CJK.search(en["message"]) and en["message"] != zh["message"]


def body_routes() -> list[tuple[str, str, APIRoute]]:
    """Routes that take a JSON body (file uploads are tested with their domain)."""
    return [
        c
        for c in cases()
        if c[2].body_field is not None
        and getattr(c[2].body_field.field_info, "media_type", "") == "application/json"
    ]


@pytest.mark.parametrize(("method", "path", "route"), body_routes(), ids=lambda v: str(v))
def test_malformed_json_and_unknown_fields(
    client: TestClient, db: Session, method: str, path: str, route: APIRoute
) -> None:
    operator = f.user(db, roles=[Role.PLATFORM_OPERATOR])
    key = f.api_key(db, operator)
    db.commit()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    url = concrete(path)
    broken = client.request(method, url, content=b'{"name": ', headers=headers)
    assert_error_shape(broken, 400, "malformed_json")
    unknown = client.request(method, url, json={"surprise_field": 1}, headers=headers)
    error = assert_error_shape(unknown, 422, "validation_failed")
    assert any(
        d["field"] == "surprise_field" and d["problem"] == "extra_forbidden"
        for d in error["details"]
    )


def list_routes() -> list[tuple[str, str, APIRoute]]:
    return [
        c
        for c in cases()
        if c[0] == "GET"
        and c[1] not in NEEDS_OBJECT
        and isinstance(c[2].response_model, type)
        and issubclass(c[2].response_model, PageOut)
    ]


def test_list_routes_were_found() -> None:
    assert len(list_routes()) >= 5


@pytest.mark.parametrize(("method", "path", "route"), list_routes(), ids=lambda v: str(v))
def test_pagination_is_one_convention(
    client: TestClient, db: Session, method: str, path: str, route: APIRoute
) -> None:
    # The auditor reads the trail; the operator everything else.
    role = Role.SECURITY_AUDITOR if path.startswith("/api/v1/audit") else Role.PLATFORM_OPERATOR
    reader = f.user(db, roles=[role])
    key = f.api_key(db, reader)
    db.commit()
    headers = {"X-API-Key": key}
    url = concrete(path)
    page = client.get(url, params={"page": 1, "page_size": 2}, headers=headers)
    assert page.status_code == 200, page.text
    body = page.json()
    assert set(body) == {"items", "page", "page_size", "total", "pages"}
    assert body["page"] == 1 and body["page_size"] == 2 and len(body["items"]) <= 2
    assert body["pages"] == max(1, -(-body["total"] // 2))
    too_big = client.get(url, params={"page_size": 100_000}, headers=headers)
    assert_error_shape(too_big, 422, "page_size_too_large")
    zero = client.get(url, params={"page": 0}, headers=headers)
    assert_error_shape(zero, 422, "validation_failed")


def test_walking_pages_visits_every_item_once(client: TestClient, db: Session) -> None:
    operator = f.user(db, roles=[Role.PLATFORM_OPERATOR])
    for _ in range(5):
        f.department(db)
    key = f.api_key(db, operator)
    db.commit()
    seen: list[int] = []
    page = 1
    while True:
        body = client.get(
            "/api/v1/departments", params={"page": page, "page_size": 2}, headers={"X-API-Key": key}
        ).json()
        seen += [item["id"] for item in body["items"]]
        if page >= body["pages"]:
            break
        page += 1
    assert len(seen) == len(set(seen)) == body["total"] >= 5


def test_unknown_path_and_wrong_method(client: TestClient) -> None:
    assert_error_shape(client.get("/api/v1/nope"), 404, "not_found")
    assert_error_shape(client.put("/api/v1/me"), 405, "method_not_allowed")
    en = assert_error_shape(client.get("/api/v1/nope", headers={"Accept-Language": "en"}), 404)
    assert not CJK.search(en["message"])


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["database"] in ("sqlite", "postgresql")


def test_every_response_has_a_request_id(client: TestClient) -> None:
    response = client.get("/api/v1/me", headers={"X-Request-ID": "trace-123"})
    assert response.headers["x-request-id"] == "trace-123"
    assert len(client.get("/healthz").headers["x-request-id"]) == 32
