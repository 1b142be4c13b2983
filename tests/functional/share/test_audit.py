"""Every changing route of the sharing exchange leaves its audit event: each is driven once, and a
new route that is not driven here fails the test."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.routing import APIRoute

from kuaishu.calendar import china_today
from kuaishu.web.app import create_app
from tests.functional.share.conftest import API, Exchange
from tests.unit.security.test_audit_trail import all_routes


def test_every_changing_share_route_is_audited(exchange: Exchange) -> None:
    x, calls = exchange, {}
    officer, consumer = x.keys["provider_officer"], x.keys["consumer"]

    def drive(method: str, path: str, response: Any, action: str) -> Any:
        assert response.status_code in (200, 201), (path, response.text)
        calls[(method, path)] = action
        return response.json()

    def post(path: str, url: str, body: dict[str, Any], who: dict[str, str], action: str) -> Any:
        return drive(
            "POST", f"{API}{path}", x.client.post(f"{API}{url}", json=body, headers=who), action
        )

    asking = {"purpose": "核验", "legal_basis": "《社会保险法》", "methods": ["lookup", "query"]}
    first = post(
        "/entries/{entry_id}/applications",
        f"/entries/{x.entries['conditional']['id']}/applications",
        asking,
        consumer,
        "share.apply",
    )["application"]["id"]
    post(
        "/applications/{application_id}/reject",
        f"/applications/{first}/reject",
        {"reason": "范围过大"},
        officer,
        "share.reject",
    )
    post(
        "/applications/{application_id}/resubmit",
        f"/applications/{first}/resubmit",
        asking,
        consumer,
        "share.resubmit",
    )
    grant = post(
        "/applications/{application_id}/approve",
        f"/applications/{first}/approve",
        {},
        officer,
        "share.approve",
    )["id"]
    post(
        "/grants/{grant_id}/lookup",
        f"/grants/{grant}/lookup",
        {"key": x.rows[0]["身份证号"]},
        consumer,
        "data.lookup",
    )
    post(
        "/grants/{grant_id}/suspend",
        f"/grants/{grant}/suspend",
        {"reason": "核查"},
        officer,
        "share.grant_suspended",
    )
    post(
        "/grants/{grant_id}/resume",
        f"/grants/{grant}/resume",
        {"reason": "恢复"},
        officer,
        "share.grant_active",
    )
    renew = {"expires_on": (china_today() + timedelta(days=90)).isoformat()}
    post("/grants/{grant_id}/renew", f"/grants/{grant}/renew", renew, officer, "share.grant_renew")
    objection = post(
        "/grants/{grant_id}/objections",
        f"/grants/{grant}/objections",
        {"records": [x.rows[0]["身份证号"]], "description": "金额有误"},
        consumer,
        "share.object",
    )["id"]
    post(
        "/objections/{objection_id}/answer",
        f"/objections/{objection}/answer",
        {"reason": "无误"},
        officer,
        "share.objection_rejected",
    )
    post(
        "/grants/{grant_id}/revoke",
        f"/grants/{grant}/revoke",
        {"reason": "完成"},
        officer,
        "share.grant_revoked",
    )
    # Arbitrated once the first grant is revoked: one grant in force per consumer and entry.
    second = x.client.post(
        f"{API}/entries/{x.entries['conditional']['id']}/applications",
        json=asking,
        headers=consumer,
    ).json()["application"]["id"]
    x.client.post(f"{API}/applications/{second}/reject", json={"reason": "否"}, headers=officer)
    post(
        "/applications/{application_id}/arbitrate",
        f"/applications/{second}/arbitrate",
        {"reason": "应予共享"},
        x.keys["operator"],
        "share.arbitrate",
    )
    subscribing = x.client.post(
        f"{API}/entries/{x.entries['unconditional']['id']}/applications",
        json={"purpose": "同步", "methods": ["subscribe"]},
        headers=consumer,
    ).json()["grant"]["id"]
    subscription = post(
        "/grants/{grant_id}/subscriptions",
        f"/grants/{subscribing}/subscriptions",
        {"mode": "push", "endpoint": "http://127.0.0.1:9/changes"},
        consumer,
        "share.subscribe",
    )["subscription"]["id"]
    for verb, action in (("pause", "paused"), ("resume", "active"), ("stop", "stopped")):
        post(
            f"/subscriptions/{{subscription_id}}/{verb}",
            f"/subscriptions/{subscription}/{verb}",
            {},
            consumer,
            f"share.subscription_{action}",
        )

    changing = {
        (method, route.path)
        for route in all_routes(create_app().routes)
        if isinstance(route, APIRoute) and route.path.startswith(f"{API}/")
        for method in route.methods
        if method in {"POST", "PUT", "PATCH", "DELETE"}
    }
    assert changing == set(calls), f"not driven here: {changing ^ set(calls)}"
    for (method, path), action in calls.items():
        assert [e for e in x.audit(action) if e.outcome == "success"], (
            f"{method} {path}: no {action}"
        )
