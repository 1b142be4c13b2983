"""Cleaning rules in a load: text normalised, placeholders to NULL, values mapped, checks that send
rows to the quarantine with the rule's reason, duplicates removed by a stated rule — and totals
that always reconcile. Then the department fixes the quarantined rows and loads them again."""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.catalog.models import CatalogEntry
from kuaishu.db import transaction
from tests import factories as f
from tests.functional.collect.conftest import API, Staff, finished, load, ok, refused

ITEMS = [
    ("身份证号", "C"),
    ("姓名", "C"),
    ("性别", "C"),
    ("出生日期", "D"),
    ("年龄", "I"),
    ("地区代码", "C"),
    ("备注", "C"),
]
RULES: list[dict[str, Any]] = [
    {"kind": "normalise", "item": "*"},
    {"kind": "null_tokens", "item": "*", "tokens": ["/", "暂无", "-"]},
    {"kind": "map", "item": "性别", "values": {"男性": "男", "女性": "女", "1": "男", "2": "女"}},
    {"kind": "identifier", "item": "身份证号", "identifier": "citizen_id"},
    {"kind": "range", "item": "年龄", "min": 0, "max": 120},
    {"kind": "enum", "item": "性别", "values": ["男", "女"]},
    {"kind": "regex", "item": "地区代码", "pattern": "[0-9]{6}"},
    {"kind": "id_consistency", "id_item": "身份证号", "birth_item": "出生日期", "sex_item": "性别"},
    {"kind": "dedupe", "by": ["身份证号"], "keep": "first"},
]
HEADER = "身份证号,姓名,性别,出生日期,年龄,地区代码,备注\n"
ROWS = [
    "11010519491231002X,张　三,女性,1949年12月31日,７６,110105,/",  # full-width, mapped, placeholder
    "110105194912310029,李四,女,1949/12/31,76,110105,暂无",  # wrong check digit
    "110101199003070417,王五,男,1990-03-07,35,11010A,",  # region code fails regex
    "110101199003070513,赵六,女,1990-03-07,35,110101,",  # ID says male (1), column says 女
    "110101199003071612,钱七,1,1990-03-08,200,110101,",  # birth mismatch and age out of range
    "11010519491231002X,张三,女,1949-12-31,76,110105,重复",  # duplicate of row 1 by ID
    "110101199003070118,孙八,2,1990-03-07,35,110101,-",  # ID sex digit 1 = 男, mapped 2 = 女
    "110101199003070214,周九,男,1990-03-07,35,110101,好",  # clean
]


def _entry(factory: sessionmaker[Session], staff: Staff) -> CatalogEntry:
    with transaction(factory) as db:
        entry = f.published_entry(
            db,
            dept=db.merge(staff.department),
            name="户籍人员清洗",
            items=ITEMS,
            keys=("身份证号",),
        )
        db.flush()
        db.expunge_all()
    return entry


def _quarantine(
    http: TestClient, run: dict[str, Any], headers: dict[str, str]
) -> list[dict[str, str]]:
    body = http.get(str(run["quarantine_url"]), headers=headers)
    assert body.status_code == 200
    return list(csv.DictReader(io.StringIO(body.text)))


def test_rules_clean_check_and_reconcile(
    http: TestClient, staff: Staff, factory: sessionmaker[Session]
) -> None:
    entry = _entry(factory, staff)
    h = staff.keys["cataloguer"]
    saved = ok(
        http.put(f"/api/v1/clean/entries/{entry.id}/rules", json={"rules": RULES}, headers=h)
    )
    assert saved["number"] == 1
    run = load(http, entry.id, (HEADER + "\n".join(ROWS) + "\n").encode(), h, filename="户籍.csv")
    assert run["status"] == "succeeded", run
    # Nothing silently dropped: rows in = kept + quarantined + duplicates removed.
    assert (
        run["rows_read"],
        run["rows_loaded"],
        run["rows_quarantined"],
        run["rows_duplicate"],
    ) == (
        8,
        2,
        5,
        1,
    )
    set_aside = _quarantine(http, run, h)
    reasons = {row["身份证号"] + "|" + row["姓名"]: row["隔离原因"] for row in set_aside}
    assert "不是有效的公民身份号码（校验码不对）" in reasons["110105194912310029|李四"]
    assert "不符合格式要求" in reasons["110101199003070417|王五"]
    assert "性别与“性别”不一致" in reasons["110101199003070513|赵六"]
    both = reasons["110101199003071612|钱七"]
    assert "超出范围 0～120" in both or "出生日期与“出生日期”不一致" in both
    assert "性别与“性别”不一致" in reasons["110101199003070118|孙八"]
    assert reasons["11010519491231002X|张三"].startswith("重复记录（规则保留第 2 行）")

    code = quote(entry.code, safe="")
    rows = ok(http.get(f"/api/v1/data/{code}/query", params={"shape": "objects"}, headers=h))[
        "rows"
    ]
    first = next(r for r in rows if r["身份证号"] == "11010519491231002X")
    # Full-width digits and the ideographic space normalised; 女性 mapped; "/" became NULL.
    assert (first["姓名"], first["性别"], first["年龄"], first["备注"]) == ("张 三", "女", 76, None)
    assert first["出生日期"] == "1949-12-31"
    versions = ok(http.get(f"{API}/entries/{entry.id}/versions", headers=h))
    assert versions[0]["lineage"]["cleaning_rules"] == 1
    assert versions[0]["lineage"]["masking_policy"] is None  # none set for this entry


def test_fixed_quarantine_rows_load_again_onto_the_version(
    http: TestClient, staff: Staff, factory: sessionmaker[Session]
) -> None:
    entry = _entry(factory, staff)
    h = staff.keys["cataloguer"]
    ok(http.put(f"/api/v1/clean/entries/{entry.id}/rules", json={"rules": RULES}, headers=h))
    run = load(http, entry.id, (HEADER + "\n".join(ROWS) + "\n").encode(), h, filename="户籍.csv")
    set_aside = _quarantine(http, run, h)
    # The department fixes the region code of 王五 and loads the fixed row back, appending.
    fixed = [row for row in set_aside if row["姓名"] == "王五"]
    fixed[0]["地区代码"] = "110101"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(set_aside[0]))
    writer.writeheader()
    writer.writerows(fixed)
    again = ok(
        http.post(
            f"{API}/entries/{entry.id}/upload",
            files={"file": ("隔离数据-已修正.csv", out.getvalue().encode(), "text/csv")},
            data={"mode": "append"},
            headers=h,
        ),
        202,
    )
    done = finished(http, again["id"], h)
    assert done["status"] == "succeeded" and done["mode"] == "append", done
    # 1 fixed row + the 2 rows of version 1.
    assert (done["rows_read"], done["rows_loaded"], done["rows_quarantined"]) == (3, 3, 0)
    code = quote(entry.code, safe="")
    ids = {
        r[0]
        for r in ok(
            http.get(f"/api/v1/data/{code}/query", params={"fields": "身份证号"}, headers=h)
        )["rows"]
    }
    assert ids == {"11010519491231002X", "110101199003070214", "110101199003070417"}


def test_bad_rules_are_refused_whole_and_nothing_changes(
    http: TestClient, staff: Staff, factory: sessionmaker[Session]
) -> None:
    entry = _entry(factory, staff)
    h = staff.keys["cataloguer"]
    url = f"/api/v1/clean/entries/{entry.id}/rules"
    error = refused(
        http.put(
            url,
            json={
                "rules": [
                    {"kind": "trim_all"},
                    {"kind": "regex", "item": "姓名", "pattern": "(["},
                    {"kind": "range", "item": "年龄", "min": 10, "max": 1},
                    {"kind": "identifier", "item": "身份证号", "identifier": "ssn"},
                    {"kind": "reference", "item": "地区代码", "entry": "999/999", "column": "代码"},
                    {"kind": "map", "item": "不存在", "values": {"a": "b"}},
                ]
            },
            headers=h,
        ),
        422,
        "bad_cleaning_rules",
    )
    assert [d["code"] for d in error["details"]] == [
        "unknown_kind",
        "bad_regex",
        "bad_range",
        "bad_identifier",
        "unknown_reference",
        "unknown_item",
    ]
    assert ok(http.get(url, headers=h)) == []
    refused(
        http.put(url, json={"rules": []}, headers=staff.keys["outsider"]), 403, "permission_denied"
    )


def test_a_reference_rule_checks_codes_against_another_entry(
    http: TestClient, staff: Staff, factory: sessionmaker[Session]
) -> None:
    h = staff.keys["cataloguer"]
    with transaction(factory) as db:
        regions = f.published_entry(
            db,
            dept=db.merge(staff.department),
            name="行政区划代码表",
            items=[("代码", "C"), ("名称", "C")],
        )
        db.flush()
        db.expunge_all()
    load(http, regions.id, "代码,名称\n110101,东城区\n110105,朝阳区\n".encode(), h)
    entry = _entry(factory, staff)
    rule = {"kind": "reference", "item": "地区代码", "entry": regions.code, "column": "代码"}
    ok(http.put(f"/api/v1/clean/entries/{entry.id}/rules", json={"rules": [rule]}, headers=h))
    body = HEADER + "110101199003070214,周九,男,1990-03-07,35,110101,\n"
    body += "110101199003070118,孙八,男,1990-03-07,35,520102,\n"
    run = load(http, entry.id, body.encode(), h)
    assert (run["rows_loaded"], run["rows_quarantined"]) == (1, 1)
    [row] = _quarantine(http, run, h)
    assert row["地区代码"] == "520102" and "在资源" in row["隔离原因"]
