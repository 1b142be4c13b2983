"""Issue 10, class 3 — masking that differs by read shape. A row masked by any method reads the
same through a page, a filtered page, a sorted page, a key lookup, each download format (whole
and filtered), the change feed and the owner's preview of the share channel. The shuffle is the
method that broke: a window over a one-row result shuffled nothing, so a lookup showed the real
name; it is now computed over the reader's whole view (docs/decisions/0015-one-read-path.md)."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine

from tests.functional.store.conftest import load_engine, module_data_dir
from tests.http import ok
from tests.security.masked_grants import Ground, build_ground, share_rule

__all__ = ["load_engine", "module_data_dir"]

ITEMS = [
    ("编号", "C"),
    ("地区", "C"),
    ("身份证号", "C"),
    ("姓名", "C"),
    ("手机号码", "C"),
    ("住址", "C"),
    ("年龄", "I"),
    ("出生日期", "D"),
    ("单位", "C"),
    ("备注", "C"),
    ("证件摘要", "C"),
    ("联系人", "C"),
    ("账号", "C"),
    ("收入", "N"),
]
# One column per masking method of the share channel.
METHODS = {
    "身份证号": share_rule("身份证号", "mask", first=6),
    "姓名": share_rule("姓名", "shuffle"),
    "手机号码": share_rule("手机号码", "truncate", keep=3),
    "住址": share_rule("住址", "generalise", to="district"),
    "年龄": share_rule("年龄", "noise", percent=20),
    "出生日期": share_rule("出生日期", "date_shift", days=30),
    "单位": share_rule("单位", "substitute", value="某单位"),
    "备注": share_rule("备注", "null"),
    "证件摘要": share_rule("证件摘要", "hash"),
    "联系人": share_rule("联系人", "pseudonym"),
    "账号": share_rule("账号", "encrypt"),
    "收入": share_rule("收入", "generalise", to="range", width=1000),
}
RANDOM = {"账号"}  # SM4-GCM takes a fresh nonce per value: equal only once decrypted
N = 30
SAMPLE = ["P0001", "P0013", "P0030"]


def person(i: int) -> dict[str, Any]:
    return {
        "编号": f"P{i:04d}",
        "地区": ["南明区", "云岩区", "花溪区"][i % 3],
        "身份证号": f"5201021990{i:04d}{i % 10}X{i:02d}"[:18],
        "姓名": f"姓名{i:02d}",
        "手机号码": f"1380000{i:04d}",
        "住址": f"贵州省贵阳市{['南明区', '云岩区'][i % 2]}中华路{i}号",
        "年龄": 20 + i,
        "出生日期": date(1970, 1, 1) + timedelta(days=400 * i),
        "单位": f"单位{i}",
        "备注": f"备注{i}",
        "证件摘要": f"ID{i:05d}",
        "联系人": f"联系人{i}",
        "账号": f"62220{i:010d}",
        "收入": 1000 + 137 * i,
    }


@pytest.fixture(scope="module")
def ground(load_engine: Engine, module_data_dir: Path) -> Iterator[Ground]:
    rows = [person(i) for i in range(1, N + 1)]
    calm = [rule for column, rule in METHODS.items() if column not in FEED_PENDING]
    yield from build_ground(
        load_engine,
        module_data_dir,
        ITEMS,
        tuple(METHODS),
        {"shapes": list(METHODS.values()), "calm": calm},
        {"shapes": rows, "calm": rows},
    )


NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
FORMULA = ("=", "+", "-", "@", "\t", "\r")


def norm(value: Any) -> Any:
    """A cell as every format must agree on it: text, numbers and dates compared by value."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | Decimal):
        number = float(value)
        return str(int(number)) if number.is_integer() else f"{number:.6g}"
    text = str(value)
    if text.startswith("'") and text[1:2] in FORMULA:  # a spreadsheet's formula guard
        text = text[1:]
    return norm(float(text)) if NUMBER.match(text) else text


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(r["编号"]): {k: norm(v) for k, v in r.items()} for r in rows}


def _file_rows(fmt: str, body: bytes) -> list[dict[str, Any]]:
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    if fmt == "json":
        rows: list[dict[str, Any]] = json.loads(body)
        return rows
    if fmt == "jsonl":
        return [json.loads(line) for line in body.decode().splitlines() if line.strip()]
    if fmt == "parquet":
        table: list[dict[str, Any]] = pq.read_table(io.BytesIO(body)).to_pylist()
        return table
    if fmt == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(body), read_only=True).worksheets[0]
        values = list(sheet.iter_rows(values_only=True))
        head = [str(h) for h in values[0]]
        return [dict(zip(head, row, strict=True)) for row in values[1:]]
    assert fmt == "xml"
    root = ET.fromstring(body)
    found = root.find("rows")
    assert found is not None
    return [{cell.tag: cell.text for cell in row} for row in found]


def shapes(ground: Ground, key: str) -> dict[str, dict[str, Any]]:
    """Row ``key`` as each read shape under the grant shows it."""
    g = ground
    seen: dict[str, dict[str, Any]] = {}
    page = ok(g.grant_get("shapes", "query", limit=1000, shape="objects"))["rows"]
    seen["page"] = by_id(page)[key]
    for name, params in (
        ("filtered page", {"编号": key}),
        ("page of one", {"编号__in": key, "limit": 1}),
        ("sorted page", {"sort": "-编号", "limit": 1000}),
        ("page by region", {"地区": next(r for r in page if r["编号"] == key)["地区"]}),
    ):
        rows = ok(g.grant_get("shapes", "query", shape="objects", **params))["rows"]
        seen[name] = by_id(rows)[key]
    seen["lookup"] = by_id(ok(g.grant_get("shapes", "lookup", key=key, shape="objects"))["rows"])[
        key
    ]
    for fmt in ("csv", "json", "jsonl", "xml", "xlsx", "parquet"):
        whole = g.grant_get("shapes", f"download.{fmt}")
        assert whole.status_code == 200, whole.text
        seen[f"download.{fmt}"] = by_id(_file_rows(fmt, whole.content))[key]
        one = g.grant_get("shapes", f"download.{fmt}", 编号=key)
        assert one.status_code == 200, one.text
        seen[f"download.{fmt} of one"] = by_id(_file_rows(fmt, one.content))[key]
    preview = g.owner_get("shapes", "query", channel="share", limit=1000, shape="objects")
    seen["owner's preview"] = by_id(ok(preview)["rows"])[key]
    return seen


@pytest.mark.parametrize("key", SAMPLE)
def test_a_row_reads_alike_in_every_shape(ground: Ground, key: str) -> None:
    raw = next(r for r in ground.worlds["shapes"].rows if r["编号"] == key)
    seen = shapes(ground, key)
    page = seen["page"]
    for column in METHODS:
        if column in RANDOM:
            assert all(row[column] not in (None, norm(raw[column])) for row in seen.values())
            continue
        differing = {
            shape: row[column] for shape, row in seen.items() if row[column] != page[column]
        }
        assert not differing, (column, page[column], differing)
    # The shuffled name is another person's name, in every shape (a lookup too).
    assert page["姓名"] != raw["姓名"] and page["姓名"] in {
        r["姓名"] for r in ground.worlds["shapes"].rows
    }


def test_the_shuffle_is_still_a_permutation_of_the_column(ground: Ground) -> None:
    rows = ok(ground.grant_get("shapes", "query", limit=1000, shape="objects"))["rows"]
    names = sorted(r["姓名"] for r in rows)
    assert names == sorted(r["姓名"] for r in ground.worlds["shapes"].rows)
    assert sum(r["姓名"] == person(int(r["编号"][1:]))["姓名"] for r in rows) < N // 3


# The change feed shows shuffled, noised and date-shifted rows computed over the changes file
# (or fails on them); class 12 of issue 10 (feed and sync under masking) makes them agree. Until
# it is merged here, an entry masked by those three is expected to differ: the "calm" entry, masked
# by every other method, must agree now.
FEED_PENDING = {"姓名", "年龄", "出生日期"}


@pytest.mark.parametrize("world", ["calm", "shapes"])
def test_the_change_feed_shows_a_row_as_a_page_does(ground: Ground, world: str) -> None:
    page = by_id(ok(ground.grant_get(world, "query", limit=1000, shape="objects"))["rows"])
    try:
        answer = ground.grant_get(world, "changes", limit=1000)
    except duckdb.Error:
        if world != "shapes":
            raise
        pytest.xfail("class 12 (feed under masking) is another branch of issue 10")
    fed = by_id([c["row"] for c in ok(answer)["changes"] if c["op"] == "added"])
    assert set(fed) == set(page)
    for column in METHODS:
        if column in RANDOM:
            continue
        differing = {
            k: (fed[k][column], page[k][column]) for k in page if fed[k][column] != page[k][column]
        }
        if world == "shapes" and column in FEED_PENDING and differing:
            pytest.xfail("class 12 (feed under masking) is another branch of issue 10")
        assert not differing, column
