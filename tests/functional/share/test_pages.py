"""The exchange's console pages, both sides: the share catalog with every share type (and why a
not-shared entry cannot be had), applying, answering, revising and arbitrating, grants managed and
read (online lookup), objections and usage — and every page form leaves its audit event."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import update

from kuaishu.calendar import china_today
from kuaishu.share.models import ShareApplication
from tests import factories as f
from tests.functional.share.conftest import API, Exchange
from tests.functional.store.conftest import load_file, write_csv
from tests.functional.test_api_contract import all_routes
from tests.http import ok, refused


class Person:
    """Someone signed in to the console: ``get`` a page, ``post`` a form (CSRF token added)."""

    def __init__(self, x: Exchange, who: str) -> None:
        username = ok(x.client.get("/api/v1/me", headers=x.keys[who]))["username"]
        self.client = TestClient(x.client.app, base_url="http://testserver")
        self.csrf = f.sign_in(self.client, username).csrf

    def get(self, url: str) -> Any:
        return self.client.get(url)

    def post(self, url: str, **data: Any) -> Any:
        return self.client.post(url, data={"csrf_token": self.csrf, **data}, follow_redirects=False)


@pytest.fixture(scope="module")
def people(exchange: Exchange) -> dict[str, Person]:
    who = ("consumer", "provider_officer", "provider_cataloguer", "operator", "other")
    return {name: Person(exchange, name) for name in who}


def landed(response: Any, prefix: str) -> int:
    """The id in the page a form redirected to."""
    assert response.status_code == 303, response.text
    found = re.match(rf"{prefix}/(\d+)", response.headers["location"])
    assert found, response.headers["location"]
    return int(found.group(1))


def asking(**extra: Any) -> dict[str, Any]:
    return {
        "purpose": "养老待遇资格核验",
        "legal_basis": "《社会保险法》第八十条",
        "fields": ["身份证号", "姓名", "区划代码", "补助金额"],
        "methods": ["lookup", "query"],
        **extra,
    }


def apply(x: Exchange, person: Person, kind: str, **extra: Any) -> Any:
    return person.post(f"/share/entries/{x.entries[kind]['id']}/apply", **asking(**extra))


def test_share_catalog_shows_share_types_and_why_not_shared(
    exchange: Exchange, people: dict[str, Person]
) -> None:
    consumer = people["consumer"]
    page = consumer.get("/share?q=救助对象名册")
    assert page.status_code == 200
    for text in ("无条件共享", "有条件共享", "不予共享", "仅用于待遇核验", "质量评分"):
        assert text in page.text, text
    assert "不予共享依据" in page.text and "个人信息保护法》第十三条" in page.text
    ids = {kind: e["id"] for kind, e in exchange.entries.items()}
    assert f'href="/share/entries/{ids["unconditional"]}/apply"' in page.text
    assert f'href="/share/entries/{ids["conditional"]}/apply"' in page.text
    assert f'href="/share/entries/{ids["not_shared"]}/apply"' not in page.text
    only = consumer.get("/share?share_type=not_shared&q=救助对象名册")
    assert f"/share/entries/{ids['unconditional']}/apply" not in only.text
    refused_page = consumer.get(f"/share/entries/{ids['not_shared']}/apply")
    assert refused_page.status_code == 409 and "个人信息保护法" in refused_page.text
    # The providing department cannot ask for its own data, and has no button for it.
    own = people["provider_officer"].get("/share?q=救助对象名册")
    assert "/apply" not in own.text
    assert 'href="/share"' in consumer.get("/").text


def test_unconditional_application_is_granted_at_once(
    exchange: Exchange, people: dict[str, Person]
) -> None:
    consumer = people["consumer"]
    form = consumer.get(f"/share/entries/{exchange.entries['unconditional']['id']}/apply")
    assert form.status_code == 200
    for label in ("联机查询", "批量下载", "接口查询", "使用目的", "行范围"):
        assert label in form.text, label
    sent = apply(exchange, consumer, "unconditional", legal_basis="")
    grant = landed(sent, "/share/grants")
    assert sent.headers["location"].endswith("done=granted")
    page = consumer.get(sent.headers["location"])
    assert "已获得授权" in page.text and 'data-testid="grant-state">有效<' in page.text
    assert f'action="/share/grants/{grant}/lookup"' in page.text


def test_conditional_application_refused_revised_and_approved_narrower(
    exchange: Exchange, people: dict[str, Person]
) -> None:
    consumer, officer = people["consumer"], people["provider_officer"]
    missing = apply(exchange, consumer, "conditional", legal_basis="")
    assert missing.status_code == 422 and "有条件共享须说明申请依据。" in missing.text
    assert "养老待遇资格核验" in missing.text  # what was typed is kept
    bad_rows = apply(exchange, consumer, "conditional", row_filter="区划代码__between=1")
    assert bad_rows.status_code == 422 and "共享申请有 1 处错误。" in bad_rows.text
    assert "写法有误" in bad_rows.text and "区划代码__between=1" in bad_rows.text
    sent = apply(exchange, consumer, "conditional", row_filter="区划代码__in=520102,520103\n")
    number = landed(sent, "/share/applications")
    due = ok(exchange.client.get(f"{API}/applications/{number}", headers=exchange.keys["consumer"]))
    mine = consumer.get(sent.headers["location"])
    assert "申请已提交" in mine.text and f"答复期限：{due['due_on']}" in mine.text
    assert "区划代码__in=520102,520103" in mine.text and "拒绝申请" not in mine.text
    received = officer.get("/share/applications")
    assert f'href="/share/applications/{number}"' in received.text.split("收到的", 1)[1]
    url = f"/share/applications/{number}"
    assert officer.get(url).text.count(due["due_on"]) >= 1

    empty = officer.post(f"{url}/reject", reason="  ")
    assert empty.status_code == 422 and "拒绝共享申请须说明理由。" in empty.text
    assert people["provider_cataloguer"].post(f"{url}/reject", reason="否").status_code == 403
    assert (
        officer.post(f"{url}/reject", reason="请缩小到本市范围")
        .headers["location"]
        .endswith("done=rejected")
    )
    seen = consumer.get(url)
    assert "已拒绝" in seen.text and "请缩小到本市范围" in seen.text
    assert "修改后重新提交" in seen.text
    revised = consumer.post(
        f"{url}/resubmit", **asking(row_filter="区划代码=520102", fields=["身份证号", "姓名"])
    )
    assert revised.status_code == 303
    assert (
        ok(exchange.client.get(f"{API}/applications/{number}", headers=exchange.keys["consumer"]))[
            "rounds"
        ]
        == 2
    )

    nothing = officer.post(f"{url}/approve", methods=["lookup"], row_filter="")
    assert nothing.status_code == 422 and "请至少选择一个信息项。" in nothing.text
    approved = officer.post(
        f"{url}/approve",
        fields=["身份证号", "姓名"],
        **{"mask-1": "mask", "params-1": '{"first": 1}'},
        row_filter="区划代码=520102",
        methods=["lookup"],
        rate_limit="30",
        reason="同意，限本区",
    )
    grant = landed(approved, "/share/grants")
    body = ok(exchange.client.get(f"{API}/grants/{grant}", headers=exchange.keys["consumer"]))
    assert body["fields"] == ["身份证号", "姓名"] and body["methods"] == ["lookup"]
    assert body["masking"] == [{"item": "姓名", "method": "mask", "params": {"first": 1}}]
    assert (body["rate_limit"], body["row_filter"]) == (30, [["区划代码", "520102"]])
    decided = consumer.get(url)
    assert "已同意" in decided.text and f'href="/share/grants/{grant}"' in decided.text


def test_operator_arbitrates_a_refusal(exchange: Exchange, people: dict[str, Person]) -> None:
    number = landed(apply(exchange, people["consumer"], "conditional"), "/share/applications")
    url = f"/share/applications/{number}"
    people["provider_officer"].post(f"{url}/reject", reason="不同意")
    assert "仲裁" not in people["consumer"].get(url).text
    operator = people["operator"]
    assert "仲裁：推翻拒绝并授权" in operator.get(url).text
    sent = operator.post(
        f"{url}/arbitrate", fields=["身份证号"], methods=["query"], reason="应予共享"
    )
    grant = landed(sent, "/share/grants")
    assert exchange.audit("share.arbitrate")[-1].details["grant"] == grant  # type: ignore[index]


def test_lookup_on_the_grant_page_shows_only_granted_masked_fields(
    exchange: Exchange, people: dict[str, Person]
) -> None:
    consumer = people["consumer"]
    grant = landed(
        apply(exchange, consumer, "unconditional", fields=["身份证号", "姓名", "区划代码"]),
        "/share/grants",
    )
    page = consumer.get(f"/share/grants/{grant}")
    assert 'name="key-0"' in page.text and "download.csv" not in page.text
    wanted = exchange.rows[6]
    found = consumer.post(f"/share/grants/{grant}/lookup", **{"key-0": wanted["身份证号"]})
    assert found.status_code == 200
    table = found.text.split('data-testid="lookup-result"', 1)[1].split("</table>", 1)[0]
    assert wanted["身份证号"] in table and wanted["区划代码"] in table
    # 补助金额 was not granted; 姓名 is sensitive and shared masked (NULL without a rule).
    assert "补助金额" not in table and wanted["姓名"] not in table and "—" in table
    event = exchange.audit("data.lookup")[-1]
    assert event.details is not None and event.details["grant"] == grant
    assert event.purpose == "养老待遇资格核验"
    miss = consumer.post(f"/share/grants/{grant}/lookup", **{"key-0": "000"})
    assert "未找到关键字段为该值的记录。" in miss.text
    blank = consumer.post(f"/share/grants/{grant}/lookup", **{"key-0": ""})
    assert blank.status_code == 422 and "请提供关键字段的值" in blank.text
    # The provider manages the grant but reads its own data elsewhere: no lookup form.
    assert 'name="key-0"' not in people["provider_officer"].get(f"/share/grants/{grant}").text


def test_revoking_from_the_page_refuses_the_next_api_read(
    exchange: Exchange, people: dict[str, Person]
) -> None:
    consumer, officer = people["consumer"], people["provider_officer"]
    grant = landed(
        apply(exchange, consumer, "unconditional", methods=["query", "download"]), "/share/grants"
    )
    h = exchange.keys["consumer"]
    ok(exchange.client.get(f"{API}/grants/{grant}/query", headers=h))
    page = consumer.get(f"/share/grants/{grant}").text
    assert f"/api/v1/share/grants/{grant}/download.csv" in page
    assert "&amp;variant=excel" in page  # the CSV for Excel is offered beside the exact one
    url = f"/share/grants/{grant}"
    assert "撤销授权" in officer.get(url).text and "撤销授权" not in consumer.get(url).text
    assert consumer.post(f"{url}/revoke", reason="x").status_code == 403
    empty = officer.post(f"{url}/revoke", reason="")
    assert empty.status_code == 422 and "暂停、恢复或撤销授权须说明理由。" in empty.text
    assert officer.post(f"{url}/suspend", reason="数据核查").status_code == 303
    assert "暂停" in consumer.get(url).text
    assert officer.post(f"{url}/resume", reason="核查完毕").status_code == 303
    renewed = officer.post(f"{url}/renew", expires_on="2099-12-31", reason="延长")
    assert renewed.status_code == 303 and "2099-12-31" in consumer.get(url).text
    assert officer.post(f"{url}/revoke", reason="用途已完成").status_code == 303
    refused(exchange.client.get(f"{API}/grants/{grant}/query", headers=h), 403, "grant_revoked")
    seen = consumer.get(url)
    assert "已撤销" in seen.text and "用途已完成" in seen.text and "download.csv" not in seen.text
    # A read the grant no longer allows is refused on the page too — and recorded.
    assert consumer.post(f"{url}/lookup", **{"key-0": "1"}).status_code == 403
    assert exchange.audit("share.read")[-1].outcome == "denied"


def test_usage_page_lists_the_grant(exchange: Exchange, people: dict[str, Person]) -> None:
    consumer = people["consumer"]
    grant = landed(apply(exchange, consumer, "unconditional"), "/share/grants")
    wanted = exchange.rows[0]["身份证号"]
    consumer.post(f"/share/grants/{grant}/lookup", **{"key-0": wanted})
    page = people["provider_officer"].get("/share/usage")
    assert page.status_code == 200 and "/api/v1/share/usage?format=csv" in page.text
    row = page.text.split(f'href="/share/grants/{grant}"', 1)[1].split("</tr>", 1)[0]
    assert "省人社厅" in row and "<td>1</td>" in row
    assert f'href="/share/grants/{grant}"' not in people["other"].get("/share/usage").text


def test_objection_raised_and_answered_through_the_pages(
    exchange: Exchange, people: dict[str, Person], module_data_dir: Path
) -> None:
    consumer, officer = people["consumer"], people["provider_officer"]
    grant = landed(apply(exchange, consumer, "unconditional"), "/share/grants")
    url = f"/share/grants/{grant}/objections"
    wrong = exchange.rows[2]["身份证号"]
    incomplete = consumer.post(url, records="", description="金额不对")
    assert incomplete.status_code == 422 and "有疑义的记录" in incomplete.text
    assert "金额不对" in incomplete.text
    raised = consumer.post(
        url,
        records=f"{wrong}\n",
        fields=["补助金额"],
        description="补助金额与发放台账不符",
        evidence="发放台账第 12 页",
    )
    number = landed(raised, "/share/objections")
    assert f'href="/share/objections/{number}"' in officer.get("/share/objections").text
    page = officer.get(f"/share/objections/{number}")
    assert "答复疑义" in page.text and wrong in page.text and "发放台账第 12 页" in page.text
    assert "答复疑义" not in consumer.get(f"/share/objections/{number}").text
    empty = officer.post(f"/share/objections/{number}/answer", corrected_in="", reason="")
    assert empty.status_code == 422 and "驳回疑义须说明理由。" in empty.text
    answered = officer.post(
        f"/share/objections/{number}/answer", corrected_in="", reason="经核实台账有误，数据无误"
    )
    assert answered.headers["location"].endswith("done=answered")
    for person in (consumer, officer):
        history = person.get(f"/share/objections/{number}").text
        assert "已驳回" in history and "未予更正，理由：经核实台账有误，数据无误" in history

    again = landed(
        consumer.post(url, records=wrong, fields=["姓名"], description="姓名有错别字"),
        "/share/objections",
    )
    answer = f"/share/objections/{again}/answer"
    assert "尚无更新的数据版本" in officer.get(f"/share/objections/{again}").text
    entry = exchange.entries["unconditional"]["id"]
    load_file(exchange.factory, entry, write_csv(module_data_dir / "fixed.csv", exchange.rows))
    assert '<option value="2">第 2 版</option>' in officer.get(f"/share/objections/{again}").text
    same = officer.post(answer, corrected_in="1")
    assert same.status_code == 422 and "更正须在第 1 版之后的版本中。" in same.text
    assert officer.post(answer, corrected_in="2", reason="已按户籍更正").status_code == 303
    history = consumer.get(f"/share/objections/{again}").text
    assert "已更正" in history and "已在第 2 版更正。" in history and "已按户籍更正" in history


def test_lists_show_each_side(exchange: Exchange, people: dict[str, Person]) -> None:
    number = landed(apply(exchange, people["consumer"], "conditional"), "/share/applications")
    mine = people["consumer"].get("/share/applications").text
    made = mine.split("收到的", 1)[0]
    assert f"/share/applications/{number}" in made and "待答复" in made
    waiting = people["provider_officer"].get("/share/applications?state=submitted").text
    assert f"/share/applications/{number}" in waiting
    assert f"/share/applications/{number}" in people["operator"].get("/share/applications").text
    assert people["other"].get(f"/share/applications/{number}").status_code == 403
    with exchange.factory() as db:  # ten working days pass without an answer
        db.execute(
            update(ShareApplication)
            .where(ShareApplication.id == number)
            .values(due_on=china_today() - timedelta(days=1))
        )
        db.commit()
    late = people["consumer"].get("/share/applications").text.split(f"#{number}<", 1)[1]
    assert "已逾期" in late.split("</tr>", 1)[0]
    detail = people["provider_officer"].get(f"/share/applications/{number}").text
    assert "已逾期。" in detail.split('data-testid="deadline"', 1)[1].split("</p>", 1)[0]
    grants = people["consumer"].get("/share/grants").text
    assert "我方获得的" in grants and "/share/grants/" in grants


def test_every_page_form_leaves_its_audit_event(
    exchange: Exchange, people: dict[str, Person]
) -> None:
    """Each POST page of the exchange driven once; a new one not driven here fails the test."""
    x, calls = exchange, {}
    consumer, officer = people["consumer"], people["provider_officer"]

    def drive(path: str, response: Any, action: str) -> Any:
        assert response.status_code in (200, 303), (path, response.text)
        calls[path] = action
        return response

    unconditional = x.entries["unconditional"]["id"]
    grant = landed(
        drive(
            "/share/entries/{entry_id}/apply",
            consumer.post(f"/share/entries/{unconditional}/apply", **asking()),
            "share.grant",
        ),
        "/share/grants",
    )
    first = landed(apply(x, consumer, "conditional"), "/share/applications")
    app_url = f"/share/applications/{first}"
    drive(
        "/share/applications/{application_id}/reject",
        officer.post(f"{app_url}/reject", reason="范围过大"),
        "share.reject",
    )
    drive(
        "/share/applications/{application_id}/resubmit",
        consumer.post(f"{app_url}/resubmit", **asking()),
        "share.resubmit",
    )
    approved = landed(
        drive(
            "/share/applications/{application_id}/approve",
            officer.post(f"{app_url}/approve", fields=["身份证号"], methods=["query"]),
            "share.approve",
        ),
        "/share/grants",
    )
    # One grant in force per consumer and entry: the arbitrated one comes after this one goes.
    officer.post(f"/share/grants/{approved}/revoke", reason="重新申请")
    second = landed(apply(x, consumer, "conditional"), "/share/applications")
    officer.post(f"/share/applications/{second}/reject", reason="否")
    drive(
        "/share/applications/{application_id}/arbitrate",
        people["operator"].post(
            f"/share/applications/{second}/arbitrate", fields=["身份证号"], methods=["query"]
        ),
        "share.arbitrate",
    )
    url = f"/share/grants/{grant}"
    drive(
        "/share/grants/{grant_id}/lookup",
        consumer.post(f"{url}/lookup", **{"key-0": x.rows[0]["身份证号"]}),
        "data.lookup",
    )
    for verb, action in (("suspend", "share.grant_suspended"), ("resume", "share.grant_active")):
        drive(
            f"/share/grants/{{grant_id}}/{verb}",
            officer.post(f"{url}/{verb}", reason="核查"),
            action,
        )
    drive(
        "/share/grants/{grant_id}/renew",
        officer.post(f"{url}/renew", expires_on="2099-01-01"),
        "share.grant_renew",
    )
    objection = landed(
        drive(
            "/share/grants/{grant_id}/objections",
            consumer.post(f"{url}/objections", records=x.rows[0]["身份证号"], description="有误"),
            "share.object",
        ),
        "/share/objections",
    )
    drive(
        "/share/objections/{objection_id}/answer",
        officer.post(f"/share/objections/{objection}/answer", reason="无误"),
        "share.objection_rejected",
    )
    drive(
        "/share/grants/{grant_id}/revoke",
        officer.post(f"{url}/revoke", reason="完成"),
        "share.grant_revoked",
    )
    followed = landed(apply(x, consumer, "unconditional", methods=["subscribe"]), "/share/grants")
    drive(
        "/share/grants/{grant_id}/subscriptions",
        consumer.post(
            f"/share/grants/{followed}/subscriptions",
            mode="push",
            endpoint="https://receiver.example/",
        ),
        "share.subscribe",
    )
    subscription = x.audit("share.subscribe")[-1].target_id
    for verb, action in (
        ("pause", "share.subscription_paused"),
        ("resume", "share.subscription_active"),
        ("stop", "share.subscription_stopped"),
    ):
        drive(
            f"/share/subscriptions/{{subscription_id}}/{verb}",
            consumer.post(f"/share/subscriptions/{subscription}/{verb}"),
            action,
        )
    posted = {
        route.path
        for route in all_routes(x.client.app.routes)  # type: ignore[attr-defined]
        if isinstance(route, APIRoute) and route.path.startswith("/share/")
        if route.methods & {"POST", "PUT", "PATCH", "DELETE"}
    }
    assert posted == set(calls), f"not driven here: {posted ^ set(calls)}"
    for path, action in calls.items():
        assert [e for e in x.audit(action) if e.outcome == "success"], f"{path}: no {action}"
