"""Issue 10, class 4 — cross-entry reads hidden in other features. A ``reference`` cleaning rule
reads the entry it names: within the department as its owner, from another department only
under an active grant the rule's department holds — the granted fields, rows and masking — and
each load's read is an audited ``data.read`` naming the grant. Refused, it reveals nothing: no
rule is kept, and a load's quarantine says nothing about the other department's data."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.accounts.roles import Role
from kuaishu.clean.services import set_policy
from kuaishu.db import make_sessionmaker, transaction
from kuaishu.security.models import AuditEvent
from kuaishu.web.app import create_app
from tests import factories as f
from tests.functional.collect.conftest import load
from tests.functional.store.conftest import load_engine, load_file, module_data_dir, write_csv
from tests.http import ok, refused

__all__ = ["load_engine", "module_data_dir"]

SHARE = "/api/v1/share"
CLEAN = "/api/v1/clean"
ITEMS = [("身份证号", "C"), ("姓名", "C"), ("区划代码", "C")]
# The police bureau's people: two in 520102, one in 520103.
KNOWN = {"520102199001010011": "520102", "520102199001010022": "520102"}
OUTSIDE_FILTER = "520103199001010033"
UNKNOWN = "520102199001019999"


@dataclass
class Bureaus:
    client: TestClient
    factory: sessionmaker[Session]
    people: dict[str, Any]  # the police bureau's entry: id, code
    keys: dict[str, dict[str, str]]

    def own_entry(self, name: str) -> int:
        with transaction(self.factory) as db:
            from kuaishu.accounts.models import Department

            dept = db.scalar(select(Department).where(Department.name == "省民政厅"))
            entry = f.published_entry(db, dept=dept, name=name, items=ITEMS, keys=("身份证号",))
            return entry.id

    def rules(self, entry_id: int, column: str) -> Any:
        rule = {
            "kind": "reference",
            "item": "身份证号",
            "entry": self.people["code"],
            "column": column,
        }
        return self.client.put(
            f"{CLEAN}/entries/{entry_id}/rules",
            json={"rules": [rule]},
            headers=self.keys["author"],
        )

    def load(self, entry_id: int, ids: list[str]) -> dict[str, Any]:
        body = "身份证号,姓名,区划代码\n" + "".join(f"{i},某人,{i[:6]}\n" for i in ids)
        return load(self.client, entry_id, body.encode(), self.keys["author"])

    def quarantined(self, run: dict[str, Any]) -> list[dict[str, str]]:
        if not run.get("quarantine_url"):
            return []
        body = self.client.get(str(run["quarantine_url"]), headers=self.keys["author"])
        assert body.status_code == 200, body.text
        return list(csv.DictReader(io.StringIO(body.text)))

    def grant(self, **body: Any) -> int:
        made = ok(
            self.client.post(
                f"{SHARE}/entries/{self.people['id']}/applications",
                json={
                    "purpose": "救助对象身份核对",
                    "legal_basis": "《社会救助暂行办法》第十一条",
                    "methods": ["lookup"],
                    **body,
                },
                headers=self.keys["consumer_officer"],
            ),
            201,
        )
        if made["kind"] == "grant":
            return int(made["grant"]["id"])
        approved = ok(
            self.client.post(
                f"{SHARE}/applications/{made['application']['id']}/approve",
                json={"reason": "同意"},
                headers=self.keys["provider_officer"],
            )
        )
        return int(approved["id"])

    def revoke(self, grant: int) -> None:
        ok(
            self.client.post(
                f"{SHARE}/grants/{grant}/revoke",
                json={"reason": "核对工作结束"},
                headers=self.keys["provider_officer"],
            )
        )

    def reads(self) -> list[AuditEvent]:
        with self.factory() as session:
            return list(
                session.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.action == "data.read")
                    .order_by(AuditEvent.id)
                )
            )


@pytest.fixture(scope="module")
def bureaus(load_engine: Engine, module_data_dir: Path) -> Iterator[Bureaus]:
    factory = make_sessionmaker(load_engine)
    with transaction(factory) as db:
        police = f.department(db, name="省公安厅")
        civil = f.department(db, name="省民政厅")
        people = f.published_entry(
            db,
            dept=police,
            name="人口基础信息",
            items=ITEMS,
            keys=("身份证号",),
            share_type="conditional",
            share_conditions="仅用于身份核对",
            share_basis="《社会救助暂行办法》",
        )
        cataloguer = f.user(db, roles=[Role.CATALOGUER], dept=police)
        # The police bureau shares names masked.
        set_policy(
            db,
            actor=f.actor(cataloguer),
            entry=people,
            rules=[{"item": "姓名", "channel": "share", "method": "mask", "params": {"first": 1}}],
        )

        def key(role: Role, dept: Any) -> dict[str, str]:
            return {"X-API-Key": f.api_key(db, f.user(db, roles=[role], dept=dept))}

        keys = {
            "author": key(Role.CATALOGUER, civil),
            "consumer_officer": key(Role.DATA_OFFICER, civil),
            "provider_officer": key(Role.DATA_OFFICER, police),
            "operator": key(Role.PLATFORM_OPERATOR, police),
        }
        found: dict[str, Any] = {"id": people.id, "code": people.code}
    rows = [{"身份证号": k, "姓名": "张三", "区划代码": v} for k, v in KNOWN.items()]
    rows.append({"身份证号": OUTSIDE_FILTER, "姓名": "李四", "区划代码": "520103"})
    load_file(factory, found["id"], write_csv(module_data_dir / "people.csv", rows))
    with TestClient(create_app(engine=load_engine), base_url="http://testserver") as client:
        yield Bureaus(client=client, factory=factory, people=found, keys=keys)


def test_without_a_grant_the_rule_is_refused_and_loads_reveal_nothing(b: Bureaus) -> None:
    entry = b.own_entry("救助对象（无授权）")
    error = refused(b.rules(entry, "身份证号"), 422, "reference_not_granted")
    assert b.people["code"] in error["message"]
    assert ok(b.client.get(f"{CLEAN}/entries/{entry}/rules", headers=b.keys["author"])) == []
    reads = len(b.reads())
    run = b.load(entry, [*KNOWN, UNKNOWN])
    assert run["status"] == "succeeded" and run["rows_quarantined"] == 0
    assert b.quarantined(run) == []  # nothing tells which IDs the police bureau holds
    assert len(b.reads()) == reads


def test_a_masked_or_ungranted_field_cannot_be_checked_against(b: Bureaus) -> None:
    grant = b.grant(fields=["身份证号", "姓名"])
    try:
        entry = b.own_entry("救助对象（脱敏字段）")
        error = refused(b.rules(entry, "姓名"), 422, "reference_masked")
        assert "脱敏" in error["message"]
        refused(b.rules(entry, "区划代码"), 422, "reference_field_not_granted")
        assert ok(b.client.get(f"{CLEAN}/entries/{entry}/rules", headers=b.keys["author"])) == []
        # Nor does an objection learn of (or name) a field the grant does not show.
        objection = {"records": [UNKNOWN], "fields": ["区划代码"], "description": "区划有误"}
        refused(
            b.client.post(
                f"{SHARE}/grants/{grant}/objections",
                json=objection,
                headers=b.keys["consumer_officer"],
            ),
            422,
            "unknown_field",
        )
    finally:
        b.revoke(grant)


def test_under_a_grant_the_rule_sees_the_granted_rows_and_each_load_is_a_recorded_read(
    b: Bureaus,
) -> None:
    grant = b.grant(row_filter=[["区划代码", "520102"]])
    entry = b.own_entry("救助对象（有授权）")
    ok(b.rules(entry, "身份证号"))
    run = b.load(entry, [*KNOWN, OUTSIDE_FILTER, UNKNOWN])
    assert run["status"] == "succeeded", run
    # Known to the police but outside the grant's rows reads as unknown: the grant is the view.
    assert {r["身份证号"] for r in b.quarantined(run)} == {OUTSIDE_FILTER, UNKNOWN}
    assert run["rows_loaded"] == len(KNOWN)
    read = b.reads()[-1]
    assert read.details is not None
    assert read.details["grant"] == grant and read.details["code"] == b.people["code"]
    assert read.details["for"] == "cleaning_reference"

    # Revoked: the next load fails the rule, saying why — it never runs without its check.
    b.revoke(grant)
    reads = len(b.reads())
    failed = b.load(entry, [UNKNOWN])
    assert failed["status"] == "failed" and failed["error"]["code"] == "reference_refused", failed
    assert "授权" in failed["error"]["message"]
    assert b.quarantined(failed) == []
    assert len(b.reads()) == reads


def test_the_operator_cannot_read_through_a_rule(b: Bureaus) -> None:
    entry = b.own_entry("救助对象（运营者）")
    rule = {
        "kind": "reference",
        "item": "身份证号",
        "entry": b.people["code"],
        "column": "身份证号",
    }
    refused(
        b.client.put(
            f"{CLEAN}/entries/{entry}/rules", json={"rules": [rule]}, headers=b.keys["operator"]
        ),
        403,
        "permission_denied",
    )


@pytest.fixture
def b(bureaus: Bureaus) -> Bureaus:
    return bureaus
