"""The sharing exchange in the browser, with the demo people: the human-resources consumer applies
for the statistics bureau's conditional entry, the bureau's chief data officer approves part of it
with a masked name, the consumer looks a person up and sees only what was granted, masked; then the
officer revokes the grant with a reason and the consumer sees it revoked."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine, select

from kuaishu.accounts.models import Department
from kuaishu.db import make_sessionmaker, transaction
from kuaishu.share.subscriptions import deliver_due
from tests import factories as f
from tests.browser.test_console import sign_in
from tests.functional.share.conftest import ITEMS, person
from tests.functional.share.test_subscriptions import Receiver
from tests.functional.store.conftest import load_file, write_csv

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@dataclass(frozen=True)
class Offered:
    name: str
    people: list[dict[str, object]]
    entry_id: int


def bureau_entry(engine: Engine, folder: Path, name: str, share_type: str, **extra: str) -> Offered:
    """An entry of the statistics bureau (the demo officer's department), with ten rows loaded."""
    factory = make_sessionmaker(engine)
    with transaction(factory) as db:
        bureau = db.scalar(select(Department).where(Department.code == "52006"))
        entry = f.published_entry(
            db,
            dept=bureau,
            name=name,
            items=ITEMS,
            keys=("身份证号",),
            sensitive=("姓名",),
            share_type=share_type,
            **extra,
        )
        entry_id = entry.id
    rows = [person(i) for i in range(1, 11)]
    load_file(factory, entry_id, write_csv(folder / f"{name}.csv", rows))
    return Offered(name, rows, entry_id)


@pytest.fixture(scope="module")
def offered(live_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Offered:
    """A conditional entry of the statistics bureau, with data."""
    return bureau_entry(
        live_engine,
        tmp_path_factory.mktemp("share"),
        f"困难群众救助名册{uuid.uuid4().hex[:6]}",
        "conditional",
        share_conditions="仅用于社会保险待遇核验",
        share_basis="《社会救助暂行办法》第五十七条",
    )


def switch_to(page: Page, base: str, username: str) -> None:
    page.context.clear_cookies()
    sign_in(page, base, username)


def test_apply_approve_part_look_up_and_revoke(
    page: Page, live_server: str, offered: Offered, tmp_path: Path
) -> None:
    sign_in(page, live_server, "consumer")
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="共享交换").click()
    page.get_by_label("检索").fill(offered.name)
    page.get_by_role("button", name="搜索").click()
    hit = page.locator("article.hit", has_text=offered.name)
    expect(hit).to_contain_text("有条件共享")
    expect(hit).to_contain_text("仅用于社会保险待遇核验")
    hit.get_by_role("link", name="申请共享").click()
    page.get_by_label("使用目的").fill("城乡居民养老保险待遇资格核验")
    page.get_by_label("申请依据").fill("《社会保险法》第八十条")
    page.get_by_label("联机查询").check()
    page.get_by_role("button", name="提交申请").click()
    expect(page.get_by_role("status")).to_contain_text("申请已提交")
    expect(page.get_by_test_id("deadline")).to_contain_text(
        re.compile(r"答复期限：\d{4}-\d{2}-\d{2}")
    )
    application_url = page.url.split("?", 1)[0]

    switch_to(page, live_server, "officer")
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="共享交换").click()
    page.get_by_role("link", name="申请", exact=True).click()
    number = application_url.rsplit("/", 1)[1]
    received = page.get_by_role("region", name="收到的")
    received.get_by_role("link", name=f"#{number}").click()
    expect(page.get_by_test_id("deadline")).to_be_visible()
    approve = page.get_by_role("form", name="同意并授权")
    approve.get_by_label("补助金额", exact=True).uncheck()
    approve.get_by_label("脱敏方式：姓名").select_option(label="遮盖（保留长度）")
    approve.get_by_label("参数：姓名").fill('{"first": 1}')
    approve.get_by_label("联机查询").check()
    approve.get_by_label("答复说明").fill("同意，不含补助金额")
    approve.get_by_role("button", name="同意", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("已同意，授权已生成")
    grant_url = page.url.split("?", 1)[0]
    expect(page.get_by_test_id("granted-fields")).not_to_contain_text("补助金额")

    switch_to(page, live_server, "consumer")
    page.goto(application_url)
    expect(page.get_by_test_id("decision-reason")).to_have_text("同意，不含补助金额")
    page.get_by_role("link", name=re.compile(r"共享授权 #\d+")).click()
    wanted = offered.people[2]
    lookup = page.get_by_role("region", name="联机查询")
    lookup.get_by_label("身份证号").fill(str(wanted["身份证号"]))
    lookup.get_by_role("button", name="查询").click()
    result = page.get_by_test_id("lookup-result")
    expect(result.get_by_role("columnheader")).to_have_count(3)
    expect(result.get_by_role("columnheader", name="补助金额")).to_have_count(0)
    cells = result.get_by_role("cell")
    expect(cells.nth(0)).to_have_text(str(wanted["身份证号"]))
    expect(cells.nth(1)).to_have_text(str(wanted["姓名"])[0] + "*" * (len(str(wanted["姓名"])) - 1))
    expect(cells.nth(2)).to_have_text(str(wanted["区划代码"]))
    page.screenshot(path=tmp_path / "share-lookup.png")

    switch_to(page, live_server, "officer")
    page.goto(grant_url)
    manage = page.get_by_role("region", name="管理授权")
    manage.get_by_label("理由").fill("核验工作已完成")
    manage.get_by_role("button", name="撤销授权").click()
    expect(page.get_by_role("status")).to_contain_text("授权状态已更新")

    switch_to(page, live_server, "consumer")
    page.goto(grant_url)
    expect(page.get_by_test_id("grant-state")).to_have_text("已撤销")
    expect(page.get_by_text("核验工作已完成").first).to_be_visible()
    expect(page.get_by_role("button", name="查询")).to_have_count(0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """The consumer's HTTP endpoint on loopback: checks each push's signature."""
    found = Receiver()
    found.start()
    yield found
    found.stop()


def test_consumer_subscribes_a_push_sees_the_secret_once_and_the_rows_arrive_signed(
    page: Page,
    live_server: str,
    live_engine: Engine,
    receiver: Receiver,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    followed = bureau_entry(
        live_engine,
        tmp_path_factory.mktemp("feed"),
        f"低保对象名册{uuid.uuid4().hex[:6]}",
        "unconditional",
    )
    sign_in(page, live_server, "consumer")
    page.goto(f"{live_server}/share/entries/{followed.entry_id}/apply")
    page.get_by_label("使用目的").fill("养老保险待遇资格核验")
    page.get_by_label("数据订阅").check()
    page.get_by_role("button", name="提交申请").click()
    expect(page.get_by_role("status")).to_contain_text("已获得授权")
    grant_url = page.url.split("?", 1)[0]

    push = page.get_by_role("region", name="数据订阅").get_by_role("form", name="登记推送")
    push.get_by_label("推送地址").fill(receiver.url)
    push.get_by_label("每批条数").fill("4")
    push.get_by_role("button", name="登记推送").click()
    expect(page.get_by_role("status")).to_contain_text("离开此页后将无法再次查看此密钥")
    secret = page.get_by_test_id("subscription-secret").input_value()
    assert len(secret) >= 32
    receiver.secret = secret
    page.screenshot(path=tmp_path / "share-subscription-secret.png", full_page=True)
    page.get_by_role("link", name="返回共享授权").click()
    subscription = page.get_by_role("row").filter(has_text=receiver.url)
    expect(subscription.get_by_test_id("subscription-state")).to_have_text("运行中")
    expect(subscription.get_by_test_id("subscription-delivered")).to_have_text("0")
    assert secret not in page.content()

    # The scheduler's beat, run here against the live server's database.
    assert deliver_due(make_sessionmaker(live_engine)) > 0
    page.goto(grant_url)
    expect(subscription.get_by_test_id("subscription-delivered")).to_have_text(
        str(len(followed.people))
    )
    page.screenshot(path=tmp_path / "share-subscription.png", full_page=True)
    assert receiver.raw and receiver.bad_signatures == 0
    got = receiver.changes()
    assert {c["op"] for c in got} == {"added"}
    assert sorted(c["key"]["身份证号"] for c in got) == sorted(
        str(p["身份证号"]) for p in followed.people
    )
    assert all(c["row"]["姓名"] is None for c in got)  # sensitive, no share rule: NULL
