"""Loads run after the response (in the runner's threads), so these tests use a database of their
own per module, not the rolled-back transaction, and a data folder of their own per test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.accounts.models import Department
from kuaishu.accounts.roles import Role
from kuaishu.catalog.models import CatalogEntry
from kuaishu.db import make_sessionmaker, transaction
from kuaishu.security.models import AuditEvent
from kuaishu.web.app import create_app
from tests import factories as f
from tests.http import ok, refused
from tests.unit.collect.conftest import data_dir, factory, load_engine

__all__ = ["data_dir", "factory", "load_engine", "ok", "refused"]

API = "/api/v1/collect"


@pytest.fixture(scope="module")
def collect_app(load_engine: Any) -> FastAPI:
    return create_app(engine=load_engine)


@pytest.fixture
def http(collect_app: FastAPI, data_dir: Path) -> Iterator[TestClient]:
    with TestClient(collect_app, base_url="http://testserver") as client:
        yield client


@dataclass
class Bureau:
    """A statistics bureau with a published entry, and a police bureau next door."""

    department: Department
    entry: CatalogEntry
    cataloguer: dict[str, str]
    officer: dict[str, str]
    member: dict[str, str]
    outsider: dict[str, str]
    usernames: dict[str, str]


@dataclass
class Staff:
    department: Department
    keys: dict[str, dict[str, str]]
    usernames: dict[str, str]


@pytest.fixture(scope="module")
def staff(load_engine: Any) -> Staff:
    """The people, made once per module: signing them up (password hashing) is the slow part."""
    with transaction(make_sessionmaker(load_engine)) as db:
        department = f.department(db, name="省统计局")
        police = f.department(db, name="省公安厅")
        keys: dict[str, dict[str, str]] = {}
        usernames: dict[str, str] = {}
        for name, role, dept in (
            ("cataloguer", Role.CATALOGUER, department),
            ("officer", Role.DATA_OFFICER, department),
            ("member", Role.REVIEWER, department),
            ("outsider", Role.CATALOGUER, police),
        ):
            user = f.user(db, roles=[role], dept=dept)
            usernames[name] = user.username
            keys[name] = {"X-API-Key": f.api_key(db, user)}
        db.expunge_all()
    return Staff(department=department, keys=keys, usernames=usernames)


@pytest.fixture
def bureau(factory: sessionmaker[Session], staff: Staff) -> Bureau:
    """A fresh published entry of the bureau for each test."""
    with transaction(factory) as db:
        entry = f.published_entry(
            db,
            dept=db.merge(staff.department),
            items=[("地区", "C"), ("人口", "N")],
            keys=("地区",),
        )
        db.flush()
        db.expunge_all()
    return Bureau(
        department=staff.department,
        entry=entry,
        cataloguer=staff.keys["cataloguer"],
        officer=staff.keys["officer"],
        member=staff.keys["member"],
        outsider=staff.keys["outsider"],
        usernames=staff.usernames,
    )


def audit_events(factory: sessionmaker[Session], action: str) -> list[AuditEvent]:
    """The recorded events of ``action``, read in a transaction of their own."""
    with transaction(factory) as db:
        events = list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))
        db.expunge_all()
    return events


def finished(client: TestClient, run_id: int, headers: dict[str, str]) -> dict[str, Any]:
    """The run once it has finished, read through the API as a user would watch it."""
    deadline = time.monotonic() + 60
    while True:
        run: dict[str, Any] = ok(client.get(f"{API}/runs/{run_id}", headers=headers))
        if run["finished"]:
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']}: {run}"
        time.sleep(0.1)


def upload(
    client: TestClient,
    entry_id: int,
    content: bytes,
    headers: dict[str, str],
    *,
    filename: str = "常住人口.csv",
    source_id: int | None = None,
) -> Any:
    data = {"source_id": str(source_id)} if source_id else {}
    return client.post(
        f"{API}/entries/{entry_id}/upload",
        files={"file": (filename, content, "text/csv")},
        data=data,
        headers=headers,
    )


def load(
    client: TestClient, entry_id: int, content: bytes, headers: dict[str, str], **kw: Any
) -> dict[str, Any]:
    """Upload ``content`` and wait for its run to finish."""
    run = ok(upload(client, entry_id, content, headers, **kw), 202)
    return finished(client, run["id"], headers)
