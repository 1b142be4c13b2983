"""The catalog through the API: the whole lifecycle, the refusals, 一数一源, every step audited."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from kuaishu.security.models import AuditEvent
from kuaishu.web.app import create_app
from tests.functional.catalog.conftest import Bureau, entry_body
from tests.functional.test_api_contract import all_routes

API = "/api/v1/catalog/entries"


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json())


def refused(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return str(error["message"])


def test_lifecycle_from_draft_to_withdrawal(
    client: TestClient, db: Session, bureau: Bureau
) -> None:
    entry = ok(client.post(API, json=entry_body(), headers=bureau.cataloguer), 201)
    eid, code = entry["id"], entry["code"]
    assert code.startswith("101001/") and entry["status"] == "unpublished"
    ok(client.post(f"{API}/{eid}/submit", headers=bureau.cataloguer))
    returned = ok(
        client.post(
            f"{API}/{eid}/return",
            headers=bureau.reviewer,
            json={
                "comments": [
                    {"field": "summary", "comment": "请写明统计口径"},
                    {"field": "items[2].description", "comment": "单位应为“万人”还是“人”？"},
                ]
            },
        )
    )
    assert returned["state"] == "returned"
    assert [c["field"] for c in returned["comments"]] == ["summary", "items[2].description"]
    ok(
        client.put(
            f"{API}/{eid}/draft",
            headers=bureau.cataloguer,
            json=entry_body(summary="全省分地区年末常住人口（常住口径）"),
        )
    )
    ok(client.post(f"{API}/{eid}/submit", headers=bureau.cataloguer))
    assert (
        ok(client.post(f"{API}/{eid}/approve", headers=bureau.reviewer, json={}))["state"]
        == "approved"
    )
    published = ok(client.post(f"{API}/{eid}/publish", headers=bureau.officer))
    assert published["status"] == "published" and published["code"] == code
    # A revision leaves the published one in force until it is itself published.
    ok(client.post(f"{API}/{eid}/revise", headers=bureau.cataloguer), 201)
    ok(
        client.put(
            f"{API}/{eid}/draft",
            headers=bureau.cataloguer,
            json=entry_body(summary="修订后的摘要", update_cycle="quarterly"),
        )
    )
    in_force = ok(client.get(f"{API}/{eid}", headers=bureau.outsider))
    assert in_force["summary"] == "全省分地区年末常住人口（常住口径）"
    diff = ok_list(
        client.get(f"{API}/{eid}/diff", params={"from": 1, "to": 2}, headers=bureau.cataloguer)
    )
    assert {row["field"] for row in diff} == {"summary", "update_cycle"}
    ok(client.post(f"{API}/{eid}/submit", headers=bureau.cataloguer))
    ok(client.post(f"{API}/{eid}/approve", headers=bureau.reviewer, json={}))
    second = ok(client.post(f"{API}/{eid}/publish", headers=bureau.reviewer))
    assert second["summary"] == "修订后的摘要" and second["code"] == code
    gone = ok(
        client.post(
            f"{API}/{eid}/withdraw",
            headers=bureau.officer,
            json={"reason": "统计口径调整，并入新目录"},
        )
    )
    assert gone["status"] == "withdrawn" and gone["withdrawn_reason"] == "统计口径调整，并入新目录"
    actions = [
        e.action
        for e in db.scalars(
            select(AuditEvent)
            .where(AuditEvent.target_type == "catalog_entry", AuditEvent.target_id == str(eid))
            .order_by(AuditEvent.id)
        )
    ]
    assert actions == [
        "catalog.create",
        "catalog.submit",
        "catalog.return",
        "catalog.edit",
        "catalog.submit",
        "catalog.approve",
        "catalog.publish",
        "catalog.revise",
        "catalog.edit",
        "catalog.submit",
        "catalog.approve",
        "catalog.publish",
        "catalog.withdraw",
    ]
    revisions = ok(
        client.get(f"{API}/{eid}/revisions", params={"page_size": 1}, headers=bureau.cataloguer)
    )
    assert revisions["total"] == 2 and revisions["pages"] == 2 and len(revisions["items"]) == 1


def ok_list(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return list(response.json())


def test_nobody_approves_their_own_submission(client: TestClient, bureau: Bureau) -> None:
    eid = ok(client.post(API, json=entry_body(), headers=bureau.cataloguer_reviewer), 201)["id"]
    ok(client.post(f"{API}/{eid}/submit", headers=bureau.cataloguer_reviewer))
    message = refused(
        client.post(f"{API}/{eid}/approve", headers=bureau.cataloguer_reviewer, json={}),
        403,
        "self_review",
    )
    assert "不能审核自己" in message
    queue = ok(client.get("/api/v1/catalog/review-queue", headers=bureau.cataloguer_reviewer))
    assert eid not in [item["id"] for item in queue["items"]]
    queue = ok(client.get("/api/v1/catalog/review-queue", headers=bureau.reviewer))
    assert eid in [item["id"] for item in queue["items"]]


def test_base_data_cannot_be_not_shared(client: TestClient, bureau: Bureau) -> None:
    body = entry_body(share_type="not_shared", share_basis="《某条例》第三条", share_methods=[])
    message = refused(client.post(API, json=body, headers=bureau.cataloguer), 422, "catalog_rules")
    assert "基础信息资源" in message and "不予共享" in message


def test_conditional_sharing_needs_a_legal_basis(client: TestClient, bureau: Bureau) -> None:
    body = entry_body(
        resource_class="3",
        subject_code="",
        share_type="conditional",
        share_conditions="仅用于人口普查",
    )
    response = client.post(API, json=body, headers=bureau.cataloguer)
    refused(response, 422, "catalog_rules")
    fields = [d["field"] for d in response.json()["error"]["details"]]
    assert fields == ["share_basis"]


def test_not_open_needs_a_basis_and_appears_in_the_negative_list(
    client: TestClient, bureau: Bureau
) -> None:
    refused(
        client.post(API, json=entry_body(open_type="not_open"), headers=bureau.cataloguer),
        422,
        "catalog_rules",
    )
    body = entry_body(
        open_type="on_application",
        open_basis="《个人信息保护法》第十三条",
        open_conditions="仅向科研机构开放汇总数据",
    )
    eid = ok(client.post(API, json=body, headers=bureau.cataloguer), 201)["id"]
    for step, who in (
        ("submit", bureau.cataloguer),
        ("approve", bureau.reviewer),
        ("publish", bureau.reviewer),
    ):
        ok(client.post(f"{API}/{eid}/{step}", headers=who, json={}))
    public = ok(client.get("/api/v1/catalog/negative-list"))  # no key: the list is public
    rows = [r for r in public["items"] if r["name"] == "常住人口统计表"]
    assert rows and rows[0]["basis"] == "《个人信息保护法》第十三条"
    assert rows[0]["open_type"] == "on_application"


def test_submission_is_checked_for_completeness(client: TestClient, bureau: Bureau) -> None:
    eid = ok(
        client.post(API, json=entry_body(summary="", items=[]), headers=bureau.cataloguer), 201
    )["id"]
    response = client.post(f"{API}/{eid}/submit", headers=bureau.cataloguer)
    refused(response, 422, "catalog_rules")
    assert {d["field"] for d in response.json()["error"]["details"]} == {"summary", "items"}


def test_id_number_item_of_a_non_authority_is_flagged(client: TestClient, bureau: Bureau) -> None:
    items = [
        {"name": "身份证号", "type_code": "C", "length": 18},
        {"name": "就业状态", "type_code": "C", "length": 10},
    ]
    eid = ok(client.post(API, json=entry_body(items=items), headers=bureau.cataloguer), 201)["id"]
    submitted = ok(client.post(f"{API}/{eid}/submit", headers=bureau.cataloguer))
    flags = submitted["flags"]
    assert len(flags) == 1 and flags[0]["item"] == "身份证号"
    assert flags[0]["element"] == "公民身份号码" and flags[0]["authority"] == "省公安厅"
    refused(
        client.post(f"{API}/{eid}/approve", headers=bureau.reviewer, json={}),
        422,
        "flag_decision_required",
    )
    approved = ok(
        client.post(
            f"{API}/{eid}/approve",
            headers=bureau.reviewer,
            json={"flag_decision": "仅作核验键，数据从公安厅共享获取"},
        )
    )
    assert approved["flag_decision"] == "仅作核验键，数据从公安厅共享获取"


def test_authority_itself_is_not_flagged(client: TestClient, db: Session, bureau: Bureau) -> None:
    from kuaishu.accounts.roles import Role
    from tests import factories as f

    police_key = {
        "X-API-Key": f.api_key(db, f.user(db, roles=[Role.CATALOGUER], dept=bureau.police))
    }
    db.commit()
    items = [{"name": "公民身份号码", "type_code": "C", "length": 18}]
    eid = ok(client.post(API, json=entry_body(items=items), headers=police_key), 201)["id"]
    assert ok(client.post(f"{API}/{eid}/submit", headers=police_key))["flags"] == []


def test_other_departments_cannot_touch_the_entry(client: TestClient, bureau: Bureau) -> None:
    eid = ok(client.post(API, json=entry_body(), headers=bureau.cataloguer), 201)["id"]
    refused(
        client.put(f"{API}/{eid}/draft", json=entry_body(), headers=bureau.outsider),
        403,
        "permission_denied",
    )
    refused(client.get(f"{API}/{eid}", headers=bureau.outsider), 403, "permission_denied")
    refused(
        client.post(f"{API}/{eid}/publish", headers=bureau.cataloguer), 403, "permission_denied"
    )


def test_wrong_order_is_refused(client: TestClient, bureau: Bureau) -> None:
    eid = ok(client.post(API, json=entry_body(), headers=bureau.cataloguer), 201)["id"]
    refused(client.post(f"{API}/{eid}/publish", headers=bureau.reviewer), 409, "invalid_transition")
    refused(
        client.post(f"{API}/{eid}/withdraw", headers=bureau.officer, json={"reason": "x"}),
        409,
        "not_published",
    )


def test_codes_are_never_reused(client: TestClient, bureau: Bureau) -> None:
    codes = [
        ok(client.post(API, json=entry_body(), headers=bureau.cataloguer), 201)["code"]
        for _ in range(3)
    ]
    assert len(set(codes)) == 3
    assert [c[-5:] for c in codes] == sorted(c[-5:] for c in codes)


def test_structure_change_sets_a_two_working_day_deadline(
    client: TestClient, bureau: Bureau
) -> None:
    eid = ok(client.post(API, json=entry_body(), headers=bureau.cataloguer), 201)["id"]
    for step, who in (
        ("submit", bureau.cataloguer),
        ("approve", bureau.reviewer),
        ("publish", bureau.reviewer),
    ):
        ok(client.post(f"{API}/{eid}/{step}", headers=who, json={}))
    entry = ok(
        client.post(
            f"{API}/{eid}/structure-change", headers=bureau.cataloguer, json={"on": "2025-09-30"}
        )
    )
    assert entry["update_due"] == "2025-10-10"  # Oct 1–8 off; Oct 9 and 10 are the two days
    overdue = ok(client.get("/api/v1/catalog/overdue", headers=bureau.operator))
    assert eid in [row["id"] for row in overdue["items"]]
    mine = ok(
        client.get(
            "/api/v1/catalog/overdue",
            headers=bureau.cataloguer,
            params={"department_id": bureau.department.id},
        )
    )
    assert [r["reasons"][0]["kind"] for r in mine["items"] if r["id"] == eid] == ["update"]
    refused(
        client.get("/api/v1/catalog/overdue", headers=bureau.cataloguer), 403, "permission_denied"
    )


def test_every_catalog_change_route_is_in_the_lifecycle_test() -> None:
    exercised = {
        "/entries",
        "/entries/{entry_id}/draft",
        "/entries/{entry_id}/submit",
        "/entries/{entry_id}/return",
        "/entries/{entry_id}/approve",
        "/entries/{entry_id}/publish",
        "/entries/{entry_id}/revise",
        "/entries/{entry_id}/withdraw",
        "/entries/{entry_id}/structure-change",
        "/import",
        # Audited entry by entry in test_bulk.py.
        "/entries/bulk",
        "/bulk-import/upload",
    }
    routes = {
        route.path.removeprefix("/api/v1/catalog")
        for route in all_routes(create_app().routes)
        if isinstance(route, APIRoute)
        and route.path.startswith("/api/v1/catalog")
        and route.methods & {"POST", "PUT", "PATCH", "DELETE"}
    }
    assert routes <= exercised, f"audit these catalog routes in a test: {routes - exercised}"
