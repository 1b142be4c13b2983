"""Subscriptions: the change feed a consumer pulls, pushes to a real local HTTP receiver that is
down for a while, and table sync into a database of the consumer's — each change arriving once,
only the granted fields and rows, masked; a revoked grant stops delivery on its next try."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import create_engine, make_url, select, text

from kuaishu.db import utcnow
from kuaishu.security.models import AuditEvent, Outcome
from kuaishu.share.models import Subscription
from kuaishu.share.subscriptions import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    deliver_due,
    verify,
)
from kuaishu.store.models import Dataset, DatasetVersion, VersionState
from tests.conftest import fresh_database_url
from tests.functional.share.conftest import API, Exchange, person, revoke_grants_after
from tests.functional.store.conftest import load_file, write_csv
from tests.http import ok, refused

PURPOSE = {"X-Purpose": "%E5%BE%85%E9%81%87%E6%A0%B8%E9%AA%8C"}


def grant_for(x: Exchange, kind: str, methods: list[str], **body: Any) -> int:
    made = ok(
        x.client.post(
            f"{API}/entries/{x.entries[kind]['id']}/applications",
            json={"purpose": "养老待遇资格核验", "methods": methods, **body},
            headers=x.keys["consumer"],
        ),
        201,
    )
    if made["kind"] == "grant":
        return int(made["grant"]["id"])
    application = made["application"]["id"]
    approved = ok(
        x.client.post(
            f"{API}/applications/{application}/approve",
            json={"reason": "同意"},
            headers=x.keys["provider_officer"],
        )
    )
    return int(approved["id"])


def publish(x: Exchange, kind: str, rows: list[dict[str, Any]], folder: Path, name: str) -> None:
    """A new version of the entry holding exactly ``rows``."""
    load_file(x.factory, x.entries[kind]["id"], write_csv(folder / f"{name}.csv", rows))


def pull(x: Exchange, grant: int, **params: Any) -> list[dict[str, Any]]:
    """Every change from the given start until caught up, page by page."""
    found: list[dict[str, Any]] = []
    headers = {**x.keys["consumer"], **PURPOSE}
    while True:
        page = ok(x.client.get(f"{API}/grants/{grant}/changes", params=params, headers=headers))
        found += page["changes"]
        if page["up_to_date"]:
            return found
        params = {"cursor": page["next_cursor"], "limit": params.get("limit", 500)}


def replay(changes: list[dict[str, Any]], key: str = "身份证号") -> dict[str, dict[str, Any]]:
    """The table a consumer holds after applying ``changes`` in order."""
    table: dict[str, dict[str, Any]] = {}
    for change in changes:
        if change["op"] == "removed":
            del table[change["key"][key]]
        else:
            table[change["key"][key]] = change["row"]
    return table


def served(x: Exchange, grant: int) -> dict[str, dict[str, Any]]:
    """What the grant shows of the served version now, by key."""
    body = ok(
        x.client.get(
            f"{API}/grants/{grant}/query",
            params={"shape": "objects", "limit": 1000},
            headers={**x.keys["consumer"], **PURPOSE},
        )
    )
    return {r["身份证号"]: r for r in body["rows"]}


def edited(x: Exchange, start: int) -> list[dict[str, Any]]:
    """The fixture's rows with one amount changed, one row gone and one new row."""
    rows = [dict(r) for r in x.rows]
    rows[0]["补助金额"] = 999
    del rows[1]
    return [*rows, person(start)]


def test_pulled_feed_replays_to_the_served_data_and_reads_the_next_version_as_three_changes(
    exchange: Exchange, tmp_path: Path
) -> None:
    grant = grant_for(exchange, "unconditional", ["query", "subscribe"])
    everything = pull(exchange, grant, limit=7)
    assert replay(everything) == served(exchange, grant)
    # 姓名 is sensitive with no share rule: it is shared as NULL in the feed too.
    assert all(c["row"]["姓名"] is None for c in everything)
    ids = [c["id"] for c in everything]
    assert len(ids) == len(set(ids))

    current = ok(
        exchange.client.get(f"{API}/grants/{grant}/dictionary", headers=exchange.keys["consumer"])
    )["version"]["number"]
    publish(exchange, "unconditional", edited(exchange, 901), tmp_path, "v-next")
    changes = pull(exchange, grant, since_version=current)
    ops = {c["key"]["身份证号"]: c["op"] for c in changes}
    assert ops == {
        exchange.rows[0]["身份证号"]: "changed",
        exchange.rows[1]["身份证号"]: "removed",
        person(901)["身份证号"]: "added",
    }
    changed = next(c for c in changes if c["op"] == "changed")
    assert changed["row"]["补助金额"] == 999 and changed["version"] == current + 1
    assert replay(everything + changes) == served(exchange, grant)
    events = exchange.audit("data.changes")
    assert events[-1].details is not None and events[-1].details["grant"] == grant
    assert events[-1].details["rows"] == 3 and events[-1].purpose == "待遇核验"


def test_row_filter_and_fields_bound_the_feed(exchange: Exchange, tmp_path: Path) -> None:
    """A row moving into the granted rows reads as added, one moving out as removed; a change
    to a field the grant does not show is no change to this consumer."""
    grant = grant_for(
        exchange,
        "conditional",
        ["subscribe"],
        legal_basis="《社会救助暂行办法》",
        fields=["身份证号", "区划代码"],
        row_filter=[["区划代码", "520102"]],
    )
    start = pull(exchange, grant)
    table = replay(start)
    assert table and all(r["区划代码"] == "520102" for r in table.values())
    assert all(set(r) == {"身份证号", "区划代码"} for r in table.values())
    number = max(c["version"] for c in start)
    rows = [dict(r) for r in exchange.rows]
    moved_in, moved_out, amount_only = rows[1], rows[2], rows[4]  # 520103, 520102, 520102
    assert (moved_in["区划代码"], moved_out["区划代码"]) == ("520103", "520102")
    moved_in["区划代码"], moved_out["区划代码"] = "520102", "520103"
    amount_only["补助金额"] = 12345
    publish(exchange, "conditional", rows, tmp_path, "moved")
    changes = pull(exchange, grant, since_version=number + 0)
    assert {(c["op"], c["key"]["身份证号"]) for c in changes} == {
        ("added", moved_in["身份证号"]),
        ("removed", moved_out["身份证号"]),
    }


def test_feed_is_refused_without_the_method_and_for_a_bad_cursor(exchange: Exchange) -> None:
    grant = grant_for(exchange, "unconditional", ["query"])
    h = {**exchange.keys["consumer"], **PURPOSE}
    refused(
        exchange.client.get(f"{API}/grants/{grant}/changes", headers=h), 403, "method_not_granted"
    )
    revoke_grants_after(exchange, grant - 1)
    subscribing = grant_for(exchange, "unconditional", ["subscribe"])
    refused(
        exchange.client.get(
            f"{API}/grants/{subscribing}/changes", params={"cursor": "x"}, headers=h
        ),
        422,
        "feed_cursor_invalid",
    )
    refused(
        exchange.client.get(
            f"{API}/grants/{subscribing}/changes", params={"since_version": 999}, headers=h
        ),
        404,
        "feed_version_unknown",
    )


# A real receiver ----------------------------------------------------------------------------------


class Receiver:
    """A consumer's HTTP endpoint: verifies each push's signature, applies a delivery once
    (by its idempotency key), and can be told to fail or to lose its acknowledgement."""

    def __init__(self) -> None:
        self.secret = ""
        self.raw: list[tuple[str, bytes]] = []  # every request, duplicates included
        self.applied: dict[str, list[dict[str, Any]]] = {}
        self.bad_signatures = 0
        self.lose_next_ack = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                delivery = self.headers[DELIVERY_HEADER]
                outer.raw.append((delivery, body))
                stamp, signed = self.headers[TIMESTAMP_HEADER], self.headers[SIGNATURE_HEADER]
                if not verify(outer.secret, stamp, body, signed):
                    outer.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                if delivery not in outer.applied:
                    outer.applied[delivery] = orjson.loads(body)["changes"]
                status = 500 if outer.lose_next_ack else 204
                outer.lose_next_ack = False
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.server.server_close()  # the port is ours, but nothing listens yet: "down"
        self.handler = Handler
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/kuaishu/changes"

    def start(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.thread is not None:
            self.server.shutdown()
            self.server.server_close()

    def changes(self) -> list[dict[str, Any]]:
        return [c for batch in self.applied.values() for c in batch]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.stop()


def subscription(x: Exchange, subscription_id: int) -> Subscription:
    with x.factory() as session:
        found = session.get(Subscription, subscription_id)
        assert found is not None
        session.expunge(found)
        return found


def test_a_receiver_down_for_a_while_gets_every_change_exactly_once(
    exchange: Exchange, receiver: Receiver, tmp_path: Path
) -> None:
    grant = grant_for(exchange, "unconditional", ["query", "subscribe"])
    made = ok(
        exchange.client.post(
            f"{API}/grants/{grant}/subscriptions",
            json={"mode": "push", "endpoint": receiver.url, "batch_size": 9},
            headers=exchange.keys["consumer"],
        ),
        201,
    )
    receiver.secret = made["secret"]
    sub = made["subscription"]["id"]
    now = utcnow()

    # Down: the first try fails and backs off; nothing is due until the back-off ends.
    assert deliver_due(exchange.factory, now=now) == 0
    down = subscription(exchange, sub)
    assert down.attempts == 1 and down.cursor == "1.0" and "ConnectError" in down.last_error
    assert down.next_attempt_at is not None and down.next_attempt_at > now
    assert deliver_due(exchange.factory, now=now + timedelta(seconds=1)) == 0
    assert subscription(exchange, sub).attempts == 1
    for attempt in range(2, 6):  # still down: each try doubles the wait
        later = subscription(exchange, sub).next_attempt_at
        assert later is not None
        deliver_due(exchange.factory, now=later)
        assert subscription(exchange, sub).attempts == attempt
    # Five failures in a row: the consuming department is told, once.
    with exchange.factory() as session:
        told = session.scalar(
            text("SELECT count(*) FROM notifications WHERE kind = 'share.subscription_failing'")
        )
    assert told and told >= 1

    # While it is down the provider publishes a new version.
    publish(exchange, "unconditional", edited(exchange, 902), tmp_path, "while-down")

    # Back up — and the first acknowledgement is lost: that batch comes again, same key.
    receiver.start()
    receiver.lose_next_ack = True
    later = subscription(exchange, sub).next_attempt_at
    assert later is not None
    deliver_due(exchange.factory, now=later)
    deliver_due(exchange.factory, now=later + timedelta(hours=2))
    done = subscription(exchange, sub)
    assert done.attempts == 0 and done.last_error == ""

    deliveries = [d for d, _ in receiver.raw]
    assert len(deliveries) == len(set(deliveries)) + 1  # one redelivery, after the lost ack
    repeated = next(d for d in deliveries if deliveries.count(d) == 2)
    assert len({body for d, body in receiver.raw if d == repeated}) == 1  # the same batch
    assert receiver.bad_signatures == 0
    got = receiver.changes()
    ids = [c["id"] for c in got]
    assert len(ids) == len(set(ids))  # every change exactly once
    assert replay(got) == served(exchange, grant)
    assert done.delivered == len(got)
    # Nothing more to send: a further beat sends nothing.
    before, reads = len(receiver.raw), len(exchange.audit("data.changes"))
    assert deliver_due(exchange.factory, now=later + timedelta(hours=3)) == 0
    assert len(receiver.raw) == before
    assert len(exchange.audit("data.changes")) == reads  # nothing read, nothing recorded


def test_revoking_the_grant_stops_delivery_on_the_next_try(
    exchange: Exchange, receiver: Receiver
) -> None:
    grant = grant_for(exchange, "unconditional", ["subscribe"])
    made = ok(
        exchange.client.post(
            f"{API}/grants/{grant}/subscriptions",
            json={"mode": "push", "endpoint": receiver.url},
            headers=exchange.keys["consumer"],
        ),
        201,
    )
    receiver.secret = made["secret"]
    receiver.start()
    ok(
        exchange.client.post(
            f"{API}/grants/{grant}/revoke",
            json={"reason": "用途已结束"},
            headers=exchange.keys["provider_officer"],
        )
    )
    deliver_due(exchange.factory, now=utcnow())
    assert receiver.raw == []
    stopped = subscription(exchange, made["subscription"]["id"])
    assert "grant_revoked" in stopped.last_error and stopped.cursor == "1.0"
    with exchange.factory() as session:
        denied = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "share.read", AuditEvent.outcome == Outcome.DENIED
            )
        ).all()
    assert any((e.details or {}).get("subscription") == made["subscription"]["id"] for e in denied)


def test_subscribing_checks_what_it_is_given(exchange: Exchange) -> None:
    grant = grant_for(exchange, "unconditional", ["subscribe"])
    url = f"{API}/grants/{grant}/subscriptions"
    h = exchange.keys["consumer"]
    refused(
        exchange.client.post(url, json={"mode": "push", "endpoint": "ftp://x"}, headers=h),
        422,
        "endpoint_invalid",
    )
    refused(
        exchange.client.post(
            url,
            json={"mode": "sync", "target_url": "sqlite:////tmp/x.db", "target_table": "t"},
            headers=h,
        ),
        403,
        "method_not_granted",
    )
    refused(
        exchange.client.post(
            url,
            json={"mode": "push", "endpoint": "http://127.0.0.1:9/"},
            headers=exchange.keys["other"],
        ),
        403,
        "permission_denied",
    )


# Table sync ------------------------------------------------------------------------------------


def sync_targets(backend: str, tmp_path: Path) -> list[str]:
    targets = [f"sqlite:///{tmp_path / 'consumer.db'}"]
    if backend == "postgresql":
        targets.append(fresh_database_url("postgresql", "synctarget"))
    return targets


def test_table_sync_writes_each_change_once_into_the_consumers_database(
    exchange: Exchange, backend: str, tmp_path: Path
) -> None:
    grant = grant_for(exchange, "unconditional", ["query", "sync"])
    for n, target in enumerate(sync_targets(backend, tmp_path)):
        url = make_url(target)  # the password goes apart from the address, sealed
        made = ok(
            exchange.client.post(
                f"{API}/grants/{grant}/subscriptions",
                json={
                    "password": url.password or "",
                    "mode": "sync",
                    "target_url": str(url._replace(password=None)),
                    "target_table": "jiuzhu",
                    "batch_size": 11,
                },
                headers=exchange.keys["consumer"],
            ),
            201,
        )
        sub = made["subscription"]["id"]
        assert made["secret"] is None
        deliver_due(exchange.factory, now=utcnow())
        publish(exchange, "unconditional", edited(exchange, 903 + n), tmp_path, f"sync-{n}")
        # A batch applied whose acknowledgement was lost is recognised, not applied twice.
        with exchange.factory() as session, session.begin():
            found = session.get(Subscription, sub)
            assert found is not None
            acknowledged = found.cursor
        deliver_due(exchange.factory, now=utcnow())
        engine = create_engine(target)
        with engine.begin() as conn:
            held = {
                r[0]: r
                for r in conn.execute(
                    text('SELECT "身份证号", "区划代码", "补助金额", "姓名" FROM jiuzhu')
                )
            }
            state = conn.execute(text("SELECT cursor FROM kuaishu_sync_state")).scalar_one()
        engine.dispose()
        expected = served(exchange, grant)
        assert set(held) == set(expected)
        assert all(float(held[k][2]) == float(v["补助金额"]) for k, v in expected.items())
        assert all(held[k][3] is None for k in held)  # masked as shared: NULL
        assert state == subscription(exchange, sub).cursor != acknowledged
        # The consumer edits its copy; the same batch again must not overwrite it.
        first = exchange.rows[0]["身份证号"]
        engine = create_engine(target)
        with engine.begin() as conn:
            conn.execute(
                text('UPDATE jiuzhu SET "补助金额" = -1 WHERE "身份证号" = :k'), {"k": first}
            )
        rewind(exchange, sub, acknowledged)
        deliver_due(exchange.factory, now=utcnow())
        with engine.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM jiuzhu")).scalar_one() == len(expected)
            kept = conn.execute(
                text('SELECT "补助金额" FROM jiuzhu WHERE "身份证号" = :k'), {"k": first}
            ).scalar_one()
        engine.dispose()
        assert float(kept) == -1
        assert subscription(exchange, sub).cursor == state
        ok(
            exchange.client.post(
                f"{API}/subscriptions/{sub}/stop", headers=exchange.keys["consumer"]
            )
        )


def rewind(x: Exchange, subscription_id: int, cursor: str) -> None:
    """As if the platform died after the target committed, before it acknowledged."""
    with x.factory() as session, session.begin():
        found = session.get(Subscription, subscription_id)
        assert found is not None
        found.cursor = cursor
        found.next_attempt_at = None


def test_retention_never_loses_a_change(exchange: Exchange, tmp_path: Path) -> None:
    """Versions past ``keep_versions`` are removed, but a consumer that was away all along still
    reads every change since its cursor (the steps were worked out before the files went)."""
    grant = grant_for(exchange, "unconditional", ["query", "subscribe"])
    held = replay(pull(exchange, grant))
    with exchange.factory() as session, session.begin():
        dataset = session.get(Dataset, exchange.entries["unconditional"]["id"])
        assert dataset is not None
        dataset.keep_versions = 2
        since = session.get(DatasetVersion, dataset.current_version_id)
        assert since is not None
        number = since.number
    rows = [dict(r) for r in exchange.rows]
    for step in range(4):
        rows[step]["补助金额"] = 5000 + step
        publish(exchange, "unconditional", rows, tmp_path, f"kept-{step}")
    with exchange.factory() as session:
        retired = session.scalar(
            select(DatasetVersion).where(
                DatasetVersion.entry_id == exchange.entries["unconditional"]["id"],
                DatasetVersion.number == number,
            )
        )
        assert retired is not None and retired.state == VersionState.RETIRED
    changes = pull(exchange, grant, since_version=number)
    assert sorted({c["version"] for c in changes}) == [
        number + 1,
        number + 2,
        number + 3,
        number + 4,
    ]
    for change in changes:
        if change["op"] == "removed":
            del held[change["key"]["身份证号"]]
        else:
            held[change["key"]["身份证号"]] = change["row"]
    assert held == served(exchange, grant)


def test_a_roll_back_reads_as_the_changes_that_undo_the_last_load(
    exchange: Exchange, tmp_path: Path
) -> None:
    grant = grant_for(exchange, "unconditional", ["query", "subscribe"])
    held = replay(pull(exchange, grant))
    before = served(exchange, grant)
    entry = exchange.entries["unconditional"]["id"]
    number = _current(exchange, grant)
    headers = {**exchange.keys["consumer"], **PURPOSE}
    start = ok(exchange.client.get(f"{API}/grants/{grant}/changes", headers=headers))
    assert start["up_to_date"]
    publish(exchange, "unconditional", edited(exchange, 950), tmp_path, "to-undo")
    ok(
        exchange.client.post(
            f"/api/v1/collect/entries/{entry}/versions/{number}/publish",
            json={"reason": "新版本有误，回退"},
            headers=exchange.keys["provider_officer"],
        )
    )
    changes = pull(exchange, grant, cursor=start["next_cursor"])
    # The load, then the roll back: the same rows, undone, in the step back to ``number``.
    load = [c for c in changes if c["version"] == number + 1]
    undo = changes[len(load) :]
    assert load and changes[: len(load)] == load and {c["version"] for c in undo} == {number}
    opposite = {"added": "removed", "removed": "added", "changed": "changed"}
    assert {(c["key"]["身份证号"], opposite[c["op"]]) for c in load} == {
        (c["key"]["身份证号"], c["op"]) for c in undo
    }
    for change in changes:
        if change["op"] == "removed":
            del held[change["key"]["身份证号"]]
        else:
            held[change["key"]["身份证号"]] = change["row"]
    assert held == served(exchange, grant) == before


def _current(x: Exchange, grant: int) -> int:
    found = ok(x.client.get(f"{API}/grants/{grant}/dictionary", headers=x.keys["consumer"]))
    return int(found["version"]["number"])
