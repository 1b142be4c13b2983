"""Database sources (前置机) against a real SQLite file and a real PostgreSQL database: full loads,
incremental loads that take only the new rows, credentials, and the errors a department meets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.collect.connectors import validate_config
from kuaishu.collect.enums import RunStatus, SourceKind
from kuaishu.errors import ValidationFailed
from tests.conftest import POSTGRES_URL, fresh_database_url
from tests.unit.collect.sources_support import (
    add_source,
    get_source,
    load,
    make_entry,
    rows,
    served,
)

ITEMS = [
    ("编号", "I"),
    ("单位代码", "C"),
    ("名称", "C"),
    ("成立日期", "D"),
    ("注册资本", "Y"),
    ("在营", "L"),
    ("评分", "N"),
]
SOURCE_DBS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]

CREATE = """
CREATE TABLE companies (
    id INTEGER PRIMARY KEY,
    code VARCHAR(20),
    name VARCHAR(100),
    founded DATE,
    capital NUMERIC(12, 2),
    active BOOLEAN,
    score DOUBLE PRECISION
)
"""
MAPPING = {
    "编号": "id",
    "单位代码": "code",
    "名称": "name",
    "成立日期": "founded",
    "注册资本": "capital",
    "在营": "active",
    "评分": "score",
}


def _insert(engine: Engine, first: int, last: int) -> None:
    with engine.begin() as conn:
        for n in range(first, last + 1):
            conn.execute(
                text(
                    "INSERT INTO companies VALUES (:id, :code, :name, :founded, :capital, :active, :score)"
                ),
                {
                    "id": n,
                    "code": f"{n:06d}",
                    "name": f"企业{n}",
                    "founded": date(2020, 1, n).isoformat(),
                    "capital": str(Decimal("1000.50") * n),
                    "active": n % 2 == 0,
                    "score": float(n),
                },
            )


@pytest.fixture(params=SOURCE_DBS)
def source_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """A department's database with a ``companies`` table of 3 rows: (URL, engine)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'department.db'}"
    else:
        url = fresh_database_url("postgresql", "department_source")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(CREATE))
    _insert(engine, 1, 3)
    yield url, engine
    engine.dispose()


def test_full_load_converts_every_type(
    factory: sessionmaker[Session], data_dir: Path, source_db: tuple[str, Engine]
) -> None:
    url, _engine = source_db
    setup = make_entry(factory, ITEMS)
    source_id = add_source(
        factory,
        setup,
        SourceKind.DATABASE,
        {"url": url, "table": "companies", "batch_rows": 2},
        mapping=MAPPING,
    )
    run = load(factory, setup, source_id)
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert (run.rows_read, run.rows_loaded, run.rows_quarantined) == (3, 3, 0)
    assert rows(factory, setup.entry_id, "1")[0] == (
        1,
        "000001",  # a code stays text with its zeros
        "企业1",
        date(2020, 1, 1),
        Decimal("1000.50"),
        False,
        1.0,
    )


def test_incremental_load_takes_only_new_rows(
    factory: sessionmaker[Session], data_dir: Path, source_db: tuple[str, Engine]
) -> None:
    url, engine = source_db
    setup = make_entry(factory, ITEMS)
    config = {"url": url, "table": "companies", "incremental_column": "id", "batch_rows": 2}
    source_id = add_source(factory, setup, SourceKind.DATABASE, config, mapping=MAPPING)

    first = load(factory, setup, source_id)
    assert first.status == RunStatus.SUCCEEDED, first.error_message
    assert get_source(factory, source_id).cursor == "3"

    _insert(engine, 4, 5)
    with engine.begin() as conn:  # an old row changed without its id growing: not taken again
        conn.execute(text("UPDATE companies SET name = '改名' WHERE id = 1"))
    second = load(factory, setup, source_id)
    assert second.status == RunStatus.SUCCEEDED, second.error_message
    assert get_source(factory, source_id).cursor == "5"
    version = served(factory, setup.entry_id)
    assert version.number == 2 and version.row_count == 5
    assert version.lineage["incremental"]["new_rows"] == 2
    assert [(r[0], r[2]) for r in rows(factory, setup.entry_id, "1")] == [
        (1, "企业1"),
        (2, "企业2"),
        (3, "企业3"),
        (4, "企业4"),
        (5, "企业5"),
    ]
    assert any("新取 2 条" in line["message"] for line in second.log)

    third = load(factory, setup, source_id)
    assert third.status == RunStatus.FAILED
    assert third.error_code == "no_new_rows"
    assert served(factory, setup.entry_id).number == 2
    assert get_source(factory, source_id).cursor == "5"


def test_incremental_by_update_time_replaces_rows_by_key(
    factory: sessionmaker[Session], data_dir: Path, source_db: tuple[str, Engine]
) -> None:
    url, engine = source_db
    # A real TIMESTAMP on PostgreSQL; SQLite keeps such times as text.
    kind = "TIMESTAMP" if engine.dialect.name == "postgresql" else "VARCHAR(30)"
    with engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE companies ADD COLUMN updated {kind}"))
        conn.execute(
            text(f"UPDATE companies SET updated = CAST('2024-05-01 08:00:0' || id AS {kind})")  # noqa: S608
        )
    setup = make_entry(factory, [("编号", "I"), ("名称", "C")], keys=("编号",))
    source_id = add_source(
        factory,
        setup,
        SourceKind.DATABASE,
        {
            "url": url,
            "query": "SELECT id, name, updated FROM companies",
            "incremental_column": "updated",
        },
        mapping={"编号": "id", "名称": "name"},
    )
    assert load(factory, setup, source_id).status == RunStatus.SUCCEEDED
    assert get_source(factory, source_id).cursor == "2024-05-01 08:00:03"

    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE companies SET name = '新名称', updated = '2024-05-02 09:00:00' WHERE id = 2"
            )
        )
    run = load(factory, setup, source_id)
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert rows(factory, setup.entry_id, "1") == [(1, "企业1"), (2, "新名称"), (3, "企业3")]
    assert served(factory, setup.entry_id).lineage["incremental"]["replaced"] == 1


@pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL")
def test_password_from_the_sealed_secret(factory: sessionmaker[Session], data_dir: Path) -> None:
    url = make_url(fresh_database_url("postgresql", "department_secret"))
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(CREATE))
    _insert(engine, 1, 2)
    engine.dispose()
    password = str(url.password)
    slot = url.render_as_string(hide_password=False).replace(f":{password}@", ":{password}@")
    setup = make_entry(factory, ITEMS)

    placeholder = add_source(
        factory,
        setup,
        SourceKind.DATABASE,
        {"url": slot, "table": "companies"},
        secret=password,
        mapping=MAPPING,
    )
    assert load(factory, setup, placeholder).status == RunStatus.SUCCEEDED

    bare = slot.replace(":{password}@", "@")
    wrong = add_source(
        factory,
        setup,
        SourceKind.DATABASE,
        {"url": bare, "table": "companies"},
        secret="wrong-pass",
        mapping=MAPPING,
    )
    failed = load(factory, setup, wrong)
    assert failed.status == RunStatus.FAILED
    assert failed.error_code == "source_unreachable"
    assert "wrong-pass" not in (failed.error_message or "")
    assert str(url.host) in (failed.error_message or "")
    assert served(factory, setup.entry_id).number == 1


def test_missing_table_is_named(
    factory: sessionmaker[Session], data_dir: Path, source_db: tuple[str, Engine]
) -> None:
    url, _engine = source_db
    setup = make_entry(factory, ITEMS)
    source_id = add_source(
        factory, setup, SourceKind.DATABASE, {"url": url, "table": "no_such_table"}
    )
    run = load(factory, setup, source_id)
    assert run.status == RunStatus.FAILED
    assert run.error_code == "source_query_failed"
    assert "no_such_table" in (run.error_message or "")


def test_sqlite_source_is_opened_read_only(
    factory: sessionmaker[Session], data_dir: Path, tmp_path: Path
) -> None:
    setup = make_entry(factory, ITEMS)
    missing = tmp_path / "absent.db"
    source_id = add_source(
        factory, setup, SourceKind.DATABASE, {"url": f"sqlite:///{missing}", "table": "t"}
    )
    run = load(factory, setup, source_id)
    assert run.error_code == "source_unreachable"
    assert not missing.exists()  # never created by trying to read it


@pytest.mark.parametrize(
    ("config", "code"),
    [
        ({"url": "sqlite:///x.db"}, "source_table_or_query"),
        ({"url": "sqlite:///x.db", "table": "a", "query": "SELECT 1"}, "source_table_or_query"),
        ({"url": "sqlite:///x.db", "query": "DELETE FROM a"}, "source_query_not_select"),
        ({"url": "sqlite:///x.db", "query": "SELECT 1; DROP TABLE a"}, "source_query_not_select"),
        ({"url": "not a url", "table": "a"}, "source_url_invalid"),
    ],
)
def test_settings_a_database_source_cannot_run_with(config: dict[str, str], code: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_config(SourceKind.DATABASE, config)
    assert caught.value.code == code


def test_the_platforms_own_files_are_not_a_source(data_dir: Path) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_config(
            SourceKind.DATABASE, {"url": f"sqlite:///{data_dir / 'kuaishu.db'}", "table": "users"}
        )
    assert caught.value.code == "source_forbidden"
