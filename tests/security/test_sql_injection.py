"""Issue 10, class 1: user-supplied text never reaches SQL as SQL.

The reported attack: a cataloguer put an expression into a shuffle / noise / date-shift
``row_key``; it was pasted into DuckDB SQL, read ``/etc/passwd`` and the master key, wrote a file
with ``COPY … TO``, and ran again inside every consumer's read. Now a row key is a data item of
the entry (or ``rowid``), checked when the policy is saved and quoted as an identifier; and the
DuckDB connections behind reads reach no file but their version's, so even an expression that got
through would read and write nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlalchemy import Engine, select

from kuaishu.accounts.roles import Role
from kuaishu.clean.models import MaskingPolicy
from kuaishu.clean.sqltext import literal
from kuaishu.db import transaction
from kuaishu.settings import get_settings
from kuaishu.store import changes, engine, storage
from kuaishu.store.models import Dataset, DatasetVersion
from kuaishu.store.plan import Rendered
from tests import factories as f
from tests.functional.store.conftest import (
    Served,
    load_engine,
    make_served,
    module_data_dir,
    person,
)
from tests.http import ok, refused

__all__ = ["load_engine", "module_data_dir"]

CANARY = Path("/tmp/pwned.csv")  # noqa: S108 - the file the reported attack wrote
PASSWD = "root:x:0:0"
ROW_KEYS = [
    "rowid, (SELECT content FROM read_text('/etc/passwd'))",
    "(SELECT count(*) FROM read_csv('/etc/passwd'))",
    f"rowid); COPY (SELECT 1) TO '{CANARY}'; --",
    "(SELECT content FROM read_text('../../keys/master.key'))",
    "getenv('HOME')",
    '"; DROP TABLE data; --',
]


@pytest.fixture(scope="module")
def people(load_engine: Engine, module_data_dir: Path) -> Iterator[Served]:
    rows = [person(i) for i in range(1, 41)]
    for served in make_served(
        load_engine, module_data_dir, rows, "户籍人口（注入测试）", sensitive=("姓名",)
    ):
        with transaction(served.factory) as db:
            dept = f.department(db, name="省人社厅")
            consumer = f.user(db, roles=[Role.CONSUMER], dept=dept)
            served.base = f.api_key(db, consumer)  # the consumer's key, for a grant read
        yield served


@pytest.fixture(autouse=True)
def no_canary() -> Iterator[None]:
    CANARY.unlink(missing_ok=True)
    yield
    assert not CANARY.exists(), "a hostile expression wrote a file outside the version"


def _policy(people: Served, row_key: str) -> Any:
    return people.client.put(
        f"/api/v1/clean/entries/{people.entry_id}/masking",
        json={
            "rules": [
                {
                    "item": item,
                    "channel": "share",
                    "method": method,
                    "params": {**extra, "row_key": row_key},
                }
                for item, method, extra in (
                    ("姓名", "shuffle", {}),
                    ("人口", "noise", {"percent": 5}),
                    ("出生日期", "date_shift", {"days": 30}),
                )
            ],
            "note": "按行键打乱",
        },
        headers=people.member,
    )


def _consumer_read(people: Served) -> Any:
    consumer = {"X-API-Key": people.base}
    applied = people.client.post(
        f"/api/v1/share/entries/{people.entry_id}/applications",
        json={"purpose": "待遇资格核验", "methods": ["query"]},
        headers=consumer,
    )
    if applied.status_code == 409:  # granted by an earlier case: one grant in force per entry
        grant = refused(applied, 409, "grant_exists")["details"]["grant"]
    else:
        grant = ok(applied, 201)["grant"]["id"]
    return people.client.get(
        f"/api/v1/share/grants/{grant}/query",
        params={"shape": "objects", "limit": 40},
        headers={**consumer, "X-Purpose": "%E6%A0%B8%E9%AA%8C"},
    )


@pytest.mark.parametrize("row_key", ROW_KEYS)
def test_an_expression_as_row_key_is_refused_when_saved(people: Served, row_key: str) -> None:
    url = f"/api/v1/clean/entries/{people.entry_id}/masking"
    before = ok(people.client.get(url, headers=people.member))
    error = refused(_policy(people, row_key), 422, "bad_masking_policy")
    assert [d["field"] for d in error["details"]] == [
        f"rules[{i}].params.row_key" for i in range(3)
    ]
    assert {d["code"] for d in error["details"]} == {"unknown_row_key"}
    assert (
        "row_key" in error["details"][0]["message"] and "信息项" in error["details"][0]["message"]
    )
    assert ok(people.client.get(url, headers=people.member)) == before  # nothing stored
    # The consumer's read runs no part of it.
    read = _consumer_read(people)
    assert read.status_code == 200 and PASSWD not in read.text


def test_a_data_item_as_row_key_shuffles_by_that_item(people: Served) -> None:
    ok(_policy(people, "身份证号"))
    read = ok(_consumer_read(people))
    names = sorted(r["姓名"] for r in read["rows"])
    assert names == sorted(p["姓名"] for p in people.rows)  # a permutation of the names
    by_id = {r["身份证号"]: r["姓名"] for r in read["rows"]}
    assert sum(by_id[p["身份证号"]] == p["姓名"] for p in people.rows) < len(people.rows) // 2


def test_a_hostile_row_key_stored_before_the_check_still_reads_nothing(people: Served) -> None:
    """A policy written before this check, or straight into the database: the row key is quoted
    as a name, so the expression is never run, and the locked connection could not run it."""
    with transaction(people.factory) as db:
        last = db.scalar(
            select(MaskingPolicy)
            .where(MaskingPolicy.entry_id == people.entry_id)
            .order_by(MaskingPolicy.number.desc())
        )
        db.add(
            MaskingPolicy(
                entry_id=people.entry_id,
                number=(last.number if last else 0) + 1,
                rules=[
                    {
                        "item": "姓名",
                        "channel": "share",
                        "method": "shuffle",
                        "params": {"row_key": f"rowid); COPY (SELECT 1) TO '{CANARY}'; --"},
                    }
                ],
                note="绕过校验写入",
                quasi_identifiers=[],
            )
        )
    read = people.client.get(
        f"/api/v1/data/{people.code}/query",
        params={"channel": "share", "limit": 5},
        headers=people.member,
    )
    shown = ok(read)["rows"]
    assert [row[1] for row in shown] == [None] * 5  # a broken stored rule hides the item
    assert PASSWD not in read.text
    with transaction(people.factory) as db:  # leave the entry as the other tests expect
        db.add(
            MaskingPolicy(
                entry_id=people.entry_id,
                number=(last.number if last else 0) + 2,
                rules=[],
                note="恢复",
                quasi_identifiers=[],
            )
        )


# The locked DuckDB connections, called directly with hostile SQL --------------------------------

HOSTILE = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT content FROM read_text('/etc/passwd')",
    f"COPY (SELECT 1) TO '{CANARY}'",
    "SELECT * FROM glob('/etc/*')",
    "ATTACH '/tmp/pwned.duckdb' AS pwned",
    "INSTALL httpfs",
    "LOAD httpfs",
]
UNLOCK = [
    "SET enable_external_access = true",
    "SET allowed_directories = ['/']",
    "SET allowed_paths = ['/etc/passwd']",
    "RESET lock_configuration",
]


def _folders(people: Served) -> list[str]:
    with people.factory() as db:
        dataset = db.get(Dataset, people.entry_id)
        assert dataset is not None and dataset.current_version_id is not None
        current = db.get(DatasetVersion, dataset.current_version_id)
        assert current is not None
        return [current.path]


def _refused(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    with pytest.raises(duckdb.Error):
        con.execute(sql).fetchall()


@pytest.mark.parametrize("sql", HOSTILE + UNLOCK)
def test_a_serving_connection_reaches_no_file_outside_its_version(people: Served, sql: str) -> None:
    folder = _folders(people)[0]
    cur = engine.cursor(folder)
    try:
        assert cur.execute("SELECT count(*) FROM data").fetchone() == (40,)
        _refused(cur, sql)
        # Not even the version's own Parquet copy, nor any other file of the data folder.
        data_file = storage.resolve(folder) / storage.DATA_FILE
        _refused(cur, f"SELECT * FROM read_parquet({literal(str(data_file))})")  # noqa: S608
        _refused(cur, f"SELECT * FROM glob({literal(f'{get_settings().data_dir}/*')})")  # noqa: S608
    finally:
        cur.close()


@pytest.mark.parametrize("sql", HOSTILE)
def test_a_change_reader_reaches_only_the_files_it_was_given(people: Served, sql: str) -> None:
    data_file = storage.resolve(_folders(people)[0]) / storage.DATA_FILE
    con = changes.connect([data_file])
    try:
        read = f"SELECT count(*) FROM read_parquet({literal(str(data_file))})"  # noqa: S608
        assert con.execute(read).fetchone() == (40,)
        _refused(con, sql)
        _refused(con, "SET enable_external_access = true")
    finally:
        con.close()


def test_a_download_writes_only_into_its_own_folder(people: Served, tmp_path: Path) -> None:
    folder = _folders(people)[0]
    target = tmp_path / "export" / "out.csv"
    target.parent.mkdir()
    for sql in ("SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM glob('/etc/*')"):
        with pytest.raises(duckdb.Error):
            engine.copy_to(folder, Rendered(sql), target, "FORMAT csv")
    assert engine.copy_to(folder, Rendered("SELECT * FROM data"), target, "FORMAT csv") == 40


def test_a_load_connection_cannot_widen_what_it_may_reach(tmp_path: Path) -> None:
    """Loads are confined without locking every setting (indexing raises the memory limit):
    external access, once off, cannot be turned back on, nor the allowed list widened."""
    staging = tmp_path / "staging"
    staging.mkdir()
    con = duckdb.connect(str(staging / "work.duckdb"))
    try:
        engine.confine(con, [staging], lock=False)
        con.execute(f"COPY (SELECT 1 AS a) TO '{staging / 'ok.parquet'}' (FORMAT parquet)")
        for sql in HOSTILE + UNLOCK[:3]:
            _refused(con, sql)
        con.execute("SET memory_limit = '256MB'")  # what a load still may change
    finally:
        con.close()
