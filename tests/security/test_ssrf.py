"""Class 7 of issue 10: the server as a proxy (SSRF) and the consumer as a file writer.

Collection sources, push endpoints and table-sync targets reach only what the operator put on the
allow list. Loopback, link-local, metadata and unspecified addresses are refused by default, every
address a name resolves to is checked when the connection is made, no redirect is followed, a
remote error body is never echoed, and no consumer names a server file.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.collect.enums import RunStatus, SourceKind
from kuaishu.db import make_engine, make_sessionmaker, transaction, utcnow
from kuaishu.migrate import upgrade
from kuaishu.security import egress
from kuaishu.security.models import AllowedDestination, AuditEvent, DestinationKind
from kuaishu.share.models import Subscription
from kuaishu.share.subscriptions import deliver_due
from tests import factories as f
from tests.conftest import fresh_database_url
from tests.functional.share.conftest import API, Exchange, exchange, load_engine, module_data_dir
from tests.functional.share.test_subscriptions import grant_for
from tests.http import ok, refused
from tests.unit.collect.conftest import data_dir
from tests.unit.collect.sources_support import Reply, Seen, add_source, load, make_entry, serve

__all__ = ["data_dir", "exchange", "load_engine", "module_data_dir"]

ITEMS = [("编号", "I"), ("姓名", "C")]
MAPPING = {"编号": "id", "姓名": "name"}
LEAK = "内网机密-7f3a"


def _people(_seen: Seen) -> Reply:
    return Reply(body=[{"id": 1, "name": "李一"}])


# The allow list, judged address by address ---------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "169.254.169.254",  # cloud metadata
        "100.100.100.200",  # Alibaba Cloud metadata
        "fd00:ec2::254",
        "169.254.10.1",  # link-local
        "fe80::1",
        "0.0.0.0",  # noqa: S104 - an address refused, not one bound
        "::",
        "10.1.2.3",  # private
        "192.168.0.5",
        "::ffff:127.0.0.1",  # loopback wearing IPv6
        "64:ff9b::a9fe:a9fe",  # metadata through NAT64
        "2002:7f00:1::1",  # loopback through 6to4
        "8.8.8.8",  # public, but not on the list
    ],
)
def test_an_empty_list_admits_no_address(address: str) -> None:
    import ipaddress

    assert not egress.AllowList().admits("x.example", 80, ipaddress.ip_address(address))


def test_metadata_and_link_local_stay_refused_even_when_a_network_covers_them() -> None:
    import ipaddress

    allowed = egress.AllowList(
        networks=(
            (ipaddress.ip_network("0.0.0.0/0"), None),
            (ipaddress.ip_network("::/0"), None),
        )
    )
    never_admitted = ("169.254.169.254", "100.100.100.200", "fe80::1", "0.0.0.0", "224.0.0.1")  # noqa: S104
    for address in never_admitted:
        assert not allowed.admits("x", 80, ipaddress.ip_address(address)), address
    assert not allowed.admits("x", 80, ipaddress.ip_address("64:ff9b::a9fe:a9fe"))
    assert allowed.admits("x", 80, ipaddress.ip_address("10.1.2.3"))


def test_a_listed_name_never_admits_loopback() -> None:
    """A listed name that resolves to loopback (a rebinding DNS answer) is refused."""
    allowed = egress.AllowList(names=(("localhost", None),))
    with pytest.raises(egress.EgressRefused):
        allowed.addresses("localhost", 80)


def test_every_resolved_address_is_checked_when_the_connection_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: the name is listed and looked fine when it was registered; at connect time
    it resolves to a public address *and* loopback. The connection is refused, the local server
    receives nothing. (The resolver is the one thing replaced here: a rebinding DNS server.)"""
    real = socket.getaddrinfo

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.example":
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    allowed = egress.AllowList(names=(("rebind.example", None),))
    with serve(_people) as server:
        port = server.url.rsplit(":", 1)[1]
        with (
            egress.http_client(allowed, timeout=5) as client,
            pytest.raises(egress.EgressRefused),
        ):
            client.get(f"http://rebind.example:{port}/")
    assert server.seen == []


# Collection sources ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bare_engine(backend: str) -> Iterator[Engine]:
    """A database whose allow list starts empty, as a new installation's does."""
    engine = make_engine(fresh_database_url(backend, "ssrf"))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(bare_engine: Engine) -> Iterator[sessionmaker[Session]]:
    made = make_sessionmaker(bare_engine)
    yield made
    with transaction(made) as session:
        session.execute(delete(AllowedDestination))


def _allow(factory: sessionmaker[Session], kind: DestinationKind, value: str) -> None:
    with transaction(factory) as session:
        egress.add_destination(session, actor=f.ROOT, kind=kind, value=value, note="测试专用")


def test_a_source_on_loopback_is_refused_until_the_operator_allows_it(
    factory: sessionmaker[Session], data_dir: Path
) -> None:
    setup = make_entry(factory, ITEMS)
    with serve(_people) as server:
        for kind, config in (
            (SourceKind.HTTP_API, {"url": server.url + "/people"}),
            (SourceKind.WEB, {"url": server.url + "/page"}),
            (SourceKind.HTTP_API, {"url": server.url.replace("127.0.0.1", "localhost")}),
        ):
            source = add_source(factory, setup, kind, config, mapping=MAPPING)
            run = load(factory, setup, source)
            assert run.status == RunStatus.FAILED
            assert run.error_code == "egress_not_allowed", run.error_message
        assert server.seen == []  # not one request left the platform

        _allow(factory, DestinationKind.HOST, "127.0.0.1")  # the explicit, test-only entry
        source = add_source(
            factory, setup, SourceKind.HTTP_API, {"url": server.url + "/people"}, mapping=MAPPING
        )
        assert load(factory, setup, source).status == RunStatus.SUCCEEDED
    assert len(server.seen) == 1


def test_a_remote_error_body_is_never_echoed_and_no_redirect_is_followed(
    factory: sessionmaker[Session], data_dir: Path
) -> None:
    _allow(factory, DestinationKind.HOST, "127.0.0.1")
    setup = make_entry(factory, ITEMS)

    def answer(seen: Seen) -> Reply:
        if seen.path == "/moved":
            return Reply(status=302, headers={"Location": "http://169.254.169.254/latest/"})
        return Reply(status=500, body=LEAK, content_type="text/plain")

    with serve(answer) as server:
        for path in ("/broken", "/moved"):
            source = add_source(
                factory, setup, SourceKind.HTTP_API, {"url": server.url + path}, mapping=MAPPING
            )
            run = load(factory, setup, source)
            assert run.status == RunStatus.FAILED and run.error_code == "source_http_error"
            assert LEAK not in (run.error_message or "") + str(run.error_details) + str(run.log)
    assert [s.path for s in server.seen] == ["/broken", "/moved"]  # the redirect not followed


def test_a_database_source_names_no_server_file_or_socket(
    factory: sessionmaker[Session], data_dir: Path, tmp_path: Path
) -> None:
    import sqlite3

    department = tmp_path / "department.db"
    with sqlite3.connect(department) as conn:
        conn.execute("CREATE TABLE t (id INTEGER, name TEXT)")
        conn.execute("INSERT INTO t VALUES (1, '甲')")
    setup = make_entry(factory, ITEMS)
    table = {"table": "t"}
    source = add_source(
        factory,
        setup,
        SourceKind.DATABASE,
        {"url": f"sqlite:///{department}", **table},
        mapping=MAPPING,
    )
    run = load(factory, setup, source)
    assert (run.status, run.error_code) == (RunStatus.FAILED, "egress_path_not_allowed")
    for url in (
        "postgresql+psycopg://reader@/stats?host=/var/run/postgresql",  # a local socket
        "postgresql+psycopg://reader@db.example/stats?sslkey=/etc/kuaishu/key.pem",
        "sqlite:///file:/etc/passwd?mode=ro&uri=true",
    ):
        with pytest.raises(Exception) as caught:
            add_source(factory, setup, SourceKind.DATABASE, {"url": url, **table})
        assert getattr(caught.value, "code", "") == "source_url_invalid", url

    _allow(factory, DestinationKind.FOLDER, str(tmp_path))
    assert load(factory, setup, source).status == RunStatus.SUCCEEDED


# Push endpoints and sync targets ---------------------------------------------------------------


@pytest.fixture
def no_allow_list(exchange: Exchange) -> Iterator[Exchange]:
    """The exchange with its test-only entries taken away for the test, put back after."""
    with transaction(exchange.factory) as session:
        saved = [(e.kind, e.value, e.port) for e in session.scalars(select(AllowedDestination))]
        session.execute(delete(AllowedDestination))
    yield exchange
    with transaction(exchange.factory) as session:
        session.execute(delete(AllowedDestination))
        for kind, value, port in saved:
            session.add(AllowedDestination(kind=kind, value=value, port=port, note="测试专用"))


def test_push_endpoints_and_sync_targets_must_be_on_the_list(
    no_allow_list: Exchange, tmp_path: Path
) -> None:
    x = no_allow_list
    grant = grant_for(x, "unconditional", ["subscribe", "sync"])
    url, h = f"{API}/grants/{grant}/subscriptions", x.keys["consumer"]
    for endpoint in (
        "http://127.0.0.1:9/changes",
        "http://localhost:9/changes",
        "http://[::1]:9/changes",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0:80/",
        "http://10.0.0.8/",
    ):
        refused(
            x.client.post(url, json={"mode": "push", "endpoint": endpoint}, headers=h),
            422,
            "egress_not_allowed",
        )
    refused(
        x.client.post(url, json={"mode": "push", "endpoint": "file:///etc/passwd"}, headers=h),
        422,
        "endpoint_invalid",
    )
    for target, code in (
        (f"sqlite:///{tmp_path / 'mine.db'}", "egress_path_not_allowed"),
        ("sqlite:////etc/kuaishu.db", "egress_path_not_allowed"),
        ("postgresql+psycopg://hr@127.0.0.1:5432/hr", "egress_not_allowed"),
        ("postgresql+psycopg://hr@/hr?host=/var/run/postgresql", "source_url_invalid"),
    ):
        body = {"mode": "sync", "target_url": target, "target_table": "t"}
        refused(x.client.post(url, json=body, headers=h), 422, code)
    with x.factory() as session:
        assert session.scalar(select(Subscription.id).where(Subscription.grant_id == grant)) is None


def test_a_push_refused_at_delivery_and_a_remote_error_body_not_kept(
    exchange: Exchange, tmp_path: Path
) -> None:
    """Registered while allowed; the entry is then removed: the next delivery is refused before
    a connection is made. Allowed again, the receiver's error body is not kept."""
    x = exchange

    def answer(_seen: Seen) -> Reply:
        return Reply(status=500, body=LEAK, content_type="text/plain")

    operator = x.keys["operator"]
    with serve(answer) as server:
        grant = grant_for(x, "unconditional", ["subscribe"])
        made = ok(
            x.client.post(
                f"{API}/grants/{grant}/subscriptions",
                json={"mode": "push", "endpoint": server.url + "/changes"},
                headers=x.keys["consumer"],
            ),
            201,
        )
        sub = made["subscription"]["id"]
        entries = ok(x.client.get("/api/v1/egress/allowed", headers=operator))
        loopback = next(e for e in entries if e["value"] == "127.0.0.1/32")
        assert (
            x.client.delete(
                f"/api/v1/egress/allowed/{loopback['id']}", headers=operator
            ).status_code
            == 204
        )
        deliver_due(x.factory, now=utcnow())
        assert server.seen == []
        with x.factory() as session:
            found = session.get(Subscription, sub)
            assert found is not None and "egress_not_allowed" in found.last_error
            assert found.next_attempt_at is not None
            later = found.next_attempt_at
        ok(
            x.client.post(
                "/api/v1/egress/allowed",
                json={"kind": "host", "value": "127.0.0.1", "note": "测试专用"},
                headers=operator,
            ),
            201,
        )
        deliver_due(x.factory, now=later)
        assert len(server.seen) == 1
    with x.factory() as session:
        found = session.get(Subscription, sub)
        assert found is not None and "HTTP 500" in found.last_error and LEAK not in found.last_error
    ok(x.client.post(f"{API}/subscriptions/{sub}/stop", headers=x.keys["consumer"]))


# The list itself -------------------------------------------------------------------------------


def test_only_the_operator_manages_the_list_and_every_change_is_audited(
    exchange: Exchange,
) -> None:
    x = exchange
    entry = {"kind": "host", "value": "qzj.example.gov.cn", "port": 5432, "note": "前置机"}
    for who in ("consumer", "provider_officer", "auditor"):
        refused(
            x.client.post("/api/v1/egress/allowed", json=entry, headers=x.keys[who]),
            403,
            "permission_denied",
        )
    made = ok(x.client.post("/api/v1/egress/allowed", json=entry, headers=x.keys["operator"]), 201)
    assert made["value"] == "qzj.example.gov.cn" and made["port"] == 5432
    refused(
        x.client.post(
            "/api/v1/egress/allowed",
            json={"kind": "host", "value": "not a host/"},
            headers=x.keys["operator"],
        ),
        422,
        "egress_entry_invalid",
    )
    x.client.delete(f"/api/v1/egress/allowed/{made['id']}", headers=x.keys["operator"])
    with x.factory() as session:
        events = session.scalars(
            select(AuditEvent).where(
                AuditEvent.target_type == "allowed_destination",
                AuditEvent.target_id == str(made["id"]),
            )
        ).all()
    assert [e.action for e in events] == ["egress.allow", "egress.disallow"]


def test_anonymous_callers_get_nothing_from_the_list(client: TestClient) -> None:
    """Anonymous callers get nothing from the list."""
    refused(client.get("/api/v1/egress/allowed"), 401, "not_authenticated")


def test_the_operator_keeps_the_list_from_the_console(client: TestClient, db: Session) -> None:
    from kuaishu.accounts.roles import Role

    operator = f.user(db, roles=[Role.PLATFORM_OPERATOR])
    consumer = f.user(db, roles=[Role.CONSUMER])
    db.commit()
    login = f.sign_in(client, operator.username)
    assert 'href="/admin/egress"' in client.get("/").text
    assert "名单为空" in client.get("/admin/egress").text
    bad = client.post(
        "/admin/egress",
        data={"csrf_token": login.csrf, "kind": "host", "value": "not a host/"},
    )
    assert bad.status_code == 422 and 'data-code="egress_entry_invalid"' in bad.text
    assert 'value="not a host/"' in bad.text  # what was typed is kept for correcting
    added = client.post(
        "/admin/egress",
        data={"csrf_token": login.csrf, "kind": "host", "value": "10.1.2.0/24", "port": "5432"},
        follow_redirects=False,
    )
    assert added.status_code == 303
    page = client.get("/admin/egress").text
    assert "<code>10.1.2.0/24</code>" in page and "5432" in page
    (entry,) = db.scalars(select(AllowedDestination)).all()
    removed = client.post(
        f"/admin/egress/{entry.id}/remove", data={"csrf_token": login.csrf}, follow_redirects=False
    )
    assert removed.status_code == 303
    assert "名单为空" in client.get("/admin/egress").text
    client.post("/logout", data={"csrf_token": login.csrf})
    f.sign_in(client, consumer.username)
    assert client.get("/admin/egress").status_code == 403
