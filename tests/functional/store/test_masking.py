"""Masking on the way out: a generated population, a policy per channel, and every output of the
data API — query (both shapes), lookup (GET and POST), the dictionary and each download format —
searched for any original value of a masked column. None may appear."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import openpyxl
import pyarrow.parquet as pq
import pytest
from faker import Faker
from sqlalchemy import Engine

from kuaishu.catalog.models import CatalogEntry
from kuaishu.clean.masking import MaskMethod
from kuaishu.clean.services import Channel, set_policy
from kuaishu.db import transaction
from kuaishu.store.exports import Format
from tests import factories as f
from tests.functional.store.conftest import Served, make_served

ITEMS = [
    ("身份证号", "C"),
    ("姓名", "C"),
    ("手机号码", "C"),
    ("住址", "C"),
    ("地区", "C"),
    ("年龄", "I"),
]
SENSITIVE = ("身份证号", "姓名", "手机号码", "住址")
# 住址 has no rule for the open channel: a sensitive item without a rule is shown as NULL.
RULES = [
    {"item": "身份证号", "channel": "share", "method": "mask", "params": {"first": 6, "last": 0}},
    {"item": "姓名", "channel": "share", "method": "pseudonym", "params": {}},
    {"item": "手机号码", "channel": "share", "method": "mask", "params": {"first": 3, "last": 4}},
    {"item": "住址", "channel": "share", "method": "generalise", "params": {"to": "district"}},
    {"item": "身份证号", "channel": "open", "method": "hash", "params": {}},
    {"item": "姓名", "channel": "open", "method": "mask", "params": {"first": 1}},
    {"item": "手机号码", "channel": "open", "method": "null", "params": {}},
    {
        "item": "年龄",
        "channel": "open",
        "method": "generalise",
        "params": {"to": "range", "width": 10},
    },
]


def population(n: int) -> list[dict[str, Any]]:
    fake = Faker("zh_CN")
    Faker.seed(20261204)
    people: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(people) < n:
        ssn = fake.ssn()
        if ssn in seen:
            continue
        seen.add(ssn)
        people.append(
            {
                "身份证号": ssn,
                "姓名": fake.name(),
                "手机号码": fake.phone_number(),
                "住址": fake.address(),
                "地区": fake.province(),
                "年龄": fake.random_int(18, 90),
            }
        )
    return people


@pytest.fixture(scope="module")
def people(load_engine: Engine, module_data_dir: Path) -> Iterator[Served]:
    rows = population(300)
    served_people = make_served(
        load_engine, module_data_dir, rows, "户籍人口登记", ITEMS, sensitive=SENSITIVE
    )
    for served in served_people:
        with transaction(served.factory) as db:
            entry = db.get(CatalogEntry, served.entry_id)
            assert entry is not None
            set_policy(db, actor=f.ROOT, entry=entry, rules=RULES, note="测试")
        yield served


def _text(fmt: str, body: bytes) -> str:
    """Everything a user could read in ``body``: cells of workbooks and Parquet included."""
    if fmt == Format.XLSX:
        book = openpyxl.load_workbook(io.BytesIO(body), read_only=True)
        return "\n".join(
            "\t".join("" if v is None else str(v) for v in row)
            for sheet in book.worksheets
            for row in sheet.iter_rows(values_only=True)
        )
    if fmt == Format.PARQUET:
        return json.dumps(
            pq.read_table(io.BytesIO(body)).to_pylist(), ensure_ascii=False, default=str
        )
    return body.decode("utf-8")


def _outputs(people: Served, channel: str) -> dict[str, str]:
    """Every output of the data API in ``channel``, as the text a user would see."""
    code = quote(people.code, safe="")
    first = people.rows[0]["身份证号"]
    got: dict[str, str] = {}

    def read(name: str, response: Any, fmt: str = "json") -> None:
        assert response.status_code == 200, (name, response.text)
        got[name] = _text(fmt, response.content)

    api = f"/api/v1/data/{code}"
    params = {"channel": channel, "limit": 1000}
    read("query", people.client.get(f"{api}/query", params=params, headers=people.member))
    read(
        "query-objects",
        people.client.get(
            f"{api}/query", params={**params, "shape": "objects"}, headers=people.member
        ),
    )
    read(
        "lookup",
        people.client.get(
            f"{api}/lookup", params={"key": first, "channel": channel}, headers=people.member
        ),
    )
    read(
        "lookup-post",
        people.client.post(
            f"{api}/lookup", params={"channel": channel}, json={"key": first}, headers=people.member
        ),
    )
    for fmt in Format:
        read(
            f"download.{fmt}",
            people.client.get(
                f"{api}/download.{fmt}", params={"channel": channel}, headers=people.member
            ),
            fmt,
        )
    return got


@pytest.mark.parametrize("channel", ["share", "open"])
def test_no_masked_value_appears_in_any_output(people: Served, channel: str) -> None:
    originals = {name: [str(row[name]) for row in people.rows] for name in SENSITIVE}
    outputs = _outputs(people, channel)
    assert set(outputs) == {"query", "query-objects", "lookup", "lookup-post"} | {
        f"download.{fmt}" for fmt in Format
    }
    for where, text in outputs.items():
        for name, values in originals.items():
            leaked = [v for v in values if v in text]
            assert not leaked, f"{where} shows {name} unmasked, e.g. {leaked[:3]}"
    # Not masked away entirely: the unmasked items are there, the masked ones in their form.
    assert people.rows[5]["地区"] in outputs["download.csv"]
    if channel == "share":
        assert people.rows[5]["身份证号"][:6] + "*" * 12 in outputs["download.csv"]


def test_the_owner_sees_the_stored_values(people: Served) -> None:
    """The control for the test above: without a channel the same outputs hold the originals."""
    code = quote(people.code, safe="")
    csv = people.client.get(f"/api/v1/data/{code}/download.csv", headers=people.member)
    assert csv.status_code == 200
    for row in people.rows[:20]:
        assert row["身份证号"] in csv.text and row["住址"] in csv.text


def test_open_channel_masks_as_its_rules_say(people: Served) -> None:
    code = quote(people.code, safe="")
    body = people.client.get(
        f"/api/v1/data/{code}/query",
        params={"channel": "open", "shape": "objects", "limit": 5},
        headers=people.member,
    ).json()
    types = {field["name"]: field["type"] for field in body["fields"]}
    assert types["年龄"] == "VARCHAR"  # generalised to a range
    for row, person in zip(body["rows"], people.rows, strict=False):
        assert row["手机号码"] is None and row["住址"] is None  # null rule; default for sensitive
        assert len(row["身份证号"]) == 64  # HMAC-SM3, hex
        assert row["姓名"][0] == person["姓名"][0] and set(row["姓名"][1:]) == {"*"}
        low = person["年龄"] // 10 * 10
        assert row["年龄"] == f"{low}-{low + 9}"


def test_hashes_and_pseudonyms_are_consistent_across_reads(people: Served) -> None:
    code = quote(people.code, safe="")

    def read() -> list[dict[str, Any]]:
        return people.client.get(  # type: ignore[no-any-return]
            f"/api/v1/data/{code}/query",
            params={"channel": "share", "shape": "objects", "limit": 50},
            headers=people.member,
        ).json()["rows"]

    first, second = read(), read()
    assert [r["姓名"] for r in first] == [r["姓名"] for r in second]
    assert all(r["姓名"].startswith("P") and len(r["姓名"]) == 17 for r in first)


@pytest.mark.parametrize(
    "params",
    [
        {"身份证号": "x"},
        {"姓名__contains": "张"},
        {"sort": "手机号码"},
        {"group_by": "住址"},
        {"agg": "count:身份证号"},
    ],
)
def test_masked_columns_cannot_be_probed(people: Served, params: dict[str, str]) -> None:
    code = quote(people.code, safe="")
    answer = people.client.get(
        f"/api/v1/data/{code}/query", params={"channel": "share", **params}, headers=people.member
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "masked_column"


def test_search_skips_masked_columns(people: Served) -> None:
    code = quote(people.code, safe="")
    name = people.rows[3]["姓名"]
    owner = people.client.get(
        f"/api/v1/data/{code}/query", params={"q": name}, headers=people.member
    )
    shared = people.client.get(
        f"/api/v1/data/{code}/query", params={"q": name, "channel": "share"}, headers=people.member
    )
    assert owner.json()["total"] >= 1
    assert shared.json()["total"] == 0


def test_reads_record_channel_and_policy(people: Served) -> None:
    _outputs(people, "share")
    event = people.audit("data.download")[-1]
    assert event.details is not None
    assert event.details["channel"] == "share" and event.details["masking_policy"] == 1
    assert set(event.details["masked"]) >= {"身份证号", "姓名"}


def test_bad_policies_are_refused_whole(people: Served) -> None:
    entry = f"/api/v1/clean/entries/{people.entry_id}/masking"
    before = people.client.get(entry, headers=people.member).json()
    bad = people.client.put(
        entry,
        json={
            "rules": [
                {"item": "不存在", "channel": "share", "method": "mask"},
                {"item": "姓名", "channel": "public", "method": "mask"},
                {"item": "年龄", "channel": "open", "method": "noise", "params": {"percent": -1}},
                {"item": "住址", "channel": "open", "method": "blur"},
            ]
        },
        headers=people.member,
    )
    assert bad.status_code == 422
    problems = bad.json()["error"]["details"]
    assert [p["code"] for p in problems] == [
        "unknown_item",
        "unknown_channel",
        "bad_masking_parameters",
        "unknown_method",
    ]
    assert people.client.get(entry, headers=people.member).json() == before
    assert people.client.put(entry, json={"rules": []}, headers=people.outsider).status_code == 403


def test_channel_view_lists_defaults(people: Served) -> None:
    view = people.client.get(
        f"/api/v1/clean/entries/{people.entry_id}/masking/channels", headers=people.member
    ).json()
    assert view["channels"]["open"]["住址"] == {"method": "null", "params": {}, "source": "default"}
    assert view["channels"]["share"]["地区"] is None
    assert view["channels"]["sandbox"]["身份证号"]["source"] == "default"
    assert MaskMethod(view["channels"]["share"]["姓名"]["method"]) == MaskMethod.PSEUDONYM
    assert set(Channel) == {"share", "open", "sandbox"}
