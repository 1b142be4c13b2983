"""The API documentation page works with no internet and under a script-src 'self' policy, every
operation is described in Chinese, and an API key can be entered through Authorize."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kuaishu.web.app import create_app

CJK = re.compile(r"[\u4e00-\u9fff]")
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


class Assets(HTMLParser):
    """Every script and stylesheet the page loads, and any inline script body."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            self._in_script = True
            if found.get("src"):
                self.urls.append(str(found["src"]))
        if tag == "link" and found.get("href"):
            self.urls.append(str(found["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data)


@pytest.fixture(scope="module")
def http() -> TestClient:
    return TestClient(create_app())  # no lifespan: the page and its files need no database


@pytest.fixture(scope="module")
def spec(http: TestClient) -> dict[str, Any]:
    response = http.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def test_docs_page_loads_only_files_of_its_own_server(http: TestClient) -> None:
    page = http.get("/api/v1/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assets = Assets()
    assets.feed(page.text)
    assert assets.inline == []  # nothing a script-src 'self' policy would block
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in assets.urls
    assert "/static/vendor/swagger-ui/swagger-ui.css" in assets.urls
    assert "/static/swagger-init.js" in assets.urls
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", page.text)
    for url in assets.urls:
        served = http.get(url)
        assert served.status_code == 200 and len(served.content) > 100, url
    init = http.get("/static/swagger-init.js").text
    assert "validatorUrl: null" in init  # Swagger UI would otherwise call validator.swagger.io
    assert not re.search(r"https?://", init)


def test_swagger_ui_licence_ships_with_it(http: TestClient) -> None:
    licence = http.get("/static/vendor/swagger-ui/LICENSE")
    assert licence.status_code == 200 and "Apache License" in licence.text


def test_every_operation_has_a_chinese_summary(spec: dict[str, Any]) -> None:
    operations = [
        (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]
    assert len(operations) > 50
    missing = [
        f"{method.upper()} {path}"
        for method, path, operation in operations
        if not CJK.search(operation.get("summary", ""))
    ]
    assert missing == []


def test_every_tag_is_described_in_chinese(spec: dict[str, Any]) -> None:
    used = {tag for item in spec["paths"].values() for op in item.values() for tag in op["tags"]}
    described = {tag["name"]: tag["description"] for tag in spec["tags"]}
    assert used <= set(described)
    assert all(CJK.search(text) for text in described.values())


def test_api_keys_are_declared_so_swagger_ui_offers_authorize(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= schemes["ApiKeyBearer"].items()
    assert {"type": "apiKey", "in": "header", "name": "X-API-Key"}.items() <= schemes[
        "ApiKeyHeader"
    ].items()
    assert spec["security"] == [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}]
