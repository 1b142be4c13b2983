"""Issue 10, class 12 — features that break under masking. For every masking method, applied to
the key column and to another column: 1,200 people (whose masked ID numbers are often alike)
published, followed by a pulled feed, a push to a real local HTTP receiver and table sync into
the consumer's SQLite (and PostgreSQL) database; then a second version with a few rows added,
changed and removed. Each consumer must end with exactly the rows a query under the grant shows —
as many, with the same masked values — every change arriving once, and an unchanged row must
not read as changed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, MetaData, Table, create_engine, make_url, select
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.accounts.roles import Role
from kuaishu.clean.keyed import Keyed
from kuaishu.clean.masking import MaskMethod
from kuaishu.clean.services import set_policy
from kuaishu.db import make_sessionmaker, transaction, utcnow
from kuaishu.share.subscriptions import deliver_due
from kuaishu.web.app import create_app
from tests import factories as f
from tests.conftest import fresh_database_url
from tests.functional.share.test_subscriptions import Receiver
from tests.functional.store.conftest import load_engine, load_file, module_data_dir, write_csv
from tests.http import ok

__all__ = ["load_engine", "module_data_dir"]

API = "/api/v1/share"
PURPOSE = {"X-Purpose": "%E5%BE%85%E9%81%87%E6%A0%B8%E9%AA%8C"}
ITEMS = [("身份证号", "C"), ("姓名", "C"), ("区划代码", "C"), ("出生日期", "D"), ("补助金额", "N")]
KEY = "身份证号"
PEOPLE = 1_200

# What each method does to the key column (most make many people's IDs alike) …
ON_KEY: dict[MaskMethod, dict[str, Any]] = {
    MaskMethod.MASK: {"first": 6},
    MaskMethod.TRUNCATE: {"keep": 6},
    MaskMethod.GENERALISE: {"to": "range", "width": 100},
    MaskMethod.NULL: {},
    MaskMethod.SUBSTITUTE: {"value": "已脱敏"},
    MaskMethod.SHUFFLE: {},
    MaskMethod.NOISE: {"percent": 1},
    MaskMethod.DATE_SHIFT: {"days": 3},
    MaskMethod.HASH: {},
    MaskMethod.PSEUDONYM: {},
    MaskMethod.ENCRYPT: {},
}
# … and to a column it suits.
ON_OTHER: dict[MaskMethod, tuple[str, dict[str, Any]]] = {
    MaskMethod.MASK: ("姓名", {"first": 1}),
    MaskMethod.TRUNCATE: ("姓名", {"keep": 1}),
    MaskMethod.GENERALISE: ("补助金额", {"to": "range", "width": 50}),
    MaskMethod.NULL: ("姓名", {}),
    MaskMethod.SUBSTITUTE: ("姓名", {"value": "***"}),
    MaskMethod.SHUFFLE: ("姓名", {}),
    MaskMethod.NOISE: ("补助金额", {"percent": 10}),
    MaskMethod.DATE_SHIFT: ("出生日期", {"days": 30}),
    MaskMethod.HASH: ("姓名", {}),
    MaskMethod.PSEUDONYM: ("姓名", {}),
    MaskMethod.ENCRYPT: ("姓名", {}),
}
CASES = [(m, KEY, ON_KEY[m]) for m in MaskMethod] + [(m, *ON_OTHER[m]) for m in MaskMethod]


def person(i: int) -> dict[str, Any]:
    return {
        KEY: f"52010219900101{i:04d}",
        "姓名": f"张{i}",
        "区划代码": "520102" if i % 2 else "520103",
        "出生日期": date(1960, 1, 1) + timedelta(days=i * 11),
        "补助金额": 100 + i,
    }


@dataclass
class World:
    client: TestClient
    factory: sessionmaker[Session]
    provider_id: int
    cataloguer_id: int
    consumer: dict[str, str]
    folder: Path


@pytest.fixture(scope="module")
def world(
    load_engine: Engine, module_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    factory = make_sessionmaker(load_engine)
    with transaction(factory) as db:
        # The receiver and sync targets are local: allowed explicitly (test-only entries).
        f.allow_loopback(db, tmp_path_factory.getbasetemp())
        provider = f.department(db, name="省民政厅")
        consumer = f.department(db, name="省人社厅")
        cataloguer = f.user(db, roles=[Role.CATALOGUER], dept=provider)
        key = {"X-API-Key": f.api_key(db, f.user(db, roles=[Role.CONSUMER], dept=consumer))}
        provider_id, cataloguer_id = provider.id, cataloguer.id
    with TestClient(create_app(engine=load_engine), base_url="http://testserver") as client:
        yield World(client, factory, provider_id, cataloguer_id, key, module_data_dir)


def masked_entry(w: World, method: MaskMethod, column: str, params: dict[str, Any]) -> int:
    """A new entry whose share channel masks ``column`` by ``method``."""
    from kuaishu.accounts.models import Department, User

    with transaction(w.factory) as db:
        provider = db.get(Department, w.provider_id)
        cataloguer = db.get(User, w.cataloguer_id)
        assert provider is not None and cataloguer is not None
        entry = f.published_entry(
            db, dept=provider, name=f"救助对象（{method}，{column}）", items=ITEMS, keys=(KEY,)
        )
        rule = {"item": column, "channel": "share", "method": str(method), "params": params}
        set_policy(db, actor=f.actor(cataloguer), entry=entry, rules=[rule])
        return entry.id


def publish(w: World, entry_id: int, rows: list[dict[str, Any]], name: str) -> None:
    load_file(w.factory, entry_id, write_csv(w.folder / f"{entry_id}-{name}.csv", rows))


def grant_for(w: World, entry_id: int) -> int:
    made = ok(
        w.client.post(
            f"{API}/entries/{entry_id}/applications",
            json={"purpose": "养老待遇资格核验", "methods": ["download", "subscribe", "sync"]},
            headers=w.consumer,
        ),
        201,
    )
    assert made["kind"] == "grant", made
    return int(made["grant"]["id"])


def canonical(value: Any, name: str, method: MaskMethod, column: str) -> Any:
    """A cell as comparable text: SM4 ciphertexts (fresh nonce per read) by their plaintext."""
    if value is None:
        return None
    if method == MaskMethod.ENCRYPT and name == column:
        return Keyed().decrypt(str(value))  # the key ring of this module's data folder
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) or type(value).__name__ == "Decimal":
        return f"{float(value):.6g}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


Rows = Counter[tuple[Any, ...]]


def as_rows(
    records: list[dict[str, Any]], names: list[str], method: MaskMethod, column: str
) -> Rows:
    return Counter(tuple(canonical(r[n], n, method, column) for n in names) for r in records)


def queried(w: World, grant: int) -> tuple[list[str], list[dict[str, Any]]]:
    """Every row the grant shows, as one read (a download: the query API pages 1,000 rows at a
    time, and a shuffle's permutation is the whole version's)."""
    response = w.client.get(
        f"{API}/grants/{grant}/download.jsonl", headers={**w.consumer, **PURPOSE}
    )
    assert response.status_code == 200, response.text
    rows = [orjson.loads(line) for line in response.content.splitlines() if line.strip()]
    return list(rows[0]), rows


def pulled(w: World, grant: int, cursor: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """Every change from ``cursor`` until caught up, and the cursor after them."""
    headers = {**w.consumer, **PURPOSE}
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
    while True:
        page = ok(w.client.get(f"{API}/grants/{grant}/changes", params=params, headers=headers))
        found += page["changes"]
        if page["up_to_date"]:
            return found, page["next_cursor"]
        params = {"cursor": page["next_cursor"], "limit": 500}


def replay(
    table: dict[str, dict[str, Any]], changes: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The consumer's copy after applying ``changes``, by row id."""
    for change in changes:
        if change["op"] == "removed":
            del table[change["row_id"]]
        else:
            table[change["row_id"]] = change["row"]
    return table


def subscribe(w: World, grant: int, body: dict[str, Any]) -> dict[str, Any]:
    made: dict[str, Any] = ok(
        w.client.post(f"{API}/grants/{grant}/subscriptions", json=body, headers=w.consumer), 201
    )
    return made


def sync_targets(backend: str, tmp_path: Path) -> list[str]:
    targets = [f"sqlite:///{tmp_path / 'consumer.db'}"]
    if backend == "postgresql":
        targets.append(fresh_database_url("postgresql", "maskedsync"))
    return targets


def synced(target: str, names: list[str]) -> list[dict[str, Any]]:
    engine = create_engine(target)
    try:
        with engine.connect() as conn:
            table = Table("masked_copy", MetaData(), autoload_with=conn)
            found = conn.execute(select(*(table.c[n] for n in names))).all()
    finally:
        engine.dispose()
    return [dict(zip(names, row, strict=True)) for row in found]


def edited(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Three people changed (name, amount, birth date), two gone, two new."""
    rows = [dict(r) for r in rows]
    rows[10]["姓名"] = "李改名"
    rows[20]["补助金额"] = 99999
    rows[30]["出生日期"] = date(2001, 2, 3)
    del rows[500]
    del rows[40]
    return [*rows, person(PEOPLE + 1), person(PEOPLE + 2)]


@pytest.mark.parametrize(
    ("method", "column", "params"),
    CASES,
    ids=[f"{m}-{'key' if c == KEY else 'other'}" for m, c, _ in CASES],
)
def test_feed_push_and_sync_hold_exactly_the_granted_rows_under_every_mask(
    world: World,
    backend: str,
    tmp_path: Path,
    method: MaskMethod,
    column: str,
    params: dict[str, Any],
) -> None:
    w = world
    entry = masked_entry(w, method, column, params)
    first = [person(i) for i in range(1, PEOPLE + 1)]
    publish(w, entry, first, "v1")
    grant = grant_for(w, entry)

    receiver = Receiver()
    receiver.start()
    try:
        pushed = subscribe(w, grant, {"mode": "push", "endpoint": receiver.url, "batch_size": 400})
        receiver.secret = pushed["secret"]
        targets = sync_targets(backend, tmp_path)
        for target in targets:
            url = make_url(target)
            subscribe(
                w,
                grant,
                {
                    "mode": "sync",
                    "target_url": str(url._replace(password=None)),
                    "password": url.password or "",
                    "target_table": "masked_copy",
                    "batch_size": 500,
                },
            )
        pulled_v1, cursor = pulled(w, grant)
        deliver_due(w.factory, now=utcnow())

        names, shown_v1 = queried(w, grant)
        assert len(shown_v1) == PEOPLE
        held = replay({}, pulled_v1)
        assert len(held) == PEOPLE  # alike masked keys, yet nobody overwritten
        assert as_rows(list(held.values()), names, method, column) == as_rows(
            shown_v1, names, method, column
        )

        publish(w, entry, edited(first), "v2")
        pulled_v2, _ = pulled(w, grant, cursor)
        deliver_due(w.factory, now=utcnow())
        # Masks are drawn per row from its stored key: a publish is a few changes, not all rows
        # (a shuffle also moves the values of the changed rows' neighbours).
        assert 0 < len(pulled_v2) <= 25, [c["op"] for c in pulled_v2]

        names, shown = queried(w, grant)
        expected = as_rows(shown, names, method, column)
        assert sum(expected.values()) == PEOPLE
        held = replay(held, pulled_v2)
        assert as_rows(list(held.values()), names, method, column) == expected

        got = receiver.changes()
        ids = [c["id"] for c in got]
        assert len(ids) == len(set(ids)) == len(pulled_v1) + len(pulled_v2)  # each change once
        assert receiver.bad_signatures == 0
        assert as_rows(list(replay({}, got).values()), names, method, column) == expected

        for target in targets:
            assert as_rows(synced(target, names), names, method, column) == expected
    finally:
        receiver.stop()
