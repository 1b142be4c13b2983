"""Entries masked for sharing by every method, loaded through the real pipeline, each with a
consuming department granted every read method — the ground the read-path security tests
(class 2 masked inference, class 3 read shapes, class 5 cursors of issue 10) stand on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.accounts.roles import Role
from kuaishu.catalog.models import CatalogEntry
from kuaishu.clean.services import set_policy
from kuaishu.db import make_sessionmaker, transaction
from kuaishu.share.grants import LIMITER
from kuaishu.web.app import create_app
from tests import factories as f
from tests.functional.store.conftest import load_file, write_csv
from tests.http import ok

SHARE = "/api/v1/share"
DATA = "/api/v1/data"
READ_METHODS = ["query", "lookup", "download", "subscribe"]
PURPOSE = {"X-Purpose": "%E6%A0%B8%E9%AA%8C"}  # 核验


def share_rule(item: str, method: str, **params: Any) -> dict[str, Any]:
    return {"item": item, "channel": "share", "method": method, "params": params}


@dataclass
class World:
    """One entry, its rows, and a grant of every read method to the consuming department."""

    code: str
    entry_id: int
    rows: list[dict[str, Any]]
    grant: int = 0


@dataclass
class Ground:
    client: TestClient
    factory: sessionmaker[Session]
    keys: dict[str, dict[str, str]]  # who → headers
    users: dict[str, int]  # who → user id
    worlds: dict[str, World] = field(default_factory=dict)

    def grant_get(self, world: str, tail: str, who: str = "consumer", **params: Any) -> Any:
        headers = {**self.keys[who], **PURPOSE}
        url = f"{SHARE}/grants/{self.worlds[world].grant}/{tail}"
        return self.client.get(url, params=params, headers=headers)

    def owner_get(self, world: str, tail: str, **params: Any) -> Any:
        url = f"{DATA}/{self.worlds[world].code}/{tail}"
        return self.client.get(url, params=params, headers=self.keys["owner"])

    def apply(self, world: str, who: str = "consumer", **body: Any) -> Any:
        return self.client.post(
            f"{SHARE}/entries/{self.worlds[world].entry_id}/applications",
            json={"purpose": "待遇资格核验", "methods": READ_METHODS, **body},
            headers=self.keys[who],
        )


def build_ground(
    engine: Engine,
    data_dir: Path,
    items: list[tuple[str, str]],
    sensitive: tuple[str, ...],
    rules: dict[str, list[dict[str, Any]]],
    worlds: dict[str, list[dict[str, Any]]],
    **entry: Any,
) -> Iterator[Ground]:
    """For each world an entry with ``items`` (key 编号), masked by its ``rules``, holding its
    rows; the consumer holds a grant of every read method on each."""
    factory = make_sessionmaker(engine)
    ids: dict[str, tuple[int, str]] = {}
    with transaction(factory) as db:
        provider = f.department(db, name="省民政厅")
        consumer = f.department(db, name="省人社厅")
        second = f.department(db, name="省医保局")
        for name in worlds:
            made = f.published_entry(
                db,
                dept=provider,
                name=f"救助对象名册{name}",
                items=items,
                keys=("编号",),
                sensitive=sensitive,
                **entry,
            )
            ids[name] = (made.id, made.code)

        users: dict[str, int] = {}

        def key(role: Role, dept: Any) -> dict[str, str]:
            made = f.user(db, roles=[role], dept=dept)
            users[str(len(users))] = made.id
            return {"X-API-Key": f.api_key(db, made)}

        keys = {
            "owner": key(Role.DATA_OFFICER, provider),
            "consumer": key(Role.CONSUMER, consumer),
            "colleague": key(Role.CONSUMER, consumer),
            "second": key(Role.CONSUMER, second),
        }
        ids_of = dict(zip(keys, users.values(), strict=True))
    for name, rows in worlds.items():
        entry_id = ids[name][0]
        load_file(factory, entry_id, write_csv(data_dir / f"{name}.csv", rows))
        with transaction(factory) as db:
            found = db.get(CatalogEntry, entry_id)
            assert found is not None
            set_policy(db, actor=f.ROOT, entry=found, rules=rules[name], note="共享渠道脱敏")
    app = create_app(engine=engine)
    with TestClient(app, base_url="http://testserver") as client:
        ground = Ground(client=client, factory=factory, keys=keys, users=ids_of)
        for name, rows in worlds.items():
            entry_id, code = ids[name]
            ground.worlds[name] = World(code=code, entry_id=entry_id, rows=rows)
            ground.worlds[name].grant = ok(ground.apply(name), 201)["grant"]["id"]
        yield ground
    LIMITER.clear()  # the next module's grants reuse these ids
