"""Test fixtures: every database test runs on SQLite and on PostgreSQL, each in a rolled-back
transaction (SAVEPOINTs let the code under test commit freely)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Settings are read once per process: point them at a scratch folder before anything imports them.
_SCRATCH = Path(tempfile.mkdtemp(prefix="kuaishu-test-"))
os.environ.setdefault("KUAISHU_DATA_DIR", str(_SCRATCH / "data"))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import Connection, Engine, make_url, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from kuaishu.db import make_engine  # noqa: E402
from kuaishu.migrate import upgrade  # noqa: E402
from kuaishu.web.app import create_app, load_domains  # noqa: E402

load_domains()

from tests.samples import check_present  # noqa: E402

POSTGRES_URL = os.environ.get("KUAISHU_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def fresh_database_url(backend: str, name: str) -> str:
    """A new, empty database for ``backend``; migrations are the caller's to run."""
    if backend == "sqlite":
        path = _SCRATCH / f"{name}-{_worker()}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    url = make_url(POSTGRES_URL)
    database = f"{url.database}_{name}_{_worker()}".lower()
    admin = make_engine(url.render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    admin.dispose()
    return url.set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def engine(backend: str) -> Iterator[Engine]:
    """A migrated database per backend, shared by the whole run."""
    eng = make_engine(fresh_database_url(backend, "suite"))
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    return sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session inside the test's transaction; everything is rolled back afterwards."""
    session = session_factory()
    yield session
    session.close()


@pytest.fixture
def app(engine: Engine, session_factory: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    application = create_app(engine=engine)
    application.state.sessionmaker = session_factory
    return application


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture(autouse=True)
def _shipped_samples(request: pytest.FixtureRequest) -> None:
    """A test marked ``samples`` (tests/samples.py) fails, not skips, when a file it reads is gone."""
    check_present(request.node)
