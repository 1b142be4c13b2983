"""The quality report: on a real 24k-row file against counts made independently with the csv
module, and on small tables with planted placeholders, invalid IDs, mismatches and duplicates."""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import pytest
from stdnum.cn import ric

from kuaishu.clean.identifiers import IdentifierKind
from kuaishu.clean.quality import DEFAULT_PLACEHOLDERS, quality_report
from kuaishu.collect.raw import quote
from tests.samples import sample, uses

COVID = sample("covid_daily_24k.csv")
COVID_ITEMS = {"date": "D", "confirmed": "I", "suspected": "I", "cured": "I", "dead": "I"}
TODAY = dt.date(2024, 6, 30)


def _schema(
    types: dict[str, str], *, keys: Sequence[str] = (), items: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    return [
        {"name": n, "type": t, "item_type": (items or {}).get(n, "C"), "key": n in keys}
        for n, t in types.items()
    ]


def _table(rows: Sequence[Sequence[Any]], types: dict[str, str]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    columns = ", ".join(f"{quote(n)} {t}" for n, t in types.items())
    con.execute(f"CREATE TABLE t ({columns})")
    if rows:
        marks = ", ".join("?" for _ in types)
        insert = f"INSERT INTO t VALUES ({marks})"  # noqa: S608 - only "?" marks; values are bound
        con.executemany(insert, [list(r) for r in rows])
    return con


def _column(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["columns"] if c["name"] == name)


def _citizen_id(born: dt.date, sex_digit: int, area: str = "110105") -> str:
    body = f"{area}{born:%Y%m%d}01{sex_digit}"
    return body + ric.calc_check_digit(body + "?")  # stdnum reads all but the last character


# --- 1. the real file ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def covid_rows() -> tuple[list[str], list[tuple[str, ...]]]:
    with COVID.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, [tuple(r) for r in reader]


@pytest.fixture(scope="module")
def covid_con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.read_csv(str(COVID), header=True, all_varchar=True).create("covid")
    return con


def _missing(value: str) -> bool:
    return value.strip() in DEFAULT_PLACEHOLDERS


@uses(COVID)
def test_real_file_matches_counts_made_with_the_csv_module(
    covid_con: duckdb.DuckDBPyConnection, covid_rows: tuple[list[str], list[tuple[str, ...]]]
) -> None:
    header, rows = covid_rows
    schema = _schema(dict.fromkeys(header, "VARCHAR"), keys=("date", "country"), items=COVID_ITEMS)
    report = quality_report(covid_con, "covid", schema)

    assert report["rows"] == len(rows) == 24_159
    assert [c["name"] for c in report["columns"]] == header
    completeness = []
    for i, name in enumerate(header):
        column = _column(report, name)
        missing = sum(_missing(r[i]) for r in rows)
        present = {r[i] for r in rows if not _missing(r[i])}
        assert column["nulls"] + column["placeholders"] == missing, name
        assert column["non_null"] + column["nulls"] == len(rows), name
        assert column["distinct"] == len(present), name
        assert column["completeness"] == pytest.approx(1 - missing / len(rows)), name
        completeness.append(1 - missing / len(rows))
    # The structural nulls: country-level rows have no province, province-level rows no city.
    assert _column(report, "city")["nulls"] == sum(r[5] == "" for r in rows) > 3_000
    assert report["dimensions"]["completeness"] == pytest.approx(sum(completeness) / len(header))

    confirmed = [int(r[7]) for r in rows]
    column = _column(report, "confirmed")
    assert (column["min"], column["max"]) == (min(confirmed), max(confirmed))
    assert column["zeros"] == confirmed.count(0) > 0
    assert (column["validity"], column["invalid"]) == (1.0, 0)
    dates = sorted(dt.date.fromisoformat(r[0]) for r in rows)
    assert (_column(report, "date")["min"], _column(report, "date")["max"]) == (
        dates[0].isoformat(),
        dates[-1].isoformat(),
    )
    assert _column(report, "country")["validity"] is None  # free text: nothing to check

    assert report["duplicates"] == len(rows) - len(set(rows))
    keys = Counter((r[0], r[1]) for r in rows if not _missing(r[0]) and not _missing(r[1]))
    assert report["key_duplicates"] == sum(n for n in keys.values() if n > 1) > 0
    assert report["key_conflicts"] == sum(1 for n in keys.values() if n > 1)
    surplus = sum(n - 1 for n in keys.values())
    assert report["dimensions"]["uniqueness"] == pytest.approx(1 - surplus / len(rows))


@uses(COVID)
def test_real_file_with_copied_rows_counts_the_copies(
    covid_con: duckdb.DuckDBPyConnection, covid_rows: tuple[list[str], list[tuple[str, ...]]]
) -> None:
    header, rows = covid_rows
    covid_con.execute(
        "CREATE TABLE copied AS SELECT * FROM covid "
        "UNION ALL SELECT * FROM covid WHERE date = '2020-01-20'"
    )
    copied = rows + [r for r in rows if r[0] == "2020-01-20"]
    report = quality_report(covid_con, "copied", _schema(dict.fromkeys(header, "VARCHAR")))

    assert report["rows"] == len(copied)
    assert report["duplicates"] == len(copied) - len(set(copied)) > 0
    assert "key_duplicates" not in report  # no key columns
    assert report["dimensions"]["uniqueness"] == pytest.approx(len(set(copied)) / len(copied))


# --- 2. placeholders and zeros ------------------------------------------------------------------


def test_placeholders_count_as_missing_and_zero_ages_are_counted() -> None:
    types = {"姓名": "VARCHAR", "年龄": "INTEGER", "收入": "VARCHAR"}
    rows = [
        ("张三", 0, "3500"),
        ("/", 35, "/"),
        ("暂无", 0, "4200.5"),
        (" - ", None, "abc"),
        (None, 41, ""),
        ("", 0, "0"),
        ("李四", 28, "暂无"),
        ("王五", 52, None),
    ]
    con = _table(rows, types)
    report = quality_report(con, "t", _schema(types, items={"年龄": "I", "收入": "N"}))

    name = _column(report, "姓名")
    assert (name["non_null"], name["nulls"], name["placeholders"]) == (7, 1, 4)
    assert name["distinct"] == 3  # 张三, 李四, 王五: placeholders are not values
    assert name["completeness"] == pytest.approx(3 / 8)
    age = _column(report, "年龄")
    assert (age["zeros"], age["min"], age["max"], age["nulls"]) == (3, 0, 52, 1)
    assert age["placeholders"] == 0
    income = _column(report, "收入")
    assert (income["placeholders"], income["nulls"]) == (3, 1)
    assert (income["invalid"], income["zeros"]) == (1, 1)  # "abc" is no number
    assert income["validity"] == pytest.approx(3 / 4)
    assert (income["min"], income["max"]) == (0.0, 4200.5)
    assert report["dimensions"]["completeness"] == pytest.approx((3 / 8 + 7 / 8 + 4 / 8) / 3)


def test_own_placeholder_list_replaces_the_default() -> None:
    types = {"备注": "VARCHAR"}
    con = _table([("待补充",), ("/",), ("正常",)], types)
    report = quality_report(con, "t", _schema(types), placeholders=["待补充"])
    assert _column(report, "备注")["placeholders"] == 1


# --- 3. identifier validity ---------------------------------------------------------------------


def test_identifier_column_with_two_invalid_of_ten() -> None:
    valid = [_citizen_id(dt.date(1980 + i, 1 + i, 10 + i), i % 10) for i in range(8)]
    wrong_check = valid[0][:17] + ("0" if valid[0][17] != "0" else "1")
    ids = [*valid, wrong_check, valid[1][:16]]
    types = {"身份证号": "VARCHAR", "备注": "VARCHAR"}
    con = _table([(v, "x") for v in ids] + [(None, "x")], types)
    report = quality_report(
        con, "t", _schema(types), identifiers={"身份证号": IdentifierKind.CITIZEN_ID}
    )

    column = _column(report, "身份证号")
    assert (column["validity"], column["invalid"], column["non_null"]) == (0.8, 2, 10)
    assert _column(report, "备注")["validity"] is None
    assert report["dimensions"]["validity"] == pytest.approx(0.8)


def test_unknown_column_is_refused() -> None:
    con = _table([("a",)], {"a": "VARCHAR"})
    with pytest.raises(ValueError, match="身份证号"):
        quality_report(
            con, "t", _schema({"a": "VARCHAR"}), identifiers={"身份证号": IdentifierKind.MOBILE}
        )


# --- 4. consistency -----------------------------------------------------------------------------


@pytest.mark.parametrize("birth_type", ["DATE", "VARCHAR"])
def test_id_birth_and_sex_digits_against_the_items(birth_type: str) -> None:
    born = [dt.date(1970 + i, 1 + i % 12, 1 + i) for i in range(10)]
    sexes = ["男" if i % 2 else "女" for i in range(10)]
    ids = [
        _citizen_id(b, 2 * (i % 5) + (s == "男"))
        for i, (b, s) in enumerate(zip(born, sexes, strict=True))
    ]
    birth: list[Any] = list(born)
    birth[2] = dt.date(1999, 9, 9)  # planted birth mismatches
    birth[5] = born[5] + dt.timedelta(days=1)
    sexes[3] = "女" if sexes[3] == "男" else "男"  # planted sex mismatch
    sexes[7] = "未知"  # not checked: no sex to compare
    ids[8] = ids[8][:15]  # not checked: too short to hold the digits
    birth[9] = None
    if birth_type == "VARCHAR":
        birth = [
            b if b is None else f"{b:%Y%m%d}" if i % 2 else b.isoformat()
            for i, b in enumerate(birth)
        ]
    types = {"身份证号": "VARCHAR", "出生日期": birth_type, "性别": "VARCHAR"}
    con = _table(list(zip(ids, birth, sexes, strict=True)), types)
    report = quality_report(
        con,
        "t",
        _schema(types, items={"出生日期": "D"}),
        consistency=[("id_birth_date", "身份证号", "出生日期"), ("id_sex", "身份证号", "性别")],
    )

    by_kind = {c["kind"]: c for c in report["consistency_checks"]}
    assert (by_kind["id_birth_date"]["checked"], by_kind["id_birth_date"]["mismatched"]) == (8, 2)
    assert (by_kind["id_sex"]["checked"], by_kind["id_sex"]["mismatched"]) == (8, 1)
    assert report["dimensions"]["consistency"] == pytest.approx(1 - 3 / 16)


def test_without_consistency_checks_the_dimension_does_not_apply() -> None:
    con = _table([("a",)], {"a": "VARCHAR"})
    report = quality_report(con, "t", _schema({"a": "VARCHAR"}))
    assert report["dimensions"]["consistency"] is None
    assert report["consistency_checks"] == []


# --- 5. timeliness ------------------------------------------------------------------------------


def _timely(days_old: int, cycle: str = "monthly") -> dict[str, Any]:
    con = _table([("a",)], {"a": "VARCHAR"})
    return quality_report(
        con,
        "t",
        _schema({"a": "VARCHAR"}),
        update_cycle=cycle,
        data_as_of=TODAY - dt.timedelta(days=days_old),
        today=TODAY,
    )


def test_monthly_data_ten_days_old_is_timely_seventy_days_old_is_late() -> None:
    fresh, late, stale = _timely(10), _timely(70), _timely(200)
    assert fresh["dimensions"]["timeliness"] == 1.0
    assert fresh["score"] == 100.0
    # 70 days is 39 days past a 31-day cycle; it reaches 0 at three cycles (93 days) late.
    assert late["dimensions"]["timeliness"] == pytest.approx(1 - 39 / 93)
    assert 0 < late["score"] < fresh["score"]
    assert stale["dimensions"]["timeliness"] == 0.0
    assert _timely(70, "yearly")["dimensions"]["timeliness"] == 1.0
    assert _timely(400, "irregular")["dimensions"]["timeliness"] is None


# --- 6. key duplicates --------------------------------------------------------------------------


def test_rows_sharing_a_key_value_are_counted() -> None:
    types = {"编号": "VARCHAR", "名称": "VARCHAR"}
    rows = [("1", "甲"), ("2", "乙"), ("2", "丙"), ("3", "丁"), ("3", "戊"), ("3", "戊"),
            (None, "己"), ("/", "庚"), ("/", "辛"), ("4", "壬")]  # fmt: skip
    con = _table(rows, types)
    report = quality_report(con, "t", _schema(types, keys=("编号",)))

    assert report["key_duplicates"] == 5  # 2, 2, 3, 3, 3; a missing key is no duplicate
    assert report["key_conflicts"] == 2
    assert report["duplicates"] == 1  # ("3", "戊") twice
    assert _column(report, "编号")["uniqueness"] == pytest.approx(4 / 7)
    assert _column(report, "名称")["uniqueness"] is None
    assert report["dimensions"]["uniqueness"] == pytest.approx(1 - 3 / 10)
