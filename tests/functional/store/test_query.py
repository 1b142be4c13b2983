"""The query API on a version loaded by the real pipeline: every filter operator, search, fields,
sort, offset and cursor paging, totals, distinct, grouping — and the errors a caller can make."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.functional.store.conftest import Check, Served

pytestmark = pytest.mark.xdist_group("store_query")

ID = "身份证号"


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def ids(body: dict[str, Any]) -> list[str]:
    position = [f["name"] for f in body["fields"]].index(ID)
    return [row[position] for row in body["rows"]]


def expected_ids(served: Served, check: Check) -> list[str]:
    return [r[ID] for r in served.rows if check(r)]


FILTERS: list[tuple[str, str, Check]] = [
    ("地区", "北京", lambda r: r["地区"] == "北京"),
    ("地区__eq", "上海", lambda r: r["地区"] == "上海"),
    ("人口__ne", "24", lambda r: r["人口"] is not None and r["人口"] != 24),
    ("人口__lt", "10", lambda r: r["人口"] is not None and r["人口"] < 10),
    ("人口__lte", "10", lambda r: r["人口"] is not None and r["人口"] <= 10),
    ("人口__gt", "40", lambda r: r["人口"] is not None and r["人口"] > 40),
    ("人口__gte", "40", lambda r: r["人口"] is not None and r["人口"] >= 40),
    ("地区__in", "北京,贵阳", lambda r: r["地区"] in ("北京", "贵阳")),
    ("地区__in", '["上海", "广州"]', lambda r: r["地区"] in ("上海", "广州")),
    ("人口__in", "1,2,3", lambda r: r["人口"] in (1, 2, 3)),
    ("姓名__contains", "三1", lambda r: "三1" in r["姓名"]),
    ("人口__isnull", "1", lambda r: r["人口"] is None),
    ("人口__isnull", "0", lambda r: r["人口"] is not None),
    ("地区__notnull", "1", lambda r: r["地区"] is not None),
    ("收入__gt", "250.00", lambda r: r["收入"] > Decimal("250")),
    ("比例__lte", "3.5", lambda r: r["比例"] <= 3.5),
    ("出生日期__gte", "2000-01-01", lambda r: r["出生日期"] >= date(2000, 1, 1)),
    ("登记时间__lt", "2024-01-03T00:00:00", lambda r: r["登记时间"] < datetime(2024, 1, 3)),
    ("户籍", "true", lambda r: r["户籍"]),
    ("户籍__eq", "否", lambda r: not r["户籍"]),
]


@pytest.mark.parametrize(("parameter", "value", "check"), FILTERS, ids=[f[0] for f in FILTERS])
def test_every_filter_operator(served: Served, parameter: str, value: str, check: Check) -> None:
    body = served.get("query", **{parameter: value, "limit": 1000, "total": "exact"}).json()
    wanted = expected_ids(served, check)
    assert wanted and ids(body) == wanted
    assert body["total"] == len(wanted) and body["total_exact"]


def test_filters_combine_with_and_and_may_repeat(served: Served) -> None:
    response = served.client.get(
        served.url("query") + "?地区=北京&人口__gte=10&人口__lte=30&limit=1000",
        headers=served.member,
    )
    check: Check = lambda r: r["地区"] == "北京" and r["人口"] is not None and 10 <= r["人口"] <= 30  # noqa: E731
    assert ids(response.json()) == expected_ids(served, check)


def test_rows_come_back_as_loaded(served: Served) -> None:
    body = served.get("query", limit=5, shape="objects").json()
    assert body["rows"] == [{k: jsonable(v) for k, v in r.items()} for r in served.rows[:5]]
    assert [f["name"] for f in body["fields"]] == list(served.rows[0])
    assert body["fields"][3] == {"name": "人口", "type": "BIGINT", "item_type": "I"}
    assert body["version"] == 1


def test_full_text_search_needs_every_word(served: Served) -> None:
    body = served.get("query", q="贵阳 三2", limit=1000).json()
    check: Check = lambda r: r["地区"] == "贵阳" and "三2" in r["姓名"]  # noqa: E731
    assert ids(body) == expected_ids(served, check) != []


def test_fields_choose_and_order_columns(served: Served) -> None:
    body = served.get("query", fields="人口,身份证号", limit=2).json()
    assert [f["name"] for f in body["fields"]] == ["人口", "身份证号"]
    assert body["rows"] == [[r["人口"], r[ID]] for r in served.rows[:2]]


def test_sort_descending_with_nulls_last_then_by_storage_order(served: Served) -> None:
    body = served.get("query", sort="-人口,地区", fields="身份证号,人口,地区", limit=1000).json()
    ordered = sorted(
        served.rows,
        key=lambda r: (
            r["人口"] is None,
            -(r["人口"] or 0),
            r["地区"] is None,
            r["地区"] or "",
        ),
    )
    assert ids(body) == [r[ID] for r in ordered]


def test_offset_paging(served: Served) -> None:
    first = served.get("query", limit=50, offset=0, sort="收入").json()
    second = served.get("query", limit=50, offset=50, sort="收入").json()
    assert ids(first) + ids(second) == [r[ID] for r in served.rows[:100]]


@pytest.mark.parametrize(
    ("sort", "filters"),
    [("", {}), ("-人口", {}), ("地区,-登记时间", {"户籍": "false"}), ("-地区,人口", {"q": "张"})],
)
def test_cursor_walks_every_row_once(served: Served, sort: str, filters: dict[str, str]) -> None:
    everything = served.get("query", sort=sort, limit=1000, **filters).json()
    seen: list[str] = []
    params: dict[str, Any] = {"sort": sort, "limit": 7, **filters}
    pages = 0
    while True:
        body = served.get("query", **params).json()
        seen += ids(body)
        pages += 1
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == ids(everything)
    assert len(seen) == len(set(seen)) == everything["total"]
    assert pages == -(-len(seen) // 7)


def test_totals_exact_estimated_or_none(served: Served) -> None:
    exact = served.get("query", 地区="北京", limit=1, total="exact").json()
    assert exact["total"] == len(expected_ids(served, lambda r: r["地区"] == "北京"))
    assert exact["total_exact"] is True
    estimate = served.get("query", limit=1).json()
    assert estimate["total"] == 240 and estimate["total_exact"] is True  # unfiltered: known
    none = served.get("query", limit=1, total="none").json()
    assert none["total"] is None and none["total_exact"] is False


def test_distinct(served: Served) -> None:
    body = served.get("query", fields="地区", distinct="true").json()
    assert body["rows"] == [["上海"], ["北京"], ["广州"], ["贵阳"], [None]]
    assert body["total"] == 5 and body["next_cursor"] is None


def test_group_by_with_every_aggregate(served: Served) -> None:
    body = served.get(
        "query",
        group_by="地区",
        agg="count,count:人口,sum:人口,avg:收入,min:出生日期,max:人口",
        sort="-count,地区",
        shape="objects",
    ).json()
    names = [f["name"] for f in body["fields"]]
    assert names == [
        "地区",
        "count",
        "count(人口)",
        "sum(人口)",
        "avg(收入)",
        "min(出生日期)",
        "max(人口)",
    ]
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in served.rows:
        groups[row["地区"]].append(row)
    for got in body["rows"]:
        rows = groups[got["地区"]]
        people = [r["人口"] for r in rows if r["人口"] is not None]
        assert got["count"] == len(rows)
        assert got["count(人口)"] == len(people)
        assert got["sum(人口)"] == sum(people)
        assert got["avg(收入)"] == pytest.approx(float(sum(r["收入"] for r in rows) / len(rows)))
        assert got["min(出生日期)"] == min(r["出生日期"] for r in rows).isoformat()
        assert got["max(人口)"] == max(people)
    counts = [(-r["count"], r["地区"] or "") for r in body["rows"]]
    assert counts == sorted(counts) and len(counts) == 5


def test_aggregate_without_group_is_one_row(served: Served) -> None:
    body = served.get("query", agg="count,sum:收入", 户籍="true").json()
    chosen = [r for r in served.rows if r["户籍"]]
    assert body["rows"] == [[len(chosen), float(sum(r["收入"] for r in chosen))]]


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    return dict(error)


@pytest.mark.parametrize(
    ("params", "code", "named"),
    [
        ({"籍贯": "贵州"}, "unknown_column", "籍贯"),
        ({"籍贯__gt": "1"}, "unknown_column", "籍贯"),
        ({"fields": "姓名,电话"}, "unknown_column", "电话"),
        ({"sort": "-年龄"}, "unknown_column", "年龄"),
        ({"group_by": "民族"}, "unknown_column", "民族"),
        ({"人口__between": "1"}, "bad_operator", "between"),
        ({"人口__gt": "很多"}, "bad_value", "人口"),
        ({"出生日期": "2024-13-01"}, "bad_value", "出生日期"),
        ({"户籍": "也许"}, "bad_value", "户籍"),
        ({"收入__in": "1,abc"}, "bad_value", "收入"),
        ({"agg": "sum:姓名"}, "bad_aggregate", "姓名"),
        ({"agg": "median:人口"}, "bad_aggregate", "median"),
        ({"group_by": "地区", "sort": "姓名"}, "bad_sort", "姓名"),
        ({"limit": "5000"}, "limit_too_large", "1000"),
    ],
)
def test_mistakes_are_422_naming_the_problem(
    served: Served, params: dict[str, str], code: str, named: str
) -> None:
    error = error_of(served.get("query", **params), 422, code)
    assert named in error["message"]
    english = served.get("query", headers={**served.member, "Accept-Language": "en"}, **params)
    assert error_of(english, 422, code)["message"] != error["message"]


def test_cursor_cannot_mix_with_offset_or_another_sort(served: Served) -> None:
    cursor = served.get("query", limit=3, sort="人口").json()["next_cursor"]
    error_of(served.get("query", cursor=cursor, offset=3, sort="人口"), 422, "cursor_not_supported")
    # A cursor is signed for its query (docs/decisions/0015): another query's is a 400.
    error_of(served.get("query", cursor=cursor, sort="-人口"), 400, "bad_cursor")
    error_of(served.get("query", cursor="not-a-cursor!"), 400, "bad_cursor")


def test_no_data_yet_and_unknown_code(served: Served) -> None:
    empty = served.client.get(served.url("query", served.empty_code), headers=served.member)
    error_of(empty, 404, "no_data")
    missing = served.client.get(served.url("query", "999999/X0000"), headers=served.member)
    error_of(missing, 404, "entry_not_found")


def test_code_may_be_percent_encoded(served: Served) -> None:
    encoded = served.code.replace("/", "%2F")
    response = served.client.get(f"/api/v1/data/{encoded}/query?limit=1", headers=served.member)
    assert response.status_code == 200 and len(response.json()["rows"]) == 1
