"""Issue 10, class 2 — masked values inferred through other operations: an oracle test.

Two entries ("worlds") hold the same rows, except that rows P0001 and P0002 swap their raw values
in every column masked by a method that makes them collide (mask, truncate, generalise,
substitute, null): shown masked, the two worlds are the same. A consumer granted every read
method asks both the same questions naming those columns — filters (=, ≠, <, ≤, >, ≥, IN, LIKE,
null), sorts, groups, aggregates, distinct values, full-text search, paging cursors, key lookups,
downloads, a self-written grant row filter, and malformed requests — and every answer must be the
same in both worlds. An answer that differed would tell the masked values apart by their raw
values. Columns masked by the other methods (shuffle, noise, date shift, hash, pseudonym, SM4)
are refused in every such question, as is a consumer's row filter on them."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, func, select

from kuaishu.security.models import AuditEvent
from kuaishu.settings import get_settings
from tests.functional.store.conftest import load_engine, module_data_dir
from tests.http import ok, refused
from tests.security.masked_grants import SHARE, Ground, build_ground, share_rule

__all__ = ["load_engine", "module_data_dir"]

ITEMS = [
    ("编号", "C"),
    ("地区", "C"),
    ("身份证号", "C"),
    ("手机号码", "C"),
    ("住址", "C"),
    ("年龄", "I"),
    ("出生日期", "D"),
    ("单位", "C"),
    ("备注", "C"),
    ("姓名", "C"),
    ("收入", "N"),
    ("登记日期", "D"),
    ("证件摘要", "C"),
    ("联系人", "C"),
    ("账号", "C"),
]
COLLIDING = {
    "身份证号": share_rule("身份证号", "mask", first=6),
    "手机号码": share_rule("手机号码", "truncate", keep=3),
    "住址": share_rule("住址", "generalise", to="district"),
    "年龄": share_rule("年龄", "generalise", to="range", width=10),
    "出生日期": share_rule("出生日期", "generalise", to="year"),
    "单位": share_rule("单位", "substitute", value="某单位"),
    "备注": share_rule("备注", "null"),
}
OTHERS = {
    "姓名": share_rule("姓名", "shuffle"),
    "收入": share_rule("收入", "noise", percent=10),
    "登记日期": share_rule("登记日期", "date_shift", days=20),
    "证件摘要": share_rule("证件摘要", "hash"),
    "联系人": share_rule("联系人", "pseudonym"),
    "账号": share_rule("账号", "encrypt"),
}
RULES = [*COLLIDING.values(), *OTHERS.values()]
# Rows P0001 and P0002: raw values that differ, masked values that do not.
PAIR = (
    {
        "身份证号": "520102199001011234",
        "手机号码": "13800001111",
        "住址": "贵州省贵阳市南明区中华南路1号",
        "年龄": 31,
        "出生日期": date(1990, 2, 3),
        "单位": "甲单位",
        "备注": "低保户",
    },
    {
        "身份证号": "520102198505055678",
        "手机号码": "13899998888",
        "住址": "贵州省贵阳市南明区花果园99号",
        "年龄": 38,
        "出生日期": date(1990, 11, 20),
        "单位": "乙单位",
        "备注": "五保户",
    },
)
N = 20


def person(i: int) -> dict[str, Any]:
    return {
        "编号": f"P{i:04d}",
        "地区": ["南明区", "云岩区"][i % 2],
        "身份证号": f"52010{i % 3}19{70 + i}0101{i:04d}",
        "手机号码": f"1{37 + i % 3}0000{i:05d}",
        "住址": f"贵州省贵阳市{['云岩区', '花溪区'][i % 2]}某路{i}号",
        "年龄": 18 + 3 * i,
        "出生日期": date(1950 + i, 1 + i % 12, 1),
        "单位": f"单位{i}",
        "备注": f"备注{i}",
        "姓名": f"姓名{i:02d}",
        "收入": 1000 + 91 * i,
        "登记日期": date(2020, 1, 1 + i),
        "证件摘要": f"ID{i:05d}",
        "联系人": f"联系人{i}",
        "账号": f"62220{i:010d}",
    }


def world(swapped: bool) -> list[dict[str, Any]]:
    rows = [person(i) for i in range(1, N + 1)]
    first, second = (PAIR[1], PAIR[0]) if swapped else PAIR
    rows[0].update(first)
    rows[1].update(second)
    return rows


@pytest.fixture(scope="module")
def ground(load_engine: Engine, module_data_dir: Path) -> Iterator[Ground]:
    yield from build_ground(
        load_engine,
        module_data_dir,
        ITEMS,
        tuple(COLLIDING) + tuple(OTHERS),
        {"X": RULES, "Y": RULES},
        {"X": world(False), "Y": world(True)},
    )


RANDOM = "账号"  # SM4-GCM: a fresh nonce per value and read, so never equal twice


def answer(response: Any) -> tuple[int, Any]:
    """What the consumer learns from a response (a cursor is signed per grant, so it is
    compared by the pages it leads to, not by its text; an SM4 token differs on every read)."""
    if not response.headers.get("content-type", "").startswith("application/json"):
        table = list(csv.reader(io.StringIO(response.content.decode())))
        at = table[0].index(RANDOM) if table and RANDOM in table[0] else None
        return response.status_code, [[c for i, c in enumerate(row) if i != at] for row in table]
    body = response.json()
    if isinstance(body, dict) and "rows" in body:
        body.pop("next_cursor", None)
        names = [f["name"] for f in body["fields"]]
        if RANDOM in names:
            at = names.index(RANDOM)
            body["rows"] = [
                {k: v for k, v in row.items() if k != RANDOM}
                if isinstance(row, dict)
                else [v for i, v in enumerate(row) if i != at]
                for row in body["rows"]
            ]
    return response.status_code, body


def questions(column: str) -> list[dict[str, Any]]:
    """Every question the data API takes that names ``column``, asked with P0001's raw value
    in world X (which is P0002's in world Y)."""
    raw = PAIR[0][column]
    value = raw.isoformat() if isinstance(raw, date) else str(raw)
    asked: list[dict[str, Any]] = [
        {f"{column}{op}": value, "fields": "编号"}
        for op in ("", "__eq", "__ne", "__lt", "__lte", "__gt", "__gte", "__in")
    ]
    asked += [
        {f"{column}__contains": value[-4:], "fields": "编号"},
        {f"{column}__isnull": "0", "fields": "编号"},
        {f"{column}__between": value},
        {f"{column}__gt": "不是值"},
        {"sort": column, "fields": "编号"},
        {"sort": f"-{column}", "fields": "编号"},
        {"sort": f"{column},编号", "fields": "编号", "limit": 1},
        {"group_by": column},
        {"group_by": column, "agg": f"count:{column}"},
        {"group_by": "地区", "agg": f"min:{column},max:{column}"},
        {"agg": f"count:{column}"},
        {"agg": f"min:{column}"},
        {"agg": f"max:{column}"},
        {"agg": f"sum:{column}"},
        {"agg": f"avg:{column}"},
        {"distinct": "true", "fields": column},
        {"distinct": "true", "fields": f"编号,{column}", "sort": column},
        {"distinct": "true", "fields": f"{column},地区", "sort": f"-{column}"},
        {"q": value[-6:]},
        {"q": value},
    ]
    return asked


def ask_both(ground: Ground, tail: str, **params: Any) -> tuple[Any, Any]:
    return (
        answer(ground.grant_get("X", tail, **params)),
        answer(ground.grant_get("Y", tail, **params)),
    )


def test_the_two_worlds_look_the_same_masked(ground: Ground) -> None:
    """The premise: shown masked, nothing tells X from Y."""
    x, y = ask_both(ground, "query", limit=1000, shape="objects")
    assert x[0] == 200 and x == y
    rows = {r["编号"]: r for r in x[1]["rows"]}
    assert rows["P0001"]["身份证号"] == rows["P0002"]["身份证号"] == "520102************"
    x, y = ask_both(ground, "download.csv")
    assert x[0] == 200 and x == y


@pytest.mark.parametrize("column", list(COLLIDING))
def test_no_question_tells_the_masked_values_apart(ground: Ground, column: str) -> None:
    answered = 0
    for params in questions(column):
        for tail in ("query", "download.csv"):
            x, y = ask_both(ground, tail, **params)
            assert x == y, (tail, params, x, y)
            answered += x[0] == 200
    for key in ("P0001", "P0002"):
        x, y = ask_both(ground, "lookup", key=key, shape="objects")
        assert x[0] == 200 and x == y
    assert answered  # some questions are answered — on the masked values


def test_paging_cursors_tell_nothing(ground: Ground) -> None:
    def walk(name: str, **params: Any) -> list[Any]:
        pages, cursor = [], None
        while True:
            extra: dict[str, str] = {"cursor": cursor} if cursor else {}
            response = ground.grant_get(name, "query", limit=3, **params, **extra)
            cursor = ok(response)["next_cursor"]
            pages.append(answer(response))
            if cursor is None:
                return pages

    assert walk("X") == walk("Y")
    assert walk("X", sort="地区") == walk("Y", sort="地区")
    # A cursor made by hand, to page by a masked column from P0001's raw value on, is refused.
    forged = orjson.dumps([1, ["身份证号"], [PAIR[0]["身份证号"]], 0])
    token = base64.urlsafe_b64encode(forged).decode().rstrip("=")
    x, y = ask_both(ground, "query", sort="身份证号", cursor=token)
    assert x == y and x[0] == 400


@pytest.mark.parametrize("column", list(OTHERS))
def test_columns_masked_by_other_methods_answer_no_question(ground: Ground, column: str) -> None:
    value = str(person(1)[column])
    for params in (
        {column: value},
        {f"{column}__gt": value},
        {f"{column}__contains": value[-3:]},
        {"sort": column},
        {"group_by": column},
        {"agg": f"max:{column}"},
    ):
        refused(ground.grant_get("X", "query", **params), 422, "masked_column")


@pytest.mark.parametrize("column", ["身份证号", "年龄", "收入"])
def test_a_consumer_cannot_write_a_row_filter_on_a_masked_column(
    ground: Ground, column: str
) -> None:
    """Row filters are the provider's: a grant bounded by a consumer's own filter on a masked
    column would answer, grant by grant, whether the hidden value is above a guess."""
    raw = PAIR[0].get(column, person(1)[column])
    for name in ("X", "Y"):
        made = ground.apply(name, "second", row_filter=[[f"{column}__lte", str(raw)]])
        error = refused(made, 422, "bad_share_request")
        assert error["details"] == [
            {
                "field": "row_filter[0]",
                "code": "masked_column",
                "value": [f"{column}__lte", str(raw)],
            }
        ]


def test_one_grant_in_force_per_consumer_and_entry(ground: Ground) -> None:
    second = ground.apply("X")
    held = ground.worlds["X"].grant
    assert refused(second, 409, "grant_exists")["details"] == {"grant": held}
    # Revoked, the department may be granted again — once.
    owner = ground.keys["owner"]
    revoked = ground.client.post(
        f"{SHARE}/grants/{held}/revoke", json={"reason": "换发"}, headers=owner
    )
    ok(revoked)
    ground.worlds["X"].grant = ok(ground.apply("X"), 201)["grant"]["id"]
    refused(ground.apply("X"), 409, "grant_exists")


def test_lookups_by_a_masked_key_are_rate_limited_and_audited(
    ground: Ground, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one raw comparison left — equality on the granted key — verifies a person; it must
    not enumerate them: limited per minute even when the grant sets no rate, every try audited."""
    monkeypatch.setattr(get_settings(), "lookup_rate_per_minute", 3)
    with ground.factory() as db:
        before = db.scalar(select(func.count()).where(AuditEvent.action == "data.lookup"))
    answers = [
        ground.grant_get("Y", "lookup", key=f"P{i:04d}").status_code for i in range(900, 906)
    ]
    # Misses (404) until the minute's budget is spent — earlier tests may have spent some.
    limited = answers.index(429)
    assert set(answers[:limited]) <= {404} and set(answers[limited:]) == {429}, answers
    error = ground.grant_get("Y", "lookup", key="P0001").json()["error"]
    assert error["code"] == "rate_limited" and "3" in error["message"]
    with ground.factory() as db:
        after = db.scalar(select(func.count()).where(AuditEvent.action == "data.lookup"))
    assert after - before == answers.count(404)  # each miss recorded as a read
