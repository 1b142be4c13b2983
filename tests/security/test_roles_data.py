"""Separation of duties on the data side (issue 10, class 6), through a real exchange: platform
roles read no data anywhere, the auditor reads the trail only, arbitration waits for a refusal or
a missed deadline, a grant's dictionary shows only what it covers, a revoked grant accepts
nothing and a read-only key writes nothing. The accounts side is in test_roles.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from kuaishu.accounts.models import Department
from kuaishu.accounts.roles import PLATFORM_ROLES, Role
from kuaishu.authz import Denied
from kuaishu.calendar import china_today
from kuaishu.share import feed, objections
from kuaishu.share.enums import SubscriptionMode, SubscriptionState
from kuaishu.share.models import Objection, ShareApplication, ShareGrant, Subscription
from kuaishu.web.deps import READS_BY_POST, UNSAFE_METHODS
from tests import factories as f
from tests.functional.share.conftest import API, Exchange, exchange, load_engine, module_data_dir
from tests.http import ok, refused
from tests.security.test_roles import accounts_state

__all__ = ["exchange", "load_engine", "module_data_dir"]

# The data side, through the real exchange --------------------------------------------------------


@dataclass
class Seats:
    """Keys of platform-role holders seated in the providing and in the consuming department."""

    keys: dict[tuple[Role, str], dict[str, str]]
    provider: int
    consumer: int


@pytest.fixture(scope="module")
def grant(exchange: Exchange) -> int:
    """An active grant of some fields of the unconditional entry to the consuming department."""
    made = ok(
        exchange.client.post(
            f"{API}/entries/{exchange.entries['unconditional']['id']}/applications",
            json={
                "purpose": "待遇资格核验",
                "fields": ["身份证号", "补助金额"],
                "row_filter": [["区划代码", "520102"]],
                "methods": ["query", "lookup", "download", "subscribe"],
            },
            headers=exchange.keys["consumer"],
        ),
        201,
    )
    return int(made["grant"]["id"])


@pytest.fixture(scope="module")
def seats(exchange: Exchange, grant: int) -> Seats:
    with exchange.factory() as db:
        found = db.get(ShareGrant, grant)
        assert found is not None
        sides = {
            "provider": found.provider_department_id,
            "consumer": found.consumer_department_id,
        }
        keys = {}
        for role in sorted(PLATFORM_ROLES):
            for side, department in sides.items():
                holder = f.user(db, roles=[role], dept=db.get(Department, department))
                keys[(role, side)] = {"X-API-Key": f.api_key(db, holder)}
        db.commit()
        return Seats(keys=keys, provider=sides["provider"], consumer=sides["consumer"])


def data_reads(exchange: Exchange, grant: int) -> list[str]:
    code = exchange.entries["unconditional"]["code"]
    key = exchange.rows[0]["身份证号"]
    return [
        *(
            f"/api/v1/data/{code}/{tail}"
            for tail in ("query", f"lookup?key={key}", "dictionary", "download.csv")
        ),
        *(
            f"{API}/grants/{grant}/{tail}"
            for tail in ("query", f"lookup?key={key}", "dictionary", "download.csv")
        ),
    ]


def test_platform_roles_read_no_data_anywhere(exchange: Exchange, seats: Seats, grant: int) -> None:
    """The auditor queried and downloaded data; the operator read any department's raw data."""
    wrong = []
    for (role, side), headers in sorted(seats.keys.items()):
        for url in data_reads(exchange, grant):
            response = exchange.client.get(url, headers=headers)
            if response.status_code != 403:
                wrong.append(f"{role} seated with the {side}: {url} → {response.status_code}")
    assert not wrong, "\n".join(wrong)
    # The provider's own staff and the grantee do read: the refusals above are about the roles.
    member = exchange.keys["provider_cataloguer"]
    for url in data_reads(exchange, grant)[:4]:
        assert exchange.client.get(url, headers=member).status_code == 200, url
    for url in data_reads(exchange, grant)[4:]:
        assert exchange.client.get(url, headers=exchange.keys["consumer"]).status_code == 200


def test_the_auditor_reads_the_trail_and_nothing_else(exchange: Exchange, seats: Seats) -> None:
    auditor = seats.keys[(Role.SECURITY_AUDITOR, "provider")]
    entry = exchange.entries["unconditional"]["id"]
    ok(exchange.client.get("/api/v1/audit/events", headers=auditor))
    refused(
        exchange.client.post(f"/api/v1/catalog/entries/{entry}/revise", headers=auditor),
        403,
        "permission_denied",
    )
    refused(
        exchange.client.post(
            f"/api/v1/catalog/entries/{entry}/withdraw", json={"reason": "越权"}, headers=auditor
        ),
        403,
        "permission_denied",
    )
    for headers in (seats.keys[(Role.PLATFORM_OPERATOR, "provider")], exchange.keys["consumer"]):
        refused(
            exchange.client.get("/api/v1/audit/events", headers=headers), 403, "permission_denied"
        )


def test_the_operator_sees_metadata(exchange: Exchange, seats: Seats) -> None:
    operator = seats.keys[(Role.PLATFORM_OPERATOR, "consumer")]
    entry = exchange.entries["conditional"]["id"]
    assert ok(exchange.client.get(f"/api/v1/catalog/entries/{entry}", headers=operator))["id"]


def test_arbitration_only_after_a_refusal_or_a_missed_deadline(exchange: Exchange) -> None:
    asked = ok(
        exchange.client.post(
            f"{API}/entries/{exchange.entries['conditional']['id']}/applications",
            json={"purpose": "低保资格复核", "legal_basis": "《社会救助暂行办法》"},
            headers=exchange.keys["consumer_officer"],
        ),
        201,
    )["application"]
    url = f"{API}/applications/{asked['id']}"
    operator = exchange.keys["operator"]
    error = refused(
        exchange.client.post(f"{url}/arbitrate", json={"reason": "代为同意"}, headers=operator),
        409,
        "arbitration_not_due",
    )
    assert error["details"]["state"] == "submitted"
    after = ok(exchange.client.get(url, headers=exchange.keys["consumer_officer"]))
    assert after["state"] == "submitted" and after["grant_id"] is None
    with exchange.factory() as db:  # the provider lets the deadline pass
        application = db.get(ShareApplication, asked["id"])
        assert application is not None
        application.due_on = china_today() - timedelta(days=1)
        db.commit()
    granted = ok(
        exchange.client.post(f"{url}/arbitrate", json={"reason": "逾期未答复"}, headers=operator)
    )
    assert granted["state"] == "active"
    ok(  # one live grant per department and entry: end this one
        exchange.client.post(
            f"{API}/grants/{granted['id']}/revoke",
            json={"reason": "测试结束"},
            headers=exchange.keys["provider_officer"],
        )
    )


def test_a_grant_s_dictionary_shows_only_what_it_covers(exchange: Exchange, grant: int) -> None:
    found = ok(
        exchange.client.get(f"{API}/grants/{grant}/dictionary", headers=exchange.keys["consumer"])
    )
    assert [field["name"] for field in found["fields"]] == ["身份证号", "补助金额"]
    assert set(found["version"]) == {"number", "published_at"}  # not the row count, nor size


def test_a_read_only_key_files_no_objection(exchange: Exchange, seats: Seats, grant: int) -> None:
    with exchange.factory() as db:
        consumer = f.user(db, roles=[Role.CONSUMER], dept=db.get(Department, seats.consumer))
        read_only = {"X-API-Key": f.api_key(db, consumer, scopes=("read",))}
        reader = replace(f.actor(consumer), auth_method="api_key", scopes=frozenset({"read"}))
        db.commit()
    body = {
        "records": [exchange.rows[0]["身份证号"]],
        "fields": ["补助金额"],
        "description": "金额有误",
    }
    before = objections_of(exchange, grant)
    refused(
        exchange.client.post(f"{API}/grants/{grant}/objections", json=body, headers=read_only),
        403,
        "read_only_key",
    )
    assert objections_of(exchange, grant) == before
    # The service refuses it too, to a caller that is not the web API (the operation is a write).
    with exchange.factory() as db:
        found = db.get(ShareGrant, grant)
        assert found is not None
        with pytest.raises(Denied):
            objections.raise_objection(
                db,
                actor=reader,
                grant=found,
                records=body["records"],
                fields=body["fields"],
                description=body["description"],
            )
    # It still reads, by POST too (a lookup keeps the value out of URLs).
    looked = exchange.client.post(
        f"{API}/grants/{grant}/lookup", json={"key": body["records"][0]}, headers=read_only
    )
    assert looked.status_code == 200, looked.text
    # Fields the grant does not cover are not the consumer's to name.
    refused(
        exchange.client.post(
            f"{API}/grants/{grant}/objections",
            json={**body, "fields": ["姓名"]},
            headers=exchange.keys["consumer"],
        ),
        422,
        "unknown_field",
    )
    assert objections_of(exchange, grant) == before


def objections_of(exchange: Exchange, grant: int) -> int:
    with exchange.factory() as db:
        return len(db.scalars(select(Objection).where(Objection.grant_id == grant)).all())


@pytest.fixture
def revoked(exchange: Exchange, grant: int) -> Iterator[int]:
    """The grant, revoked by its provider (last: the tests after it need it live)."""
    ok(
        exchange.client.post(
            f"{API}/grants/{grant}/revoke",
            json={"reason": "用途已完成"},
            headers=exchange.keys["provider_officer"],
        )
    )
    yield grant


def test_zz_nothing_is_accepted_on_a_revoked_grant(exchange: Exchange, revoked: int) -> None:
    consumer = exchange.keys["consumer"]
    key = exchange.rows[0]["身份证号"]
    before = objections_of(exchange, revoked)
    refused(
        exchange.client.post(
            f"{API}/grants/{revoked}/objections",
            json={"records": [key], "fields": ["补助金额"], "description": "金额有误"},
            headers=consumer,
        ),
        409,
        "grant_revoked",
    )
    assert objections_of(exchange, revoked) == before
    refused(
        exchange.client.post(
            f"{API}/grants/{revoked}/subscriptions",
            json={"mode": "push", "endpoint": "https://receiver.example/hook"},
            headers=consumer,
        ),
        409,
        "grant_not_active",
    )
    for tail in (f"lookup?key={key}", "query", "dictionary", "download.csv"):
        refused(
            exchange.client.get(f"{API}/grants/{revoked}/{tail}", headers=consumer),
            403,
            "grant_revoked",
        )
    refused(
        exchange.client.post(f"{API}/grants/{revoked}/lookup", json={"key": key}, headers=consumer),
        403,
        "grant_revoked",
    )
    # A subscription paused while the grant lived does not start again on a revoked one.
    with exchange.factory() as db:
        found = db.get(ShareGrant, revoked)
        assert found is not None
        paused = Subscription(
            grant_id=found.id,
            entry_id=found.entry_id,
            consumer_department_id=found.consumer_department_id,
            mode=SubscriptionMode.PUSH,
            state=SubscriptionState.PAUSED,
            endpoint="https://receiver.example/hook",
            cursor=str(feed.START),
        )
        db.add(paused)
        db.commit()
        subscription = paused.id
    refused(
        exchange.client.post(f"{API}/subscriptions/{subscription}/resume", headers=consumer),
        409,
        "grant_not_active",
    )
    with exchange.factory() as db:
        still = db.get(Subscription, subscription)
        assert still is not None and still.state == SubscriptionState.PAUSED


# A read-only key writes nothing, on any route ------------------------------------------------------


def unsafe_routes() -> list[tuple[str, str]]:
    from kuaishu.web.app import create_app

    found = []
    for path, operations in create_app().openapi()["paths"].items():
        for method in operations:
            if method.upper() in UNSAFE_METHODS:
                found.append((method.upper(), path))
    return sorted(found)


@pytest.fixture
def read_only(db: Session) -> dict[str, str]:
    operator = f.user(db, roles=[Role.PLATFORM_OPERATOR])
    officer = f.user(db, roles=[Role.DATA_OFFICER])
    db.commit()
    return {
        "operator": f.api_key(db, operator, scopes=("read",)),
        "officer": f.api_key(db, officer, scopes=("read",)),
    }


def test_a_read_only_key_is_refused_on_every_writing_route(
    client: TestClient, db: Session, read_only: dict[str, str]
) -> None:
    routes = unsafe_routes()
    assert len(routes) > 40 and {path for _method, path in routes} >= READS_BY_POST
    before = accounts_state(db)
    wrong = []
    for method, path in routes:
        if path in READS_BY_POST:
            continue
        # Any id will do: the key is refused before anything is looked up.
        url = "/".join("1" if part.startswith("{") else part for part in path.split("/"))
        for who, key in read_only.items():
            response = client.request(method, url, json={}, headers={"X-API-Key": key})
            code = response.json().get("error", {}).get("code") if response.content else None
            if response.status_code != 403 or code != "read_only_key":
                wrong.append(f"{who}: {method} {path} → {response.status_code} {code}")
    assert not wrong, f"{len(wrong)} wrong answers:\n" + "\n".join(wrong)
    assert accounts_state(db) == before
