"""Every changing route of collection, masking and the data API leaves its audit event: each is driven once
through HTTP, and a new route that is not driven here fails the test."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.web.app import create_app
from tests.functional.collect.conftest import API, Bureau, audit_events, finished, ok, upload
from tests.unit.security.test_audit_trail import all_routes

GOOD = "地区,人口\n贵阳市,598.7\n遵义市,660.6\n".encode()
PREFIXES = ("/api/v1/collect/", "/api/v1/data/", "/api/v1/clean/")
# POSTs that change nothing: they answer a question about columns the caller sends.
# Driven, with its audit event checked, where its data exists.
ELSEWHERE = {
    # tests/functional/store/test_discovery_flow.py (needs personal data to find)
    ("POST", "/api/v1/clean/entries/{entry_id}/discovery/confirm"),
}
QUESTIONS = {
    ("POST", "/api/v1/collect/entries/{entry_id}/mapping/propose"),
    ("POST", "/api/v1/collect/entries/{entry_id}/mapping/propose/upload"),
}


def _department_table(tmp_path: Path) -> str:
    path = tmp_path / "dept.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (region TEXT, people REAL)")
        conn.execute("INSERT INTO t VALUES ('贵阳市', 598.7)")
    return f"sqlite:///{path}"


def test_every_changing_collect_and_data_route_is_audited(
    http: TestClient, bureau: Bureau, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    h, entry = bureau.cataloguer, bureau.entry.id
    calls: dict[tuple[str, str], tuple[Any, str]] = {}

    def drive(method: str, path: str, response: Any, action: str) -> Any:
        calls[(method, path)] = (response, action)
        return response.json() if response.content else None

    source = drive(
        "POST",
        "/api/v1/collect/entries/{entry_id}/sources",
        http.post(
            f"{API}/entries/{entry}/sources",
            json={
                "kind": "database",
                "name": "前置机",
                "config": {"url": _department_table(tmp_path), "table": "t"},
            },
            headers=h,
        ),
        "collect.create_source",
    )
    sid = source["id"]
    drive(
        "PUT",
        "/api/v1/collect/sources/{source_id}/mapping",
        http.put(
            f"{API}/sources/{sid}/mapping",
            json={"mapping": {"地区": "region", "人口": "people"}},
            headers=h,
        ),
        "collect.update_mapping",
    )
    for verb in ("disable", "enable"):
        drive(
            "POST",
            f"/api/v1/collect/sources/{{source_id}}/{verb}",
            http.post(f"{API}/sources/{sid}/{verb}", headers=h),
            f"collect.{verb}_source",
        )
    ran = drive(
        "POST",
        "/api/v1/collect/sources/{source_id}/run",
        http.post(f"{API}/sources/{sid}/run", headers=h),
        "collect.load",
    )
    assert finished(http, ran["id"], h)["status"] == "succeeded"
    pushing = ok(
        http.post(
            f"{API}/entries/{entry}/sources", json={"kind": "push", "name": "推送"}, headers=h
        ),
        201,
    )
    pushed = drive(
        "POST",
        "/api/v1/collect/sources/{source_id}/push",
        http.post(
            f"{API}/sources/{pushing['id']}/push",
            content=GOOD,
            headers={**h, "Content-Type": "text/csv"},
        ),
        "collect.push",
    )
    assert finished(http, pushed["id"], h)["status"] == "succeeded"

    held: list[int] = []

    class NoWorkerYet:
        def submit(self, run_id: int) -> None:
            held.append(run_id)

    app = http.app
    previous = app.state.runner  # type: ignore[attr-defined]
    app.state.runner = NoWorkerYet()  # type: ignore[attr-defined]
    try:
        queued = drive(
            "POST",
            "/api/v1/collect/entries/{entry_id}/upload",
            upload(http, entry, GOOD, h),
            "collect.load",
        )
    finally:
        app.state.runner = previous  # type: ignore[attr-defined]
    drive(
        "POST",
        "/api/v1/collect/runs/{run_id}/cancel",
        http.post(f"{API}/runs/{queued['id']}/cancel", headers=h),
        "collect.cancel",
    )
    drive(
        "POST",
        "/api/v1/collect/entries/{entry_id}/versions/{number}/publish",
        http.post(
            f"{API}/entries/{entry}/versions/1/publish",
            json={"reason": "回退到前置机版本"},
            headers=h,
        ),
        "store.publish",
    )
    drive(
        "PUT",
        "/api/v1/clean/entries/{entry_id}/masking",
        http.put(
            f"/api/v1/clean/entries/{entry}/masking",
            json={
                "rules": [
                    {"item": "地区", "channel": "open", "method": "truncate", "params": {"keep": 2}}
                ]
            },
            headers=h,
        ),
        "clean.set_masking",
    )
    drive(
        "PUT",
        "/api/v1/clean/entries/{entry_id}/rules",
        http.put(
            f"/api/v1/clean/entries/{entry}/rules",
            json={"rules": [{"kind": "null_tokens", "item": "*", "tokens": ["/"]}]},
            headers=h,
        ),
        "clean.set_rules",
    )
    drive(
        "POST",
        "/api/v1/clean/entries/{entry_id}/decrypt",
        http.post(
            f"/api/v1/clean/entries/{entry}/decrypt",
            json={"tokens": ["x"], "purpose": "核对"},
            headers=bureau.officer,
        ),
        "clean.decrypt",
    )
    code = quote(bureau.entry.code, safe="")
    drive(
        "POST",
        "/api/v1/data/{code:path}/lookup",
        http.post(f"/api/v1/data/{code}/lookup", json={"key": "贵阳市"}, headers=h),
        "data.lookup",
    )

    changing = {
        (method, route.path)
        for route in all_routes(create_app().routes)
        if isinstance(route, APIRoute) and route.path.startswith(PREFIXES)
        for method in route.methods
        if method in {"POST", "PUT", "PATCH", "DELETE"}
    }
    assert changing - QUESTIONS - ELSEWHERE == set(calls), (
        f"not driven here: {changing ^ set(calls)}"
    )
    for (method, path), (response, action) in calls.items():
        assert response.status_code in (200, 201, 202), (method, path, response.text)
        assert [e for e in audit_events(factory, action) if e.outcome == "success"], (
            f"{method} {path} left no {action} event"
        )
