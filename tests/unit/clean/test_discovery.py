"""Sensitive-data discovery on synthetic registers: a population file and an enterprise file made
with Faker, and columns of numbers that are valid ID numbers and valid credit codes at once."""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pytest
from faker import Faker
from stdnum import luhn
from stdnum.cn import ric, uscc

from kuaishu.clean.discovery import Finding, SensitiveKind, discover
from kuaishu.clean.identifiers import USCC_ALPHABET, IdentifierKind, is_valid
from kuaishu.clean.masking import MaskMethod, mask_sql
from kuaishu.clean.sqltext import literal
from kuaishu.collect.raw import quote

PRIVATE, NOT_SENSITIVE = "涉及用户隐私", "非敏感"
ROWS = 800
AMBIGUOUS = "430407199312020025"  # passes GB 11643 and GB 32100 (STANDARDS.md §2)

POPULATION = ["姓名", "身份证号", "性别", "手机", "住址", "开户行卡号", "邮箱", "车牌", "备注",
              "电话", "曾用名"]  # fmt: skip
ENTERPRISES = ["企业名称", "统一社会信用代码", "法定代表人", "注册地址"]


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return f"read_csv({literal(str(path))}, header = true, all_varchar = true)"


def _bank_card(rnd: random.Random) -> str:
    body = "62" + "".join(rnd.choice("0123456789") for _ in range(rnd.choice((14, 15, 16))))
    return body + luhn.calc_check_digit(body)


def _credit_code(rnd: random.Random) -> str:
    body = (
        "91"
        + rnd.choice(("520102", "520115", "110105"))
        + "".join(rnd.choice(USCC_ALPHABET) for _ in range(9))
    )
    return body + uscc.calc_check_digit(body)


def _wrong_check_digit(number: str) -> str:
    return number[:-1] + next(c for c in "0123456789X" if c != number[-1])


def _both_valid(rnd: random.Random, count: int) -> list[str]:
    """Strings that are a valid ID number (with a real birth date) and a valid credit code."""
    found = [AMBIGUOUS]
    while len(found) < count:
        born = f"{rnd.randint(1950, 2005)}{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}"
        body = f"430407{born}{rnd.randint(0, 999):03d}"
        number = body + ric.calc_check_digit(body + "0")  # stdnum drops the last character
        if number[-1] == uscc.calc_check_digit(number):
            found.append(number)
    return found


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> str:
    Faker.seed(20240601)
    fake, rnd = Faker("zh_CN"), random.Random(20240601)
    rows = []
    for i in range(ROWS):
        ssn = fake.ssn()
        rows.append([
            fake.name(),
            _wrong_check_digit(ssn) if i % 20 == 0 else ssn,  # 5% invalid
            rnd.choice("男女"),
            fake.phone_number(),
            fake.address(),
            _bank_card(rnd),
            fake.email(),
            fake.license_plate(),
            fake.sentence(),
            f"0851-{rnd.randint(2000000, 8999999)}",  # landlines under a phone header
            "",
        ])  # fmt: skip
    return _write_csv(tmp_path_factory.mktemp("population") / "人口.csv", POPULATION, rows)


@pytest.fixture(scope="module")
def enterprises(tmp_path_factory: pytest.TempPathFactory) -> str:
    Faker.seed(20240602)
    fake, rnd = Faker("zh_CN"), random.Random(20240602)
    rows = [[fake.company(), _credit_code(rnd), fake.name(), fake.address()] for _ in range(ROWS)]
    path = tmp_path_factory.mktemp("enterprises") / "企业.parquet"
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t ({', '.join(f'{quote(c)} VARCHAR' for c in ENTERPRISES)})")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    con.execute(f"COPY t TO {literal(str(path))} (FORMAT parquet)")
    return f"read_parquet({literal(str(path))})"


def _by_column(findings: list[Finding]) -> dict[str, Finding]:
    return {f.column: f for f in findings}


def test_population_columns_are_found_with_their_kinds(population: str) -> None:
    found = _by_column(discover(duckdb.connect(), population, POPULATION))

    assert {c: f.kind for c, f in found.items()} == {
        "姓名": SensitiveKind.PERSON_NAME,
        "身份证号": SensitiveKind.CITIZEN_ID,
        "手机": SensitiveKind.MOBILE,
        "住址": SensitiveKind.ADDRESS,
        "开户行卡号": SensitiveKind.BANK_CARD,
        "邮箱": SensitiveKind.EMAIL,
        "车牌": SensitiveKind.LICENCE_PLATE,
    }  # not 性别, 备注 (free text), 电话 (landlines) nor the empty 曾用名
    assert 0.9 <= found["身份证号"].share <= 0.97  # the 5% with a wrong check digit do not count
    assert found["身份证号"].evidence.startswith("表头“身份证号”；抽样 9")
    assert "GB 11643" in found["身份证号"].evidence
    assert {f.level for f in found.values()} == {PRIVATE}


def test_proposed_masking_fits_the_kind(population: str) -> None:
    found = _by_column(discover(duckdb.connect(), population, POPULATION))

    proposed = {c: (f.method, f.params) for c, f in found.items()}
    assert proposed["身份证号"] == (MaskMethod.MASK, {"first": 6, "last": 4})
    assert proposed["手机"] == (MaskMethod.MASK, {"first": 3, "last": 4})
    assert proposed["姓名"] == (MaskMethod.MASK, {"first": 1})
    assert proposed["开户行卡号"] == (MaskMethod.MASK, {"last": 4})
    assert proposed["住址"] == (MaskMethod.GENERALISE, {"to": "district"})


def test_proposed_masking_hides_the_values(population: str) -> None:
    con = duckdb.connect()
    findings = discover(con, population, POPULATION)
    shown = ", ".join(
        f"{quote(f.column)}, {mask_sql(f.method, quote(f.column), f.params, column_type='VARCHAR')}"
        for f in findings
        if f.method is not None
    )
    query = f"SELECT {shown} FROM {population}"  # noqa: S608 — quoted names, the test's own file
    rows = con.execute(query).fetchall()

    masked_columns = [f.column for f in findings if f.method is not None]
    assert len(rows) == ROWS
    for row in rows:
        pairs = dict(zip(masked_columns, zip(row[::2], row[1::2], strict=True), strict=True))
        assert all(masked != original for original, masked in pairs.values())
        (card_id, masked_id), (name, masked_name) = pairs["身份证号"], pairs["姓名"]
        assert masked_id == card_id[:6] + "*" * 8 + card_id[-4:]  # no birth date left
        assert masked_name == name[0] + "*" * (len(name) - 1)
        assert pairs["手机"][1][3:7] == "****"


def test_credit_codes_are_reported_as_public(enterprises: str) -> None:
    found = _by_column(discover(duckdb.connect(), enterprises, ENTERPRISES))

    assert set(found) == {"统一社会信用代码", "法定代表人", "注册地址"}  # 企业名称 is not a name
    code = found["统一社会信用代码"]
    assert (code.kind, code.share, code.level, code.method) == (
        SensitiveKind.CREDIT_CODE, 1.0, NOT_SENSITIVE, None,
    )  # fmt: skip
    assert found["法定代表人"].kind == SensitiveKind.PERSON_NAME
    assert found["法定代表人"].level == PRIVATE
    # An organisation's registered address is public; a resident's (above) is not.
    assert (found["注册地址"].kind, found["注册地址"].level) == (
        SensitiveKind.ADDRESS, NOT_SENSITIVE,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("header", "neighbours", "kind", "reason"),
    [
        ("证件号码", ["备注"], SensitiveKind.CITIZEN_ID, "按表头判定"),
        ("统一社会信用代码", ["备注"], SensitiveKind.CREDIT_CODE, "按表头判定"),
        # The header outranks the neighbours.
        ("公民身份号码", ["企业名称", "法定代表人"], SensitiveKind.CITIZEN_ID, "按表头判定"),
        ("编码", ["姓名", "性别", "出生日期"], SensitiveKind.CITIZEN_ID, "按邻列“姓名”判定"),
        ("编码", ["企业名称", "法定代表人"], SensitiveKind.CREDIT_CODE, "按邻列“企业名称”判定"),
        # No context at all: the more sensitive reading.
        ("编码", ["备注"], SensitiveKind.CITIZEN_ID, "另有 100% 通过 GB 32100 校验"),
    ],
)
def test_a_number_valid_both_ways_is_decided_by_context(
    tmp_path: Path, header: str, neighbours: list[str], kind: SensitiveKind, reason: str
) -> None:
    numbers = _both_valid(random.Random(7), 40)
    assert all(
        is_valid(IdentifierKind.CITIZEN_ID, n) and is_valid(IdentifierKind.CREDIT_CODE, n)
        for n in numbers
    )
    columns = [*neighbours, header]
    relation = _write_csv(
        tmp_path / "t.csv", columns, [[*(["x"] * len(neighbours)), n] for n in numbers]
    )

    found = _by_column(discover(duckdb.connect(), relation, columns))

    assert found[header].kind == kind
    assert found[header].share == 1.0
    assert reason in found[header].evidence


def test_a_few_matches_count_only_under_an_explicit_header(tmp_path: Path) -> None:
    # 30% mobiles among landlines: a phone column with some mobiles in it, but a column named
    # 备用 with the same values is below the share that values alone must reach.
    values = [["13800138000" if i % 10 < 3 else f"0851-{5800000 + i}"] * 2 for i in range(100)]
    relation = _write_csv(tmp_path / "t.csv", ["联系电话", "备用"], values)
    con = duckdb.connect()

    found = _by_column(discover(con, relation, ["联系电话", "备用"]))
    assert list(found) == ["联系电话"]
    assert (found["联系电话"].kind, found["联系电话"].share) == (SensitiveKind.MOBILE, 0.3)

    lenient = _by_column(discover(con, relation, ["联系电话", "备用"], min_share=0.25))
    assert set(lenient) == {"联系电话", "备用"}


def test_coordinates_of_people_are_private_and_of_places_not(tmp_path: Path) -> None:
    rnd = random.Random(3)
    points = [(f"{rnd.uniform(106, 107):.6f}", f"{rnd.uniform(26, 27):.6f}") for _ in range(50)]
    people = _write_csv(
        tmp_path / "people.csv",
        ["姓名", "经度", "纬度", "位置"],
        [["张三", lng, lat, f"{lng},{lat}"] for lng, lat in points],
    )
    places = _write_csv(
        tmp_path / "places.csv", ["站点", "经度", "纬度"], [["公交站", *p] for p in points]
    )
    con = duckdb.connect()

    found = _by_column(discover(con, people, ["姓名", "经度", "纬度", "位置"]))
    assert found["纬度"].kind == SensitiveKind.COORDINATE
    assert (found["纬度"].level, found["纬度"].method) == (PRIVATE, MaskMethod.GENERALISE)
    assert found["纬度"].params == {"to": "round", "digits": 2}
    assert (found["位置"].kind, found["位置"].method) == (SensitiveKind.COORDINATE, MaskMethod.NULL)

    public = _by_column(discover(con, places, ["站点", "经度", "纬度"]))
    assert {f.level for f in public.values()} == {NOT_SENSITIVE}
    assert set(public) == {"经度", "纬度"}


def test_decimals_without_a_coordinate_header_are_not_coordinates(tmp_path: Path) -> None:
    relation = _write_csv(
        tmp_path / "t.csv", ["金额"], [[f"{26 + i / 1000:.3f}"] for i in range(50)]
    )
    assert discover(duckdb.connect(), relation, ["金额"]) == []
