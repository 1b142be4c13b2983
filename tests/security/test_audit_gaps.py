"""Audit gaps (issue 10, class 10): every read is an event (the data dictionary too); a refused
read keeps the purpose its caller declared; failed sign-ins for unknown names and attempts on
locked accounts are events; a looked-up key is never in clear in the trail or the access log; a
download cut short is recorded as such, after (never instead of) its start."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator, MutableMapping
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from kuaishu.accounts.roles import Role
from kuaishu.security.audit import keyed
from kuaishu.security.models import AuditEvent, Outcome
from kuaishu.settings import get_settings
from kuaishu.store import storage
from kuaishu.web.app import create_app
from tests import factories as f
from tests.functional.store.conftest import Served

pytestmark = pytest.mark.xdist_group("security_audit_gaps")


def everything(event: AuditEvent) -> str:
    """The event as an auditor (or an export) sees it, for "is this value anywhere in it"."""
    return event.canonical().decode()


# --- every read is an event -----------------------------------------------------------------------


def test_reading_the_data_dictionary_is_an_event(served: Served) -> None:
    before = len(served.audit("data.dictionary"))
    got = served.get("dictionary", headers={**served.member, "X-Purpose": quote("核对字段")})
    assert got.status_code == 200, got.text
    [event] = served.audit("data.dictionary")[before:]
    assert event.outcome == Outcome.SUCCESS and event.purpose == "核对字段"
    assert event.details is not None and event.details["code"] == served.code


# --- a refused read keeps its declared purpose ------------------------------------------------------


@pytest.mark.parametrize("how", ["parameter", "header", "body"])
def test_a_refused_read_keeps_the_declared_purpose(served: Served, how: str) -> None:
    purpose = f"跨部门核查（{how}）"
    headers = dict(served.outsider)
    if how == "parameter":
        got = served.get("query", headers=headers, purpose=purpose)
    elif how == "header":
        got = served.get("query", headers={**headers, "X-Purpose": quote(purpose)})
    else:
        got = served.client.post(
            served.url("lookup"), json={"key": "x", "purpose": purpose}, headers=headers
        )
    assert got.status_code == 403, got.text
    with served.factory() as session:
        event = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.outcome == Outcome.DENIED)
            .order_by(AuditEvent.id.desc())
            .limit(1)
        ).one()
    assert event.purpose == purpose


# --- sign-ins that the trail must show ----------------------------------------------------------------


def sign_in_events(db: Session) -> list[AuditEvent]:
    return list(
        db.scalars(
            select(AuditEvent).where(AuditEvent.action == "auth.sign_in").order_by(AuditEvent.id)
        )
    )


def try_sign_in(client: TestClient, username: str, password: str) -> int:
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    return int(response.status_code)


def test_a_sign_in_with_an_unknown_name_is_an_event(client: TestClient, db: Session) -> None:
    before = len(sign_in_events(db))
    assert try_sign_in(client, "nobody-here", "whatever-password") == 401
    [event] = sign_in_events(db)[before:]
    assert event.outcome == Outcome.FAILURE
    assert event.details == {"reason": "unknown_user", "name": "nobody-here"}
    assert "whatever-password" not in everything(event)


def test_an_attempt_while_held_back_is_an_event(client: TestClient, db: Session) -> None:
    target = f.user(db, roles=[Role.CONSUMER])
    db.commit()
    for _ in range(get_settings().lockout_threshold):
        assert try_sign_in(client, target.username, "wrong-password") == 401
    before = len(sign_in_events(db))
    assert try_sign_in(client, target.username, f.PASSWORD) == 429
    [event] = sign_in_events(db)[before:]
    assert event.outcome == Outcome.FAILURE
    assert event.details == {"reason": "throttled"}


# --- looked-up keys: a keyed digest, never the value ---------------------------------------------------


def test_a_lookup_key_is_in_the_trail_only_as_its_keyed_digest(served: Served) -> None:
    wanted = served.rows[12]["身份证号"]
    assert served.get("lookup", key=wanted).status_code == 200
    posted = served.client.post(
        served.url("lookup"), json={"keys": {"身份证号": wanted}}, headers=served.member
    )
    assert posted.status_code == 200
    assert served.get("query", 身份证号=wanted).status_code == 200
    by_get, by_post = served.audit("data.lookup")[-2:]
    query = served.audit("data.query")[-1]
    for event in (by_get, by_post, query):
        assert wanted not in everything(event)
    # Equal keys, equal digests: the auditor can still find every lookup of this person.
    assert by_get.details is not None and by_post.details is not None
    assert by_get.details["keys"] == {"key": keyed(wanted)}
    assert by_post.details["keys"] == {"身份证号": keyed(wanted)}
    assert query.details is not None and query.details["filters"] == [["身份证号", keyed(wanted)]]
    assert keyed(wanted) != keyed(served.rows[13]["身份证号"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def real_server(served: Served) -> Iterator[str]:
    """The app behind a real uvicorn, with uvicorn's own access log."""
    app = create_app(engine=served.factory.kw["bind"])
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, access_log=True, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_a_lookup_key_is_not_in_the_access_log(served: Served, real_server: str) -> None:
    wanted = served.rows[30]["身份证号"]
    lines = Lines()
    access = logging.getLogger("uvicorn.access")
    access.addHandler(lines)
    try:
        found = httpx.get(
            f"{real_server}{served.url('lookup')}",
            params={"key": wanted, "fields": "姓名"},
            headers=served.member,
        )
        filtered = httpx.get(
            f"{real_server}{served.url('query')}",
            params={"身份证号": wanted, "q": wanted},
            headers=served.member,
        )
    finally:
        access.removeHandler(lines)
    assert (found.status_code, filtered.status_code) == (200, 200)
    logged = [line for line in lines.lines if "/api/v1/data/" in line]
    assert len(logged) == 2, lines.lines
    assert not [line for line in logged if wanted in line]
    assert all(quote(keyed(wanted), safe="") in line for line in logged), logged
    assert "fields=%E5%A7%93%E5%90%8D" in logged[0]  # what is not a value stays readable


# --- a download cut short ------------------------------------------------------------------------------


def drive(
    served: Served, path: str, *, on_start: Any = None, disconnect: bool = False
) -> list[dict[str, Any]]:
    """One GET through the app as an ASGI server runs it. ``disconnect``: the client goes away
    after the response starts — the server's next send fails (ASGI 2.4: OSError), as uvicorn's
    does on a closed connection. ``on_start`` runs when the response has started."""
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in served.member.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body" and disconnect:
            raise OSError("connection reset by peer")
        sent.append(dict(message))
        if message["type"] == "http.response.start" and on_start is not None:
            on_start()

    async def run() -> None:
        # The server logs the failure; what matters here is what the trail says.
        with contextlib.suppress(Exception):
            await served.client.app(scope, receive, send)

    # A loop of its own in a thread of its own: a browser test earlier in this worker may have
    # left Playwright's loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, run()).result()
    return sent


def test_a_download_cut_short_by_the_client_is_recorded_as_such(served: Served) -> None:
    started_before = len(served.audit("data.download"))
    cut_before = len(served.audit("data.download.incomplete"))

    sent = drive(served, f"/api/v1/data/{served.code}/download.csv", disconnect=True)

    assert sent[0]["status"] == 200  # the download had started
    [started] = served.audit("data.download")[started_before:]
    [cut] = served.audit("data.download.incomplete")[cut_before:]
    assert cut.outcome == Outcome.FAILURE and started.outcome == Outcome.SUCCESS
    assert cut.details is not None and cut.details["reason"] == "disconnected"
    assert cut.details["bytes_sent"] == 0 and cut.details["format"] == "csv"
    assert (cut.target_id, cut.request_id) == (started.target_id, started.request_id)


def test_a_download_that_fails_while_streaming_is_recorded_as_cut_short(served: Served) -> None:
    with served.factory() as session:
        from kuaishu.store.models import DatasetVersion

        version = session.scalars(
            select(DatasetVersion).where(DatasetVersion.entry_id == served.entry_id)
        ).one()
        data_file = storage.resolve(version.path) / storage.DATA_FILE
    hidden = data_file.with_name("moved-away.parquet")
    cut_before = len(served.audit("data.download.incomplete"))

    def lose_the_file() -> None:  # the version's file vanishes once the download has started
        data_file.rename(hidden)

    try:
        drive(served, f"/api/v1/data/{served.code}/download.parquet", on_start=lose_the_file)
    finally:
        if hidden.exists():
            hidden.rename(data_file)

    [cut] = served.audit("data.download.incomplete")[cut_before:]
    assert cut.details is not None
    assert cut.details["reason"] == "error: FileNotFoundError" and cut.details["bytes_sent"] == 0


def test_a_complete_download_has_no_cut_short_event(served: Served) -> None:
    cut_before = len(served.audit("data.download.incomplete"))
    got = served.client.get(served.url("download.csv"), headers=served.member)
    assert got.status_code == 200 and got.content.count(b"\n") == len(served.rows) + 1
    assert len(served.audit("data.download.incomplete")) == cut_before
