"""The exchange end to end: an unconditional grant at once, a conditional application refused
with a reason, revised and approved narrower than asked, reads bound by the grant (fields, rows,
masking, method, rate), and suspension and revocation that take effect on the next request."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

from kuaishu.calendar import china_today
from tests.functional.share.conftest import API, Exchange
from tests.http import ok, refused


def apply(x: Exchange, kind: str, who: str = "consumer", **body: Any) -> Any:
    return x.client.post(
        f"{API}/entries/{x.entries[kind]['id']}/applications",
        json={"purpose": "养老待遇资格核验", **body},
        headers=x.keys[who],
    )


def test_unconditional_is_granted_at_once_and_read_masked(exchange: Exchange) -> None:
    made = ok(apply(exchange, "unconditional", methods=["query", "lookup", "download"]), 201)
    assert made["kind"] == "grant" and made["grant"]["state"] == "active"
    grant = made["grant"]["id"]
    h = {**exchange.keys["consumer"], "X-Purpose": "%E5%BE%85%E9%81%87%E6%A0%B8%E9%AA%8C"}
    rows = ok(
        exchange.client.get(
            f"{API}/grants/{grant}/query", params={"shape": "objects", "limit": 5}, headers=h
        )
    )["rows"]
    assert len(rows) == 5
    # 姓名 is marked sensitive and has no share rule: shared as NULL, never as stored.
    assert (
        all(r["姓名"] is None for r in rows) and rows[0]["身份证号"] == exchange.rows[0]["身份证号"]
    )
    found = ok(
        exchange.client.get(
            f"{API}/grants/{grant}/lookup", params={"key": exchange.rows[3]["身份证号"]}, headers=h
        )
    )
    assert found["rows"][0][2] == exchange.rows[3]["区划代码"]
    body = exchange.client.get(f"{API}/grants/{grant}/download.csv", headers=h)
    assert body.status_code == 200 and "张1," not in body.text
    assert len(list(csv.reader(io.StringIO(body.text)))) == 41
    event = exchange.audit("data.query")[-1]
    assert event.details is not None and event.details["grant"] == grant
    assert event.purpose == "待遇核验" and event.details["channel"] == "share"
    # The provider's department reads its own data through the data API, not through a grant.
    refused(
        exchange.client.get(f"{API}/grants/{grant}/query", headers=exchange.keys["other"]),
        403,
        "permission_denied",
    )


def test_not_shared_cannot_be_asked_for_and_says_why(exchange: Exchange) -> None:
    error = refused(apply(exchange, "not_shared"), 409, "not_shared")
    assert "个人信息保护法" in error["message"] and error["details"]["basis"]


def test_conditional_application_refused_revised_and_approved(exchange: Exchange) -> None:
    refused(apply(exchange, "conditional"), 422, "legal_basis_required")
    asked = ok(
        apply(
            exchange,
            "conditional",
            legal_basis="《社会保险法》第八十条",
            fields=["身份证号", "姓名", "区划代码", "补助金额"],
            methods=["query", "lookup", "download"],
        ),
        201,
    )
    assert asked["kind"] == "application"
    application = asked["application"]
    assert application["state"] == "submitted" and application["overdue"] is False
    assert date.fromisoformat(application["due_on"]) > china_today()
    url = f"{API}/applications/{application['id']}"
    officer = exchange.keys["provider_officer"]
    refused(
        exchange.client.post(f"{url}/reject", json={"reason": ""}, headers=officer),
        422,
        "validation_failed",
    )
    refused(
        exchange.client.post(
            f"{url}/approve", json={}, headers=exchange.keys["provider_cataloguer"]
        ),
        403,
        "permission_denied",
    )
    rejected = ok(
        exchange.client.post(f"{url}/reject", json={"reason": "请缩小到本市范围"}, headers=officer)
    )
    assert rejected["state"] == "rejected" and rejected["decision_reason"] == "请缩小到本市范围"
    again = ok(
        exchange.client.post(
            f"{url}/resubmit",
            json={
                "purpose": "养老待遇资格核验",
                "legal_basis": "《社会保险法》第八十条",
                "fields": ["身份证号", "姓名", "补助金额"],
                "row_filter": [["区划代码", "520102"]],
                "methods": ["query", "lookup"],
            },
            headers=exchange.keys["consumer"],
        )
    )
    assert (again["state"], again["rounds"]) == ("submitted", 2)
    grant = ok(
        exchange.client.post(
            f"{url}/approve",
            json={
                "fields": ["身份证号", "姓名", "补助金额"],
                "masking": [
                    {"item": "身份证号", "method": "mask", "params": {"first": 6, "last": 4}}
                ],
                "rate_limit": 4,
                "expires_on": (china_today() + timedelta(days=365)).isoformat(),
                "reason": "同意",
            },
            headers=officer,
        )
    )
    assert grant["methods"] == ["query", "lookup"] and grant["row_filter"] == [
        ["区划代码", "520102"]
    ]
    gid = grant["id"]
    h = exchange.keys["consumer"]
    body = ok(
        exchange.client.get(f"{API}/grants/{gid}/query", params={"shape": "objects"}, headers=h)
    )
    # Only the granted fields; only the rows of 520102 (the odd ones); the ID masked by the grant.
    assert [f["name"] for f in body["fields"]] == ["身份证号", "姓名", "补助金额"]
    assert body["total"] == 20
    assert (
        body["rows"][0]["身份证号"]
        == exchange.rows[0]["身份证号"][:6] + "********" + exchange.rows[0]["身份证号"][-4:]
    )
    refused(
        exchange.client.get(f"{API}/grants/{gid}/query", params={"区划代码": "520103"}, headers=h),
        422,
        "unknown_column",
    )
    refused(
        exchange.client.get(f"{API}/grants/{gid}/download.csv", headers=h),
        403,
        "method_not_granted",
    )
    ok(exchange.client.get(f"{API}/grants/{gid}/dictionary", headers=h))
    ok(exchange.client.get(f"{API}/grants/{gid}/query", headers=h))
    refused(exchange.client.get(f"{API}/grants/{gid}/query", headers=h), 429, "rate_limited")
    assert exchange.audit("share.approve") and exchange.audit("share.reject")


def test_revoking_a_grant_denies_the_very_next_request(exchange: Exchange) -> None:
    gid = ok(apply(exchange, "unconditional"), 201)["grant"]["id"]
    h, officer = exchange.keys["consumer"], exchange.keys["provider_officer"]
    ok(exchange.client.get(f"{API}/grants/{gid}/query", headers=h))
    suspended = ok(
        exchange.client.post(
            f"{API}/grants/{gid}/suspend", json={"reason": "数据核查"}, headers=officer
        )
    )
    assert suspended["state"] == "suspended"
    error = refused(
        exchange.client.get(f"{API}/grants/{gid}/query", headers=h), 403, "grant_suspended"
    )
    assert error["details"]["reason"] == "数据核查"
    ok(
        exchange.client.post(
            f"{API}/grants/{gid}/resume", json={"reason": "核查完毕"}, headers=officer
        )
    )
    ok(exchange.client.get(f"{API}/grants/{gid}/query", headers=h))
    refused(
        exchange.client.post(f"{API}/grants/{gid}/revoke", json={"reason": "x"}, headers=h),
        403,
        "permission_denied",
    )
    ok(
        exchange.client.post(
            f"{API}/grants/{gid}/revoke", json={"reason": "用途已完成"}, headers=officer
        )
    )
    refused(exchange.client.get(f"{API}/grants/{gid}/query", headers=h), 403, "grant_revoked")
    refused(
        exchange.client.post(
            f"{API}/grants/{gid}/resume", json={"reason": "误操作"}, headers=officer
        ),
        409,
        "invalid_transition",
    )
    assert exchange.audit("share.grant_revoked")[-1].details == {
        "from": "active",
        "reason": "用途已完成",
    }


def test_an_expired_grant_reads_nothing_until_renewed(exchange: Exchange) -> None:
    yesterday = china_today() - timedelta(days=1)
    gid = ok(apply(exchange, "unconditional", period_end=yesterday.isoformat()), 201)["grant"]["id"]
    h = exchange.keys["consumer"]
    assert ok(exchange.client.get(f"{API}/grants/{gid}", headers=h))["state"] == "expired"
    refused(exchange.client.get(f"{API}/grants/{gid}/query", headers=h), 403, "grant_expired")
    renewed = ok(
        exchange.client.post(
            f"{API}/grants/{gid}/renew",
            json={"expires_on": (china_today() + timedelta(days=30)).isoformat()},
            headers=exchange.keys["provider_officer"],
        )
    )
    assert renewed["state"] == "active"
    ok(exchange.client.get(f"{API}/grants/{gid}/query", headers=h))


def test_the_operator_arbitrates_a_refusal(exchange: Exchange) -> None:
    asked = ok(
        apply(exchange, "conditional", who="consumer_officer", legal_basis="《社会救助暂行办法》"),
        201,
    )["application"]
    url = f"{API}/applications/{asked['id']}"
    ok(
        exchange.client.post(
            f"{url}/reject",
            json={"reason": "不符合条件"},
            headers=exchange.keys["provider_officer"],
        )
    )
    refused(
        exchange.client.post(
            f"{url}/arbitrate", json={}, headers=exchange.keys["provider_officer"]
        ),
        403,
        "permission_denied",
    )
    grant = ok(
        exchange.client.post(
            f"{url}/arbitrate", json={"reason": "依法应予共享"}, headers=exchange.keys["operator"]
        )
    )
    assert grant["state"] == "active"
    assert ok(exchange.client.get(url, headers=exchange.keys["consumer"]))["state"] == "approved"
    assert exchange.audit("share.arbitrate")


def test_usage_per_grant_for_the_provider_and_the_operator(exchange: Exchange) -> None:
    gid = ok(apply(exchange, "unconditional", methods=["query", "download"]), 201)["grant"]["id"]
    h = exchange.keys["consumer"]
    for _ in range(3):
        ok(exchange.client.get(f"{API}/grants/{gid}/query", params={"limit": 7}, headers=h))
    assert exchange.client.get(f"{API}/grants/{gid}/download.csv", headers=h).status_code == 200
    exchange.client.get(f"{API}/grants/{gid}/lookup", params={"key": "x"}, headers=h)  # not granted
    items = ok(exchange.client.get(f"{API}/usage", headers=exchange.keys["provider_officer"]))[
        "items"
    ]
    mine = next(i for i in items if i["grant"] == gid)
    assert (mine["calls"], mine["rows"], mine["downloads"]) == (4, 3 * 7 + 40, 1)
    assert mine["denied"] == 1  # the refused lookup is in the trail too
    assert ok(exchange.client.get(f"{API}/usage", headers=h))["items"] == []  # provides nothing
    operator = ok(exchange.client.get(f"{API}/usage", headers=exchange.keys["operator"]))["items"]
    assert {i["grant"] for i in operator} >= {gid}
    sheet = exchange.client.get(
        f"{API}/usage", params={"format": "csv"}, headers=exchange.keys["provider_officer"]
    )
    assert sheet.status_code == 200 and sheet.text.startswith("\ufeff授权,资源")
    # Totals per consuming department: the sums of its grants' rows.
    by_consumer = ok(
        exchange.client.get(
            f"{API}/usage", params={"by": "consumer"}, headers=exchange.keys["provider_officer"]
        )
    )["items"]
    consumer = next(i for i in items if i["grant"] == gid)["consumer"]
    total = next(i for i in by_consumer if i["consumer"] == consumer)
    theirs = [i for i in items if i["consumer"] == consumer]
    assert total["grants"] == len(theirs) >= 1
    assert total["calls"] == sum(i["calls"] for i in theirs) >= 4
    assert total["rows"] == sum(i["rows"] for i in theirs)
    sheet = exchange.client.get(
        f"{API}/usage",
        params={"format": "csv", "by": "provider"},
        headers=exchange.keys["operator"],
    )
    assert sheet.text.startswith("\ufeff提供部门,授权数,调用次数")


def test_share_catalog_shows_terms_quality_and_contact_for_every_share_type(
    exchange: Exchange,
) -> None:
    found = ok(
        exchange.client.get(
            f"{API}/catalog", params={"q": "救助对象名册"}, headers=exchange.keys["consumer"]
        )
    )
    by_type = {item["share_type"]: item for item in found["items"]}
    assert set(by_type) == {"unconditional", "conditional", "not_shared"}
    assert found["facets"]["share_type"] == {
        "unconditional": 1,
        "conditional": 1,
        "not_shared": 1,
    }
    conditional, refused_entry = by_type["conditional"], by_type["not_shared"]
    assert conditional["share_conditions"] == "仅用于待遇核验"
    assert conditional["provider"] == "省民政厅"
    assert refused_entry["share_basis"].startswith("《中华人民共和国个人信息保护法》")
    # Every entry has loaded data: its served version's quality score is shown.
    assert all(isinstance(i["quality_score"], float) for i in found["items"])
    only = ok(
        exchange.client.get(
            f"{API}/catalog",
            params={"share_type": "conditional", "q": "救助对象名册"},
            headers=exchange.keys["consumer"],
        )
    )
    assert [i["id"] for i in only["items"]] == [exchange.entries["conditional"]["id"]]
    refused(exchange.client.get(f"{API}/catalog"), 401, "not_authenticated")


def test_a_wrong_masking_override_is_refused_when_granted_not_at_the_first_read(
    exchange: Exchange,
) -> None:
    asked = ok(
        apply(exchange, "conditional", legal_basis="《社会救助暂行办法》", methods=["query"]), 201
    )["application"]["id"]
    url = f"{API}/applications/{asked}"
    wrong = [
        {"item": "姓名", "method": "truncate", "params": {}},  # truncate needs "keep"
        {"item": "没有的字段", "method": "null"},
    ]
    body = refused(
        exchange.client.post(
            f"{url}/approve", json={"masking": wrong}, headers=exchange.keys["provider_officer"]
        ),
        422,
        "bad_masking_override",
    )
    assert [p["field"] for p in body["details"]] == ["rules[0].params", "rules[1].item"]
    still = ok(exchange.client.get(url, headers=exchange.keys["consumer"]))
    assert still["state"] == "submitted" and still["grant_id"] is None
