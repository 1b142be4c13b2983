"""The real sample files (GBK, preambles, footnotes, merged titles, sub-headings) read into ``raw``.

Every expectation is taken from the file itself by another route — Python's codecs and csv
module, openpyxl, calamine's plain cell grid — never from the reader under test. The samples
folder is read-only: the readers read the files where they are.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import xlsxwriter
from python_calamine import CalamineWorkbook

from kuaishu.collect.raw import RawTable, no_progress, quote
from kuaishu.collect.readers import read_file
from kuaishu.collect.readers.layout import FOOTNOTE, PREAMBLE
from kuaishu.collect.readers.sheets import GROUP_COLUMN, SUBHEADING
from tests.samples import sample, uses

NBS = sample("nbs_province_population_gbk.csv")
CNEMC = sample("cnemc_stations_gbk.csv")
MOE = sample("moe_universities_2017.xls")
SHANDONG = sample("shandong_admission_2021.xlsx")
COVID = sample("covid_daily_24k.csv")
pytestmark = uses(NBS, CNEMC, MOE, SHANDONG, COVID)


def load(path: Path) -> tuple[duckdb.DuckDBPyConnection, RawTable]:
    con = duckdb.connect()
    return con, read_file(con, path, filename=path.name, progress=no_progress)


def staged(con: duckdb.DuckDBPyConnection, raw: RawTable) -> list[tuple[object, ...]]:
    """Each staged row as (source line, values in column order), in source order."""
    columns = ", ".join(quote(name) for name in raw.columns)
    return con.execute(
        f"SELECT {raw.line_sql} AS line, {columns} FROM raw ORDER BY line"  # noqa: S608
    ).fetchall()


def csv_lines(path: Path, encoding: str) -> list[tuple[int, list[str]]]:
    """Every record of a delimited file with its 1-based physical line, via the csv module."""
    with path.open(encoding=encoding, newline="") as fh:
        reader = csv.reader(fh)
        found, end = [], 0
        for fields in reader:
            found.append((end + 1, fields))
            end = reader.line_num
    return found


def as_staged(line: int, fields: list[str]) -> tuple[object, ...]:
    """A source record as the reader should stage it: text as written, empty fields NULL."""
    return (line, *(value if value != "" else None for value in fields))


# --- 国家统计局 分省年度数据: GBK, CRLF, three preamble lines, three footnote lines -------------


def test_nbs_population_is_decoded_from_gbk_without_its_preamble_and_footnotes() -> None:
    text = codecs.decode(NBS.read_bytes(), "gbk")
    lines = text.split("\r\n")
    records = csv_lines(NBS, "gbk")
    header_line = 4
    assert lines[header_line - 1].startswith("地区,2025年,2024年")
    header = next(fields for line, fields in records if line == header_line)
    data = [(line, f) for line, f in records if line > header_line and len(f) == len(header)]
    assert len(data) == 31  # the 31 provinces; the footnotes have one field

    con, raw = load(NBS)

    assert raw.columns == header
    assert raw.columns[:3] == ["地区", "2025年", "2024年"] and raw.columns[-1] == "2006年"
    assert raw.rows == 31
    assert raw.encoding == "gbk"
    assert staged(con, raw) == [as_staged(line, fields) for line, fields in data]
    rows = {row[1]: row for row in staged(con, raw)}
    beijing = rows["北京市"]
    assert beijing[0] == 5
    assert beijing[raw.columns.index("2024年") + 1] == "22470"
    assert rows["新疆维吾尔自治区"][0] == 35
    # Years the bureau has not published are empty in every row: NULL, not "" and not 0.
    assert {row[raw.columns.index("2025年") + 1] for row in rows.values()} == {None}


def test_nbs_preamble_and_footnotes_are_reported_with_their_lines() -> None:
    text = codecs.decode(NBS.read_bytes(), "gbk").split("\r\n")
    _con, raw = load(NBS)

    preamble = [(s.line, s.text) for s in raw.skipped if s.reason == PREAMBLE]
    footnotes = [(s.line, s.text) for s in raw.skipped if s.reason == FOOTNOTE]
    assert preamble == [(1, text[0]), (2, text[1]), (3, text[2])]
    assert preamble[0][1] == "数据库：分省年度数据"
    assert [line for line, _ in footnotes] == [36, 37, 38]
    assert footnotes[0][1].startswith("注：1.2005年、2015年为1%人口抽样调查")
    assert footnotes[1][1] == text[36]  # indented with full-width spaces, kept as written
    assert footnotes[1][1].startswith("\u3000\u3000\u30002.由于采用加权汇总的方法")
    assert footnotes[2][1] == "数据来源：国家统计局"
    assert any("表头在第 4 行" in note for note in raw.notes)
    assert any("跳过 6 行" in note for note in raw.notes)


def test_footnotes_of_an_export_larger_than_the_sample_keep_their_lines(tmp_path: Path) -> None:
    """The NBS layout at 200,000 rows: the footer is found in the file's tail, not its head."""
    rows = [f"地区{n},{n},{n * 2}" for n in range(200_000)]
    lines = [
        "数据库：分县数据",
        "地区,2024年,2023年",
        *rows,
        "",
        "注：样本数据。",
        "数据来源：国家统计局",
    ]
    path = tmp_path / "分县数据.csv"
    path.write_bytes("\r\n".join([*lines, ""]).encode("gbk"))
    assert path.stat().st_size > 2 << 20

    con, raw = load(path)

    assert raw.rows == 200_000
    footnotes = [(s.line, s.text) for s in raw.skipped if s.reason == FOOTNOTE]
    assert footnotes == [(200_004, "注：样本数据。"), (200_005, "数据来源：国家统计局")]
    line = raw.line_sql
    last = con.execute(f"SELECT max({line}), max_by(地区, {line}) FROM raw")  # noqa: S608
    assert last.fetchone() == (200_002, "地区199999")


# --- CNEMC monitoring stations: GBK, codes like 1001A, ten stations without coordinates --------


def test_cnemc_stations_match_the_file_value_for_value() -> None:
    records = csv_lines(CNEMC, "gbk")
    header, data = records[0][1], records[1:]
    assert len(data) == 2026

    con, raw = load(CNEMC)

    assert (
        raw.columns
        == header
        == [
            "监测点编码",
            "监测点名称",
            "城市",
            "经度",
            "纬度",
            "对照点",
            "省级行政区",
            "地级行政区",
        ]
    )
    assert raw.rows == 2026
    assert raw.encoding == "gbk"
    assert raw.skipped == []
    rows = staged(con, raw)
    # Coordinates stay text exactly as written: 40.66302 keeps its fifth decimal.
    assert rows == [as_staged(line, fields) for line, fields in data]
    assert rows[0] == (
        2,
        "1001A",
        "万寿西宫",
        "北京",
        "116.3621",
        "39.8784",
        "N",
        "北京市",
        "北京市",
    )
    assert rows[1][2] == "定陵(对照点)"
    assert sum(1 for row in rows if row[4] is None and row[5] is None) == 10


# --- 教育部 全国普通高等学校名单: BIFF8 .xls, merged title, 31 province sub-headings ---------------


def moe_grid() -> list[list[Any]]:
    return CalamineWorkbook.from_path(str(MOE)).get_sheet_by_index(0).to_python()


def test_moe_universities_header_rows_and_identifier_codes() -> None:
    grid = moe_grid()
    header = [str(value) for value in grid[2]]
    schools = [(n + 1, row) for n, row in enumerate(grid) if isinstance(row[0], float)]
    assert header[:3] == ["序号", "学校名称", "学校标识码"] and len(schools) == 2631

    con, raw = load(MOE)

    assert raw.columns == [*header, GROUP_COLUMN]
    assert raw.rows == 2631
    rows = staged(con, raw)
    assert [row[0] for row in rows] == [line for line, _ in schools]
    first = dict(zip(["line", *raw.columns], rows[0], strict=True))
    assert first == {
        "line": 5,
        "序号": "1",  # the cell holds the number 1.0; the row number is shown as 1
        "学校名称": "北京大学",
        "学校标识码": "4111010001",
        "主管部门": "教育部",
        "所在地": "北京市",
        "办学层次": "本科",
        "备注": None,
        GROUP_COLUMN: "北京市（92所）",
    }
    code = raw.columns.index("学校标识码") + 1
    # Identifier codes are text in the workbook and arrive as the same ten digits.
    assert [row[code] for row in rows] == [str(row[2]) for _, row in schools]
    assert all(re.fullmatch(r"\d{10}", str(row[code])) for row in rows)
    last = rows[-1]
    assert last[:4] == (2665, "2631", "新疆工业职业技术学院", "4265051060")
    remark = raw.columns.index("备注") + 1
    assert Counter(row[remark] for row in rows)["民办"] == sum(
        1 for _, row in schools if row[6] == "民办"
    )


def declared_count(heading: str) -> int:
    """北京市（92所） → 92."""
    found = re.fullmatch(r".+（(\d+)所）", heading)
    assert found, heading
    return int(found[1])


def test_moe_province_subheadings_become_the_group_column() -> None:
    grid = moe_grid()
    headings = [
        (n + 1, str(row[0]).strip())
        for n, row in enumerate(grid)
        if re.fullmatch(r".+（\d+所）", str(row[0]).strip())
    ]
    assert len(headings) == 31 and headings[0] == (4, "北京市（92所）")

    con, raw = load(MOE)

    skipped = [(s.line, s.text) for s in raw.skipped if s.reason == SUBHEADING]
    assert skipped == headings
    group = raw.columns.index(GROUP_COLUMN) + 1
    rows = staged(con, raw)
    per_group = Counter(row[group] for row in rows)
    # Each heading says how many schools follow it: that many rows carry it in 分组.
    assert per_group == {text: declared_count(text) for _, text in headings}
    heading_texts = {text for _, text in headings}
    assert not any(row[2] in heading_texts or row[1] in heading_texts for row in rows)
    assert any("31 个分组标题行" in note and "北京市（92所）" in note for note in raw.notes)


def test_moe_title_lines_above_the_header_are_skipped_and_reported() -> None:
    _con, raw = load(MOE)

    preamble = [(s.line, s.text) for s in raw.skipped if s.reason == PREAMBLE]
    assert preamble == [(1, "附件1："), (2, "全国普通高等学校名单\n（按学校办学层次和标识码排序）")]
    assert "表头在第 3 行。" in raw.notes
    assert len(raw.skipped) == 2 + 31  # nothing else dropped: no footnotes in this sheet


# --- 山东 2021 投档线: 17,150 rows, 前50名 in a number column ------------------------------------


def test_shandong_admissions_all_rows_with_the_text_in_the_rank_column() -> None:
    book = openpyxl.load_workbook(SHANDONG, read_only=True)
    sheet = book[book.sheetnames[0]]
    grid = [list(row) for row in sheet.iter_rows(values_only=True)]
    book.close()
    header, data = grid[0], grid[1:]
    assert len(data) == 17_150

    con, raw = load(SHANDONG)

    assert (
        raw.columns == header == ["专业代号及名称", "院校代号及名称", "投档计划数", "投档最低位次"]
    )
    assert raw.rows == 17_150
    rows = staged(con, raw)
    expected = [
        (n, *(None if value is None else str(value) for value in row))
        for n, row in enumerate(data, start=2)
    ]
    assert rows == expected
    assert rows[0] == (2, "16文科试验班类(通用类)", "A001北京大学", "22", "162")
    by_line = {row[0]: row for row in rows}
    assert by_line[14] == (14, "0Q文科试验班类(通用基础类)", "A003清华大学", "1", "前50名")
    assert [row[0] for row in rows if row[4] == "前50名"] == [14]
    assert [row[0] for row in rows if row[4] is None] == [17049]
    assert any("读取工作表“2”" in note for note in raw.notes)


# --- 新冠疫情每日统计: 24,159 rows, structural nulls, hierarchical region codes ------------------


def test_covid_daily_every_row_and_every_null_where_the_file_is_empty() -> None:
    records = csv_lines(COVID, "utf-8")
    header, data = records[0][1], records[1:]
    assert len(data) == 24_159

    con, raw = load(COVID)

    assert raw.columns == header
    assert raw.columns == [
        "date",
        "country",
        "countryCode",
        "province",
        "provinceCode",
        "city",
        "cityCode",
        "confirmed",
        "suspected",
        "cured",
        "dead",
    ]
    assert raw.rows == 24_159
    counts = ", ".join(f"count(*) FILTER (WHERE {quote(c)} IS NULL)" for c in header)
    nulls = con.execute(f"SELECT {counts} FROM raw").fetchone()  # noqa: S608
    empties = tuple(sum(1 for _, f in data if f[n] == "") for n in range(len(header)))
    assert nulls == empties
    assert nulls[header.index("cityCode")] == 4_419  # country and province rows have no city
    rows = staged(con, raw)
    assert rows == [as_staged(line, fields) for line, fields in data]
    # The first code that is not digits (北京 未公布来源) lies past the 20,480 rows a type sniffer
    # samples: it arrives as written, on its own line.
    late = next(row for row in rows if row[7] == "1100xx")
    assert (late[0], late[1], late[6], late[7]) == (21_140, "2020-03-05", "未公布来源", "1100xx")
    assert rows[2] == (
        4,
        "2019-12-01",
        "中国",
        "CN",
        "湖北省",
        "420000",
        "武汉市",
        "420100",
        "1",
        "0",
        "0",
        "0",
    )


# --- codes written with leading zeros ---------------------------------------------------------


def test_text_codes_keep_their_leading_zeros(tmp_path: Path) -> None:
    """No sample has a code starting with 0, so two small files stand in: 呼和浩特's postcode
    010000 must not become 10000 in a CSV, nor in a workbook cell stored as text."""
    text = tmp_path / "postcodes.csv"
    text.write_bytes("城市,邮政编码,区划代码\n呼和浩特市,010000,150100\n".encode("gbk"))
    book = tmp_path / "postcodes.xlsx"
    with xlsxwriter.Workbook(str(book)) as workbook:
        sheet = workbook.add_worksheet()
        sheet.write_row(0, 0, ["城市", "邮政编码", "区划代码"])
        sheet.write_string(1, 0, "呼和浩特市")
        sheet.write_string(1, 1, "010000")
        sheet.write_number(1, 2, 150100)

    for path in (text, book):
        con, raw = load(path)
        assert staged(con, raw) == [(2, "呼和浩特市", "010000", "150100")], path.name
