"""Lookup by key, the data dictionary, who may read, and the audit trail every read leaves."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from kuaishu.accounts.roles import Role
from kuaishu.db import transaction
from kuaishu.security.audit import keyed
from tests import factories as f
from tests.functional.store.conftest import ITEMS, Served, load_file, person, write_csv

pytestmark = pytest.mark.xdist_group("store_reads")


def test_lookup_by_the_key(served: Served) -> None:
    wanted = served.rows[41]
    response = served.get("lookup", key=wanted["身份证号"], shape="objects")
    assert response.status_code == 200, response.text
    [row] = response.json()["rows"]
    assert row["姓名"] == wanted["姓名"] and row["人口"] == wanted["人口"]
    by_name = served.get("lookup", 身份证号=wanted["身份证号"], fields="姓名,地区")
    assert by_name.json()["rows"] == [[wanted["姓名"], wanted["地区"]]]


def test_lookup_by_post_keeps_the_key_out_of_the_url(served: Served) -> None:
    wanted = served.rows[7]
    response = served.client.post(
        served.url("lookup"),
        json={"keys": {"身份证号": wanted["身份证号"]}, "fields": ["姓名"], "purpose": "核验身份"},
        headers=served.member,
    )
    assert response.json()["rows"] == [[wanted["姓名"]]]
    event = served.audit("data.lookup")[-1]
    assert event.purpose == "核验身份"
    # The key itself is kept only as its keyed digest (tests/security/test_audit_gaps.py).
    assert event.details is not None and event.details["keys"] == {
        "身份证号": keyed(wanted["身份证号"])
    }


def test_lookup_miss_is_404_and_still_audited(served: Served) -> None:
    before = len(served.audit("data.lookup"))
    response = served.get("lookup", key="000000000000000000")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "record_not_found"
    events = served.audit("data.lookup")
    assert len(events) == before + 1 and events[-1].details["rows"] == 0  # type: ignore[index]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"姓名": "张三1"}, 422, "not_a_key"),
        ({}, 422, "key_required"),
        ({"key": "1", "fields": "电话"}, 422, "unknown_column"),
    ],
)
def test_lookup_mistakes(served: Served, params: dict[str, str], status: int, code: str) -> None:
    response = served.get("lookup", **params)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_dictionary_describes_the_served_version(served: Served) -> None:
    body = served.get("dictionary").json()
    assert body["code"] == served.code and body["name"] == "人口登记信息"
    assert [f["name"] for f in body["fields"]] == [name for name, _ in ITEMS]
    first = body["fields"][0]
    assert first["key"] is True and first["item_type"] == "C"
    assert first["item_type_label"] == "字符型" and first["type"] == "VARCHAR"
    assert body["fields"][6]["item_type_label"] == "日期型"
    version = body["version"]
    assert version["number"] == 1 and version["row_count"] == 240
    assert len(version["checksum_sm3"]) == 64 and version["created_at"]
    english = served.get("dictionary", headers={**served.member, "Accept-Language": "en"}).json()
    assert english["fields"][0]["item_type_label"] != "字符型"


def test_operator_reads_no_departments_raw_data(served: Served) -> None:
    response = served.get("query", headers=served.operator, limit=1)
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("method", "tail", "operation"),
    [
        ("GET", "query", "data.read_own"),
        ("GET", "lookup?key=1", "data.read_own"),
        ("GET", "dictionary", "data.read_own"),
        ("GET", "download.csv", "data.read_own"),
    ],
)
def test_another_department_is_refused_and_the_refusal_recorded(
    served: Served, method: str, tail: str, operation: str
) -> None:
    before = len([e for e in served.audit(operation) if e.outcome == "denied"])
    response = served.client.request(method, served.url(tail), headers=served.outsider)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    denied = [e for e in served.audit(operation) if e.outcome == "denied"]
    assert len(denied) == before + 1 and denied[-1].target_id == str(served.entry_id)


def test_every_read_is_in_the_audit_trail(served: Served) -> None:
    served.get("query", 地区="北京", limit=3, purpose="人口统计分析")
    query = served.audit("data.query")[-1]
    assert query.purpose == "人口统计分析" and query.outcome == "success"
    assert query.details == {
        "code": served.code,
        "version": 1,
        "filters": [["地区", "北京"]],
        "limit": 3,
        "rows": 3,
    }
    served.get("download.jsonl", headers={**served.member, "X-Purpose": quote("年度报告")})
    download = served.audit("data.download")[-1]
    assert download.purpose == "年度报告"
    assert download.details["format"] == "jsonl" and download.details["rows"] == 240  # type: ignore[index]
    assert download.actor_username and download.target_type == "dataset_version"


def test_a_cursor_keeps_reading_its_version_after_a_new_publish(
    served: Served, module_data_dir: Path
) -> None:
    with transaction(served.factory) as db:
        entry = f.published_entry(db, name="滚动发布的资源", items=ITEMS, keys=("身份证号",))
        entry_id, code = entry.id, entry.code
        reader = f.user(db, roles=[Role.CATALOGUER], dept=entry.department)
        member = {"X-API-Key": f.api_key(db, reader)}
    load_file(
        served.factory,
        entry_id,
        write_csv(module_data_dir / "v1.csv", [person(i) for i in range(1, 21)]),
    )

    def page(**params: Any) -> Any:
        url = served.url("query", code)
        return served.client.get(url, params=params, headers=member).json()

    first = page(limit=8)
    load_file(
        served.factory,
        entry_id,
        write_csv(module_data_dir / "v2.csv", [person(i) for i in range(500, 505)]),
    )
    second = page(limit=8, cursor=first["next_cursor"])
    assert second["version"] == 1
    assert [r[0] for r in first["rows"] + second["rows"]] == [
        person(i)["身份证号"] for i in range(1, 17)
    ]
    fresh = page(limit=8)
    assert fresh["version"] == 2 and fresh["total"] == 5
