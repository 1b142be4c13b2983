"""Loads run in threads and in other processes, so these tests use a database of their own per
module (not the rolled-back transaction) and a data folder of their own per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.db import make_engine, make_sessionmaker, transaction
from kuaishu.migrate import upgrade
from kuaishu.settings import get_settings
from tests import factories
from tests.conftest import fresh_database_url


@pytest.fixture(scope="module")
def load_engine(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    engine = make_engine(fresh_database_url(backend, request.module.__name__.rsplit(".", 1)[-1]))
    upgrade(engine)
    # The sources these tests read are local servers and SQLite files in the tests' folders:
    # allowed explicitly, as an operator would allow a department's 前置机.
    with transaction(make_sessionmaker(engine)) as session:
        factories.allow_loopback(session, tmp_path_factory.getbasetemp())
    yield engine
    engine.dispose()


@pytest.fixture
def factory(load_engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(load_engine)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Versions and runs of this test only (entry ids repeat across backends)."""
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setattr(get_settings(), "data_dir", folder)
    return folder
