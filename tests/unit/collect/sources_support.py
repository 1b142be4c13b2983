"""Helpers for the source tests: an entry with a loader, loads run end to end, loopback servers."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.accounts.actor import Actor
from kuaishu.accounts.roles import Role
from kuaishu.catalog.models import CatalogEntry
from kuaishu.collect.enums import SourceKind
from kuaishu.collect.jobs import InlineRunner
from kuaishu.collect.models import LoadRun, Source
from kuaishu.collect.services import create_source, queue_load
from kuaishu.db import transaction
from kuaishu.store import services as versions
from kuaishu.store import storage
from kuaishu.store.models import DatasetVersion
from tests import factories


@dataclass
class Setup:
    """A published entry and a cataloguer of its department who may load it."""

    entry_id: int
    user_id: int
    actor: Actor


def make_entry(
    factory: sessionmaker[Session],
    items: list[tuple[str, str]],
    *,
    keys: tuple[str, ...] = (),
) -> Setup:
    with transaction(factory) as session:
        dept = factories.department(session)
        user = factories.user(session, roles=[Role.CATALOGUER], dept=dept)
        entry = factories.published_entry(session, dept=dept, items=items, keys=keys)
        return Setup(entry_id=entry.id, user_id=user.id, actor=factories.actor(user))


def add_source(
    factory: sessionmaker[Session],
    setup: Setup,
    kind: SourceKind,
    config: dict[str, Any],
    *,
    secret: str | None = None,
    schedule: str | None = None,
    mapping: dict[str, str] | None = None,
) -> int:
    with transaction(factory) as session:
        source = create_source(
            session,
            actor=setup.actor,
            entry=session.get_one(CatalogEntry, setup.entry_id),
            name="测试来源",
            kind=kind,
            config=config,
            secret=secret,
            schedule=schedule,
            mapping=mapping,
        )
        return source.id


def load(factory: sessionmaker[Session], setup: Setup, source_id: int) -> LoadRun:
    """Queue a load of the source on demand and run it inline; the finished run."""
    with transaction(factory) as session:
        run = queue_load(
            session,
            actor=setup.actor,
            entry=session.get_one(CatalogEntry, setup.entry_id),
            source=session.get_one(Source, source_id),
        )
        run_id = run.id
    InlineRunner(factory).submit(run_id)
    return get_run(factory, run_id)


def get_run(factory: sessionmaker[Session], run_id: int) -> LoadRun:
    with transaction(factory) as session:
        return session.get_one(LoadRun, run_id)


def get_source(factory: sessionmaker[Session], source_id: int) -> Source:
    with transaction(factory) as session:
        return session.get_one(Source, source_id)


def served(factory: sessionmaker[Session], entry_id: int) -> DatasetVersion:
    with transaction(factory) as session:
        return versions.current_version(session, entry_id)


def rows(factory: sessionmaker[Session], entry_id: int, order: str = "1") -> list[tuple[Any, ...]]:
    """The served version's rows, as typed values, in ``order``."""
    path = storage.resolve(served(factory, entry_id).path) / storage.DATA_FILE
    with duckdb.connect() as con:
        sql = f"SELECT * FROM read_parquet('{path}') ORDER BY {order}"  # noqa: S608 - the test's own
        return con.execute(sql).fetchall()


# Loopback HTTP ---------------------------------------------------------------------------------


@dataclass
class Seen:
    """A request the test server received."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-encoded unless bytes or str
    content_type: str = "application/json"
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Server:
    url: str
    seen: list[Seen] = field(default_factory=list)


Handler = Callable[[Seen], Reply]


@contextmanager
def serve(handler: Handler) -> Iterator[Server]:
    """An HTTP server on 127.0.0.1 answering every GET/POST with ``handler``."""
    stop = threading.Event()
    server_info = Server(url="")

    class Handle(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            parts = urlsplit(self.path)
            seen = Seen(
                path=parts.path,
                query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                headers={k.lower(): v for k, v in self.headers.items()},
            )
            server_info.seen.append(seen)
            reply = handler(seen)
            if reply.delay:
                stop.wait(reply.delay)
            body = reply.body
            if not isinstance(body, bytes):
                body = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the client gave up (a timeout test)
                pass

        do_GET = do_POST = _answer  # noqa: N815 - http.server's naming

        def log_message(self, format: str, *args: Any) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
    httpd.daemon_threads = True
    server_info.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server_info
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
