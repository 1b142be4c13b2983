"""What a person sees in the console: signing in and out, a failed sign-in, API keys, roles."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from kuaishu.demo import DEMO_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def sign_in(page: Page, base: str, username: str, password: str = DEMO_PASSWORD) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()


def test_operator_signs_in_sees_admin_and_signs_out(
    page: Page, live_server: str, tmp_path: Path
) -> None:
    sign_in(page, live_server, "operator")
    expect(page.get_by_role("heading", name="欢迎，王运营")).to_be_visible()
    nav = page.get_by_role("navigation", name="主导航")
    expect(nav.get_by_role("link", name="用户")).to_be_visible()
    expect(nav.get_by_role("link", name="审计日志")).to_have_count(0)
    page.get_by_role("link", name="用户", exact=True).first.click()
    expect(page.get_by_role("cell", name="cataloguer")).to_be_visible()
    page.screenshot(path=tmp_path / "admin-users.png")
    page.get_by_test_id("logout").click()
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    page.goto(f"{live_server}/admin/users")
    expect(page).to_have_url(f"{live_server}/login?next=/admin/users")


def test_failed_sign_in_says_why(page: Page, live_server: str) -> None:
    sign_in(page, live_server, "reviewer", "not-the-password")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("用户名或密码不正确")
    # The same answer for a real and an unknown name: no count of tries left to probe with.
    expect(alert).not_to_contain_text("次")
    expect(page.get_by_label("用户名")).to_have_value("reviewer")


def test_api_key_is_shown_once_and_works(page: Page, live_server: str) -> None:
    sign_in(page, live_server, "consumer")
    page.goto(f"{live_server}/account")
    page.get_by_label("用途").fill("浏览器测试脚本")
    page.get_by_role("button", name="创建密钥").click()
    secret = page.get_by_test_id("api-key-secret").input_value()
    assert secret.startswith("ks_")
    me = httpx.get(f"{live_server}/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.json()["username"] == "consumer"
    page.goto(f"{live_server}/account")
    expect(page.get_by_role("cell", name="浏览器测试脚本")).to_be_visible()
    assert secret not in page.content()
    page.get_by_role("row", name="浏览器测试脚本").get_by_role("button", name="撤销").click()
    expect(page.get_by_role("status")).to_contain_text("API 密钥已撤销")
    revoked = httpx.get(f"{live_server}/api/v1/me", headers={"X-API-Key": secret})
    assert revoked.status_code == 401


def test_auditor_reads_the_trail_and_others_cannot(
    page: Page, live_server: str, tmp_path: Path
) -> None:
    sign_in(page, live_server, "auditor")
    page.get_by_role("link", name="审计日志").first.click()
    expect(page.get_by_role("heading", name="审计日志")).to_be_visible()
    expect(page.get_by_role("cell", name="auth.sign_in").first).to_be_visible()
    page.screenshot(path=tmp_path / "audit.png")
    page.context.clear_cookies()
    sign_in(page, live_server, "cataloguer")
    response = page.goto(f"{live_server}/audit")
    assert response is not None and response.status == 403
    expect(page.get_by_text("您没有执行此操作的权限")).to_be_visible()


def test_english_switch(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/login")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
