"""A providing department with three entries — unconditional, conditional, not shared — each with
loaded data, a consuming department, and the people on both sides. Built once per module and
backend (loads commit and write files); the tests then act through HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.accounts.roles import Role
from kuaishu.db import make_sessionmaker, transaction
from kuaishu.security.models import AuditEvent
from kuaishu.share.enums import GrantState
from kuaishu.share.grants import LIMITER
from kuaishu.share.models import ShareGrant
from kuaishu.web.app import create_app
from tests import factories as f
from tests.functional.store.conftest import (
    load_engine,
    load_file,
    module_data_dir,
    write_csv,
)

__all__ = ["load_engine", "module_data_dir"]

ITEMS = [("身份证号", "C"), ("姓名", "C"), ("区划代码", "C"), ("补助金额", "N")]
API = "/api/v1/share"


def person(i: int) -> dict[str, Any]:
    return {
        "身份证号": f"52010219900101{i:04d}",
        "姓名": f"张{i}",
        "区划代码": "520102" if i % 2 else "520103",
        "补助金额": 100 + i,
    }


@dataclass
class Exchange:
    client: TestClient
    factory: sessionmaker[Session]
    entries: dict[str, dict[str, Any]]  # share type → {"id", "code"}
    keys: dict[str, dict[str, str]]  # who → headers
    rows: list[dict[str, Any]]

    def audit(self, action: str) -> list[AuditEvent]:
        with self.factory() as session:
            return list(
                session.scalars(
                    select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
                )
            )


@pytest.fixture(scope="module")
def exchange(
    load_engine: Engine, module_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Exchange]:
    factory = make_sessionmaker(load_engine)
    rows = [person(i) for i in range(1, 41)]
    entries: dict[str, dict[str, Any]] = {}
    with transaction(factory) as db:
        # Push receivers and sync targets here are local: allowed explicitly (test-only entries).
        f.allow_loopback(db, tmp_path_factory.getbasetemp(), names=("receiver.example",))
        provider = f.department(db, name="省民政厅")
        consumer = f.department(db, name="省人社厅")
        other = f.department(db, name="省交通厅")
        basis = "《中华人民共和国个人信息保护法》第十三条"
        for share_type, extra in (
            ("unconditional", {}),
            ("conditional", {"share_conditions": "仅用于待遇核验", "share_basis": basis}),
            ("not_shared", {"share_basis": basis}),
        ):
            entry = f.published_entry(
                db,
                dept=provider,
                name=f"救助对象名册（{share_type}）",
                items=ITEMS,
                keys=("身份证号",),
                sensitive=("姓名",),
                share_type=share_type,
                **extra,
            )
            entries[share_type] = {"id": entry.id, "code": entry.code}

        def key(role: Role, dept: Any) -> dict[str, str]:
            return {"X-API-Key": f.api_key(db, f.user(db, roles=[role], dept=dept))}

        keys = {
            "provider_officer": key(Role.DATA_OFFICER, provider),
            "provider_cataloguer": key(Role.CATALOGUER, provider),
            "consumer": key(Role.CONSUMER, consumer),
            "consumer_officer": key(Role.DATA_OFFICER, consumer),
            "other": key(Role.CONSUMER, other),
            "operator": key(Role.PLATFORM_OPERATOR, other),
            "auditor": key(Role.SECURITY_AUDITOR, other),
        }
    for entry in entries.values():
        load_file(factory, entry["id"], write_csv(module_data_dir / "people.csv", rows))
    app = create_app(engine=load_engine)
    LIMITER.clear()  # rate windows of another module's grants that had the same ids
    with TestClient(app, base_url="http://testserver") as client:
        yield Exchange(client=client, factory=factory, entries=entries, keys=keys, rows=rows)


@pytest.fixture(autouse=True)
def no_grant_left_in_force(request: pytest.FixtureRequest) -> Iterator[None]:
    """The grants a test makes are revoked after it: the module's tests share one exchange, and
    a consuming department holds at most one grant in force per entry."""
    if "exchange" not in request.fixturenames:
        yield
        return
    x: Exchange = request.getfixturevalue("exchange")
    with x.factory() as db:
        before = db.scalar(select(func.max(ShareGrant.id))) or 0
    yield
    revoke_grants_after(x, before)


def revoke_grants_after(x: Exchange, grant_id: int) -> None:
    """Revoke the grants made after ``grant_id`` (so the next can be granted)."""
    with transaction(x.factory) as db:
        db.execute(
            update(ShareGrant)
            .where(ShareGrant.id > grant_id)
            .values(state=GrantState.REVOKED, state_reason="测试已结束")
        )
