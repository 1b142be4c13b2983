"""/api/v1/docs in Chromium with the internet cut off and a script-src 'self' policy: Swagger UI
renders every operation with its Chinese summary, and an API key entered through Authorize is
sent with "Try it out"."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import ConsoleMessage, Page, Route, expect
from sqlalchemy import Engine

from kuaishu.accounts.roles import Role
from kuaishu.db import make_sessionmaker, transaction
from tests import factories as f

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

POLICY = "script-src 'self'; object-src 'none'; base-uri 'none'"


def offline(page: Page, server: str) -> list[str]:
    """Abort every request that leaves the test server (recorded); the docs page gets the policy."""
    outside: list[str] = []
    here = urlsplit(server).netloc

    def handle(route: Route) -> None:
        url = urlsplit(route.request.url)
        if url.scheme in ("data", "blob"):
            route.continue_()
        elif url.netloc != here:
            outside.append(route.request.url)
            route.abort("internetdisconnected")
        elif url.path == "/api/v1/docs":
            response = route.fetch()
            route.fulfill(
                response=response,
                headers={**response.headers, "content-security-policy": POLICY},
            )
        else:
            route.continue_()

    page.route("**/*", handle)
    return outside


def test_docs_render_offline_and_authorize_sends_the_key(
    page: Page, live_server: str, live_engine: Engine
) -> None:
    with transaction(make_sessionmaker(live_engine)) as db:
        reader = f.user(db, roles=[Role.PLATFORM_OPERATOR], username="docs.reader")
        key = f.api_key(db, reader)
    outside = offline(page, live_server)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    page.on("console", console)

    page.goto(f"{live_server}/api/v1/docs")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("块数 kuaishu API")
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible()
    assert operations.count() > 50
    expect(page.get_by_text("部门列表", exact=True)).to_be_visible()
    authorize = page.locator("button.authorize")
    expect(authorize).to_be_visible()

    authorize.click()
    dialog = page.locator(".dialog-ux")
    expect(dialog).to_contain_text("ApiKeyBearer")
    expect(dialog).to_contain_text("X-API-Key")
    dialog.locator("input").first.fill(key)
    dialog.get_by_role("button", name="Apply credentials").first.click()
    expect(dialog.get_by_role("heading", name="Authorized")).to_be_visible()
    dialog.get_by_role("button", name="Close").first.click()

    me = page.locator("#operations-accounts-me_api_v1_me_get")
    me.locator(".opblock-summary").click()
    me.get_by_role("button", name="Try it out").click()
    me.get_by_role("button", name="Execute").click()
    expect(me.locator(".live-responses-table tbody .response-col_status").first).to_have_text("200")
    expect(me.locator(".live-responses-table")).to_contain_text("docs.reader")

    assert outside == []
    assert problems == []
