"""The catalog in the browser: a cataloguer fills in the entry form and submits it; a reviewer
finds it waiting for review."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_console import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_cataloguer_submits_an_entry_and_the_reviewer_sees_it(page: Page, live_server: str) -> None:
    name = f"浏览器测试人口表{uuid.uuid4().hex[:6]}"
    sign_in(page, live_server, "cataloguer")
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="本部门目录").click()
    page.get_by_role("link", name="新建目录条目").click()
    page.get_by_label("信息资源名称").fill(name)
    page.get_by_label("信息资源摘要").fill("全省分地区年末常住人口")
    page.get_by_label("类", exact=True).select_option(label="部门信息资源")
    page.get_by_label("领域").select_option("社保就业")
    page.get_by_label("信息资源格式").select_option(label="电子表格")
    page.get_by_label("更新周期").select_option(label="每年")
    page.get_by_label("共享类型").select_option(label="无条件共享")
    page.get_by_label("接口", exact=True).check()
    page.get_by_label("开放类型").select_option(label="无条件开放")
    page.get_by_label("信息项名称 1", exact=True).fill("地区")
    page.get_by_label("长度 1", exact=True).fill("50")
    page.get_by_label("信息项名称 2", exact=True).fill("年末常住人口")
    page.get_by_label("数据类型 2", exact=True).select_option("N")
    page.get_by_role("button", name="保存草稿").click()
    expect(page.get_by_role("status")).to_contain_text("已创建")
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(page.get_by_role("cell", name="年末常住人口")).to_be_visible()
    page.get_by_role("button", name="提交审核").click()
    expect(page.get_by_text("第 1 版 · 待审核").first).to_be_visible()

    page.context.clear_cookies()
    sign_in(page, live_server, "reviewer")
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="待审核").click()
    page.get_by_role("link", name=name).click()
    expect(page.get_by_role("button", name="审核通过")).to_be_visible()
    expect(page.get_by_role("button", name="退回修改")).to_be_visible()
