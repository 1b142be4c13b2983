"""Values are never changed silently: a decimal given to an integer or money item, and a key given
twice, go to the quarantine with a reason instead of being rounded or served twice. Counts are made
independently from the source file with the csv module."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.catalog.models import CatalogEntry
from kuaishu.clean.services import set_rules
from kuaishu.collect.enums import RunStatus, SourceKind
from kuaishu.collect.jobs import InlineRunner
from kuaishu.collect.models import LoadRun
from kuaishu.collect.services import queue_load
from kuaishu.db import transaction
from kuaishu.errors import AppError
from kuaishu.store import services as versions
from kuaishu.store import storage
from tests import factories
from tests.samples import sample, uses
from tests.unit.collect.sources_support import (
    Reply,
    Seen,
    Setup,
    add_source,
    get_run,
    load,
    make_entry,
    rows,
    serve,
)

STATIONS = sample("cnemc_stations_gbk.csv")


def load_upload(factory: sessionmaker[Session], setup: Setup, path: Path) -> LoadRun:
    """Load a copy of the file ``path`` (an upload is moved into its run) into the entry through
    the real pipeline; the finished run."""
    upload = storage.data_root() / "uploads" / path.name
    upload.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, upload)
    with transaction(factory) as session:
        run = queue_load(
            session,
            actor=setup.actor,
            entry=session.get_one(CatalogEntry, setup.entry_id),
            upload=upload,
            filename=path.name,
        )
        run_id = run.id
    InlineRunner(factory).submit(run_id)
    return get_run(factory, run_id)


def quarantined(run: LoadRun) -> list[dict[str, Any]]:
    """The run's quarantined rows: source line, reason and the source columns as read."""
    path = storage.run_dir(run.id) / storage.QUARANTINE_FILE
    if not path.exists():
        return []
    with duckdb.connect() as con:
        cursor = con.execute(f"SELECT * FROM read_parquet('{path}') ORDER BY _line")  # noqa: S608
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def has_places_past(text: str, places: int) -> bool:
    """Whether the decimal text has a nonzero digit past ``places`` decimal places."""
    fraction = text.strip().partition(".")[2]
    return any(d != "0" for d in fraction[places:])


@uses(STATIONS)
def test_decimal_longitudes_into_an_integer_item_are_quarantined_not_rounded(
    factory: sessionmaker[Session], data_dir: Path
) -> None:
    with STATIONS.open(encoding="gbk", newline="") as fh:
        source = list(csv.DictReader(fh))
    fractional = {
        line: row for line, row in enumerate(source, start=2) if has_places_past(row["经度"], 0)
    }
    assert 0 < len(fractional) < len(source)
    setup = make_entry(factory, [("监测点编码", "C"), ("经度", "I"), ("纬度", "N")])
    run = load_upload(factory, setup, STATIONS)
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert run.rows_read == len(source)
    assert run.rows_quarantined == len(fractional)
    assert run.rows_loaded == len(source) - len(fractional)
    bad = quarantined(run)
    assert {r["_line"] for r in bad} == set(fractional)
    for row in bad:
        text = fractional[row["_line"]]["经度"]
        assert row["经度"] == text
        assert f"信息项“经度”（源列“经度”）的值“{text}”会被舍入" in row["_reason"]
    # What is served is the file's whole numbers, unchanged.
    served = {r[0]: r[1] for r in rows(factory, setup.entry_id)}
    whole = {
        r["监测点编码"]: int(r["经度"]) if r["经度"].strip() else None
        for r in source
        if not has_places_past(r["经度"], 0)
    }
    assert served == whole


def test_money_with_three_decimals_is_quarantined_and_two_decimals_kept_exactly(
    factory: sessionmaker[Session], data_dir: Path, tmp_path: Path
) -> None:
    amounts = ["12.345", "12.34", "0.10", "1,234.50", "7", "99.999", "3.120", "-0.005", "2.5e0"]
    path = tmp_path / "fees.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["编号", "金额"])
        writer.writerows([[str(i), amount] for i, amount in enumerate(amounts, start=1)])
    with path.open(encoding="utf-8", newline="") as fh:
        source = list(csv.DictReader(fh))
    expected_bad = {
        int(r["编号"]) for r in source if has_places_past(r["金额"].replace(",", ""), 2)
    }
    assert expected_bad == {1, 6, 8}
    setup = make_entry(factory, [("编号", "I"), ("金额", "Y")])
    run = load_upload(factory, setup, path)
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert (run.rows_loaded, run.rows_quarantined) == (len(source) - 3, 3)
    bad = quarantined(run)
    assert {int(r["编号"]) for r in bad} == expected_bad
    for row in bad:
        assert re.search(
            r"信息项“金额”（源列“金额”）的值“.+”会被舍入：金额最多 2 位小数", row["_reason"]
        )
    kept = {number: str(amount) for number, amount in rows(factory, setup.entry_id)}
    assert kept == {2: "12.34", 3: "0.10", 4: "1234.50", 5: "7.00", 7: "3.12", 9: "2.50"}


def _stations() -> list[dict[str, str]]:
    with STATIONS.open(encoding="gbk", newline="") as fh:
        return list(csv.DictReader(fh))


@uses(STATIONS)
def test_duplicate_keys_are_quarantined_with_the_lines_they_share(
    factory: sessionmaker[Session], data_dir: Path
) -> None:
    source = _stations()
    lines: dict[str, list[int]] = {}
    for line, row in enumerate(source, start=2):
        lines.setdefault(row["监测点名称"].strip(), []).append(line)
    repeated = {name: found for name, found in lines.items() if len(found) > 1}
    assert repeated and "" not in lines
    setup = make_entry(factory, [("监测点名称", "C"), ("城市", "C")], keys=("监测点名称",))
    run = load_upload(factory, setup, STATIONS)
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    expected = sum(len(found) for found in repeated.values())
    assert (run.rows_loaded, run.rows_quarantined) == (len(source) - expected, expected)
    bad = quarantined(run)
    assert len(bad) == expected
    for row in bad:
        name = row["监测点名称"]
        found = repeated[name]
        assert row["_line"] in found
        shown = "、".join(str(n) for n in found[:5]) + (" 等" if len(found) > 5 else "")
        assert row["_reason"] == (
            f"关键字段（监测点名称）的值“{name}”重复，共 {len(found)} 行（第 {shown} 行），"
            "去重规则未指明保留哪一行"
        )
    served_names = [r[0] for r in rows(factory, setup.entry_id)]
    assert len(served_names) == len(set(served_names)) == len(lines) - len(repeated)


@uses(STATIONS)
def test_a_dedupe_rule_on_the_key_says_which_duplicate_is_served(
    factory: sessionmaker[Session], data_dir: Path
) -> None:
    source = _stations()
    first: dict[str, str] = {}
    for row in source:
        first.setdefault(row["监测点名称"].strip(), row["城市"].strip())
    setup = make_entry(factory, [("监测点名称", "C"), ("城市", "C")], keys=("监测点名称",))
    with transaction(factory) as session:
        set_rules(
            session,
            actor=factories.ROOT,
            entry=session.get_one(CatalogEntry, setup.entry_id),
            rules=[{"kind": "dedupe", "by": ["监测点名称"], "keep": "first"}],
        )
    run = load_upload(factory, setup, STATIONS)
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert run.rows_loaded == len(first)
    assert run.rows_quarantined == 0
    assert dict(rows(factory, setup.entry_id)) == first


PEOPLE = [{"编号": i, "单位代码": f"{i:06d}"} for i in range(1, 8)]


def test_an_api_that_repeats_its_page_is_stopped_not_loaded_again(
    factory: sessionmaker[Session], data_dir: Path
) -> None:
    def ignores_paging(_seen: Seen) -> Reply:
        return Reply(body={"data": PEOPLE[:3]})

    setup = make_entry(factory, [("编号", "I"), ("单位代码", "C")])
    with serve(ignores_paging) as server:
        paging = {"type": "page", "size": 3}
        config = {"url": server.url, "records_path": "data", "paging": paging, "max_pages": 5}
        source_id = add_source(factory, setup, SourceKind.HTTP_API, config)
        run = load(factory, setup, source_id)
    assert run.status == RunStatus.FAILED
    assert run.error_code == "source_page_repeated"
    assert "第 2 页返回的记录与第 1 页完全相同" in (run.error_message or "")
    assert len(server.seen) == 2  # stopped at the first repeat, not at max_pages
    assert run.rows_loaded in (None, 0)
    with transaction(factory) as session, pytest.raises(AppError):
        versions.current_version(session, setup.entry_id)


def test_an_api_pages_until_a_short_page_when_pages_differ(
    factory: sessionmaker[Session], data_dir: Path
) -> None:
    def pages(seen: Seen) -> Reply:
        start = (int(seen.query["page"]) - 1) * 3
        return Reply(body={"data": PEOPLE[start : start + 3]})

    setup = make_entry(factory, [("编号", "I"), ("单位代码", "C")])
    with serve(pages) as server:
        config = {"url": server.url, "records_path": "data", "paging": {"type": "page", "size": 3}}
        run = load(factory, setup, add_source(factory, setup, SourceKind.HTTP_API, config))
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert rows(factory, setup.entry_id) == [(r["编号"], r["单位代码"]) for r in PEOPLE]


def test_the_api_connector_finds_the_records_list_by_itself(
    factory: sessionmaker[Session], data_dir: Path
) -> None:
    body = {"code": 0, "msg": "成功", "data": {"total": 7, "tags": ["a"], "rows": PEOPLE}}
    setup = make_entry(factory, [("编号", "I"), ("单位代码", "C")])
    with serve(lambda _seen: Reply(body=body)) as server:
        run = load(
            factory, setup, add_source(factory, setup, SourceKind.HTTP_API, {"url": server.url})
        )
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert rows(factory, setup.entry_id) == [(r["编号"], r["单位代码"]) for r in PEOPLE]
    assert any("data.rows" in line["message"] for line in run.log)
