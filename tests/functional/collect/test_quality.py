"""Every load leaves a quality report on its version: on the real covid sample its figures equal
counts made independently from the file, and the placeholders and zero values are reported."""

from __future__ import annotations

import csv

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.db import transaction
from tests import factories as f
from tests.functional.collect.conftest import API, Staff, load, ok
from tests.samples import sample, uses

COVID = sample("covid_daily_24k.csv")
ITEMS = [
    ("date", "D"),
    ("country", "C"),
    ("countryCode", "C"),
    ("province", "C"),
    ("provinceCode", "C"),
    ("city", "C"),
    ("cityCode", "C"),
    ("confirmed", "I"),
    ("suspected", "I"),
    ("cured", "I"),
    ("dead", "I"),
]


@uses(COVID)
def test_covid_quality_report_matches_independent_counts(
    http: TestClient, staff: Staff, factory: sessionmaker[Session]
) -> None:
    with transaction(factory) as db:
        entry = f.published_entry(
            db, dept=db.merge(staff.department), name="疫情每日统计（质量）", items=ITEMS
        )
        db.flush()
        db.expunge_all()
    run = load(http, entry.id, COVID.read_bytes(), staff.keys["cataloguer"], filename=COVID.name)
    assert run["status"] == "succeeded", run
    [version] = ok(http.get(f"{API}/entries/{entry.id}/versions", headers=staff.keys["member"]))
    report = version["quality"]
    with COVID.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert report["rows"] == len(rows) == 24_159
    columns = {c["name"]: c for c in report["columns"]}
    for name in ("city", "cityCode", "province", "provinceCode"):
        empty = sum(1 for r in rows if not r[name].strip())
        assert columns[name]["nulls"] == empty, name
        assert columns[name]["distinct"] == len({r[name] for r in rows if r[name].strip()}), name
    confirmed = [int(r["confirmed"]) for r in rows]
    assert (columns["confirmed"]["min"], columns["confirmed"]["max"]) == (
        min(confirmed),
        max(confirmed),
    )
    assert columns["confirmed"]["zeros"] == confirmed.count(0)
    assert columns["dead"]["zeros"] == sum(1 for r in rows if int(r["dead"]) == 0)
    filled = sum(len(rows) - columns[c]["nulls"] for c in columns)
    assert report["dimensions"]["completeness"] == pytest.approx(
        filled / (len(rows) * len(ITEMS)), abs=1e-3
    )
    assert 0 <= report["score"] <= 100


def test_placeholders_and_zero_ages_are_reported(
    http: TestClient, staff: Staff, factory: sessionmaker[Session]
) -> None:
    with transaction(factory) as db:
        entry = f.published_entry(
            db,
            dept=db.merge(staff.department),
            name="人员年龄",
            items=[("姓名", "C"), ("年龄", "I")],
        )
        db.flush()
        db.expunge_all()
    body = "姓名,年龄\n张三,0\n李四,/\n/,0\n暂无,35\n王五,40\n".encode()
    run = load(http, entry.id, body, staff.keys["cataloguer"])
    # "/" in a number column is not a number: that row is quarantined, not silently nulled.
    assert (run["rows_loaded"], run["rows_quarantined"]) == (4, 1)
    [version] = ok(http.get(f"{API}/entries/{entry.id}/versions", headers=staff.keys["member"]))
    columns = {c["name"]: c for c in version["quality"]["columns"]}
    assert columns["姓名"]["placeholders"] == 2  # "/" and "暂无" as names
    assert columns["年龄"]["zeros"] == 2
