"""Discovery on served data: a generated population is scanned, the ID column is found as an ID
(not a credit code), the cataloguer confirms, and the confirmed masking hides every value in the
shared download."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import Engine

from tests.functional.store.conftest import Served, make_served
from tests.functional.store.test_masking import population

ITEMS = [
    ("身份证号", "C"),
    ("姓名", "C"),
    ("手机号码", "C"),
    ("住址", "C"),
    ("地区", "C"),
    ("年龄", "I"),
]


@pytest.fixture(scope="module")
def people(load_engine: Engine, module_data_dir: Path) -> Iterator[Served]:
    yield from make_served(
        load_engine, module_data_dir, population(400), "居民登记（未定级）", ITEMS
    )


def test_discovery_finds_the_personal_columns_and_confirming_masks_them(people: Served) -> None:
    url = f"/api/v1/clean/entries/{people.entry_id}/discovery"
    found = people.client.get(url, headers=people.member)
    assert found.status_code == 200, found.text
    kinds = {f["column"]: f["kind"] for f in found.json()}
    assert kinds["身份证号"] == "citizen_id"  # an ID, not a credit code
    assert kinds["姓名"] == "person_name" and kinds["手机号码"] == "mobile"
    assert kinds["住址"] == "address" and "地区" not in kinds and "年龄" not in kinds
    by_column = {f["column"]: f for f in found.json()}
    assert by_column["身份证号"]["level"] == "涉及用户隐私"

    code = quote(people.code, safe="")
    before = people.client.get(
        f"/api/v1/data/{code}/download.csv", params={"channel": "share"}, headers=people.member
    )
    assert people.rows[0]["身份证号"] in before.text  # not marked sensitive yet: shown as stored
    refused = people.client.post(
        f"{url}/confirm", json={"columns": ["地区"]}, headers=people.member
    )
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "not_a_finding"
    confirmed = people.client.post(
        f"{url}/confirm",
        json={"columns": ["身份证号", "姓名", "手机号码", "住址"]},
        headers=people.member,
    )
    assert confirmed.status_code == 200, confirmed.text
    assert {r["channel"] for r in confirmed.json()["rules"]} == {"share", "open", "sandbox"}
    assert people.audit("clean.set_masking")[-1].actor_username is not None
    after = people.client.get(
        f"/api/v1/data/{code}/download.csv", params={"channel": "share"}, headers=people.member
    )
    for row in people.rows:
        for item in ("身份证号", "姓名", "手机号码", "住址"):
            assert str(row[item]) not in after.text, (item, row[item])
