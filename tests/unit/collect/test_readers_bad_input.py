"""Files that cannot be loaded as sent: each is refused with a stable code and a message saying
what is wrong and, where the reader can tell, on which line. Inputs are made in ``tmp_path``."""

from __future__ import annotations

import json
import struct
import time
import zipfile
from pathlib import Path
from typing import Any

import duckdb
import pytest
import xlsxwriter

from kuaishu.collect.raw import LoadError, RawTable, no_progress
from kuaishu.collect.readers import read_file
from kuaishu.collect.readers.common import MAX_COLUMNS
from kuaishu.settings import get_settings

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"


def read(
    path: Path, *, filename: str | None = None, options: dict[str, Any] | None = None
) -> tuple[duckdb.DuckDBPyConnection, RawTable]:
    con = duckdb.connect()
    raw = read_file(
        con, path, filename=filename or path.name, options=options, progress=no_progress
    )
    return con, raw


def refused(path: Path, *, filename: str | None = None, **options: str) -> LoadError:
    with pytest.raises(LoadError) as caught:
        read(path, filename=filename, options=options or None)
    return caught.value


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def workbook(path: Path, rows: list[list[object]]) -> Path:
    with xlsxwriter.Workbook(str(path)) as book:
        sheet = book.add_worksheet()
        for n, row in enumerate(rows):
            for column, value in enumerate(row):
                if value is not None:
                    sheet.write(n, column, value)
    return path


# --- not what the name says -------------------------------------------------------------------


def test_png_named_csv_is_refused_naming_what_it_really_is(tmp_path: Path) -> None:
    error = refused(write(tmp_path, "人口.csv", PNG + bytes(200)))

    assert error.code == "format_mismatch"
    assert "人口.csv" in error.localized() and "PNG 图片" in error.localized()
    assert error.details["declared"] == "csv"


def test_png_without_a_known_extension_is_an_unsupported_format(tmp_path: Path) -> None:
    error = refused(write(tmp_path, "upload.bin", PNG + bytes(200)))

    assert error.code == "unsupported_format"
    assert "PNG 图片" in error.localized()


def test_html_page_named_xls_is_refused_with_the_save_as_hint(tmp_path: Path) -> None:
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body><table>"
        "<tr><td>地区</td><td>人口</td></tr><tr><td>北京市</td><td>2185</td></tr>"
        "</table></body></html>"
    )
    error = refused(write(tmp_path, "导出.xls", page.encode()))

    assert error.code == "format_mismatch"
    message = error.localized()
    assert "HTML 网页" in message and "另存为 .xlsx" in message
    assert "Excel 97-2003" in message


# --- damaged workbooks and zip bombs ----------------------------------------------------------


@pytest.mark.parametrize("name", ["名单.xlsx", "名单.xls"])
def test_truncated_xlsx_is_reported_as_cut_short(tmp_path: Path, name: str) -> None:
    whole = workbook(
        tmp_path / "whole.xlsx", [["序号", "名称"], *([n, f"学校{n}"] for n in range(3000))]
    )
    assert read(whole)[1].rows == 3000  # the uncut workbook loads
    data = whole.read_bytes()

    error = refused(write(tmp_path, name, data[: len(data) // 2]))

    assert error.code == "excel_corrupt"
    assert name in error.localized() and "不完整" in error.localized()


def test_zip_bomb_dressed_as_xlsx_is_refused_before_it_is_unpacked(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as member:
            zeros = bytes(8 << 20)
            for _ in range(25):  # 200 MB of zeros, about 200 KB deflated
                member.write(zeros)
    assert path.stat().st_size < 1 << 20

    started = time.monotonic()
    error = refused(path)

    assert time.monotonic() - started < 5
    assert error.code == "zip_bomb"
    assert error.details["member"] == "xl/worksheets/sheet1.xml"
    assert error.details["bytes"] == 200 << 20
    assert "压缩炸弹" in error.localized() and "200 MB" in error.localized()


def _declare_size(data: bytearray, member: str, size: int) -> None:
    """Overwrite a member's uncompressed size in its local header and central directory entry."""
    name = member.encode()
    local = data.find(b"PK\x03\x04")
    while data[local + 30 : local + 30 + len(name)] != name:
        local = data.find(b"PK\x03\x04", local + 4)
    struct.pack_into("<I", data, local + 22, size)
    entry = data.find(b"PK\x01\x02")
    while data[entry + 46 : entry + 46 + len(name)] != name:
        entry = data.find(b"PK\x01\x02", entry + 4)
    struct.pack_into("<I", data, entry + 24, size)


def test_zip_member_lying_about_its_size_is_caught_while_unpacking(tmp_path: Path) -> None:
    """64 MB of zeros declared as 1,000 bytes: the declared ratio looks harmless."""
    path = tmp_path / "liar.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", bytes(64 << 20))
    data = bytearray(path.read_bytes())
    _declare_size(data, "xl/worksheets/sheet1.xml", 1000)
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("xl/worksheets/sheet1.xml").file_size == 1000

    error = refused(path)

    assert error.code == "excel_corrupt"
    assert "xl/worksheets/sheet1.xml" in error.details["reason"]


# --- rows with the wrong number of fields -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "found"),
    [
        ("地区,男,女\n北京市,1,2\n天津市,3\n河北省,5,6\n", 3, 2),
        ("地区,男,女\n北京市,1,2\n天津市,3,4,5\n", 3, 4),
        # A title line above the header still counts: the bad row is the file's fourth line.
        ("人口统计表\n地区,男,女\n北京市,1,2\n天津市,3\n", 4, 2),
        # A quoted value spanning two lines: the bad row starts on physical line 4.
        ('地区,说明,女\n北京市,"第一行\n第二行",2\n天津市,3\n', 4, 2),
    ],
    ids=["too-few", "too-many", "after-title", "after-multiline-value"],
)
def test_row_with_wrong_field_count_stops_the_load_at_its_line(
    tmp_path: Path, text: str, line: int, found: int
) -> None:
    error = refused(write(tmp_path, "人口.csv", text.encode()))

    assert error.code == "field_count"
    assert error.details["line"] == line
    assert f"第 {line} 行有 {found} 个字段，而表头有 3 列" in error.localized()


def test_wrong_field_count_deep_in_a_large_file_names_the_right_line(tmp_path: Path) -> None:
    text = "a,b,c\n" + "1,2,3\n" * 300_000 + "4,5\n"
    error = refused(write(tmp_path, "big.csv", text.encode()))

    assert error.code == "field_count"
    assert error.details["line"] == 300_002
    assert "第 300002 行" in error.localized()


def test_sheet_row_with_a_value_beyond_the_header_names_its_cell(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "表.xlsx", [["地区", "男", "女"], ["北京市", 1, 2], ["天津市", 3, 4, 99]]
    )

    error = refused(path)

    assert error.code == "empty_header"
    assert error.details == {"line": 3, "column": "D"}
    assert "第 3 行 D 列有数据" in error.localized()


def test_sheet_row_shorter_than_the_header_is_padded_with_nulls(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "表.xlsx",
        [["地区", "男", "女"], ["北京市", 1, 2], ["天津市", 3], ["河北省", 5, 6]],
    )

    con, raw = read(path)

    assert raw.rows == 3
    assert con.execute("SELECT _line, 地区, 男, 女 FROM raw ORDER BY _line").fetchall() == [
        (2, "北京市", "1", "2"),
        (3, "天津市", "3", None),
        (4, "河北省", "5", "6"),
    ]


def test_sheet_row_of_one_text_cell_after_the_data_is_reported_as_a_note(tmp_path: Path) -> None:
    """In a table of three or more columns a lone label at the end reads as a note: it is not
    staged, and it is listed with its line rather than dropped silently."""
    path = workbook(tmp_path / "表.xlsx", [["地区", "男", "女"], ["北京市", 1, 2], ["天津市"]])

    con, raw = read(path)

    assert raw.rows == 1
    assert con.execute("SELECT 地区 FROM raw").fetchall() == [("北京市",)]
    assert [(s.line, s.text) for s in raw.skipped] == [(3, "天津市")]


# --- NUL bytes and mixed encodings ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "line"),
    [
        ("地区,人口\n北京市,2185\n天津市,13\x0063\n".encode(), 3),
        ("地区,人口\n北京市,2185\n天津市,13\x0063\n".encode("gbk"), 3),
        (("a,b\n" + "1,2\n" * 400_000 + "3,\x004\n").encode(), 400_002),  # past the sample
    ],
    ids=["utf-8", "gbk", "utf-8-past-first-megabyte"],
)
def test_nul_byte_in_csv_is_refused_with_its_line(tmp_path: Path, data: bytes, line: int) -> None:
    error = refused(write(tmp_path, "data.csv", data))

    assert error.code == "nul_byte"
    assert error.details == {"line": line}
    assert f"第 {line} 行含有空字符" in error.localized()


PASTED = "清华大学,北京市\n南开大学,天津市\n"
# These UTF-8 bytes happen to decode as GB18030 too: only the UTF-8 check finds them.
DECODABLE = "清华大学,北京\n清华大学,北京\n"


@pytest.mark.parametrize(
    ("first", "pasted", "then", "lines", "message"),
    [
        ("utf-8", PASTED, "gbk", 3, "第 5 行不是 UTF-8 编码（前面的行是）"),
        ("gbk", PASTED, "utf-8", 3, "第 5 行不是 GBK 编码（前面的行是）"),
        ("gbk", DECODABLE, "utf-8", 3, "第 5 行是 UTF-8 编码，而文件其余部分是"),
        # Past the first megabyte, where the encoding was guessed from.
        ("utf-8", PASTED, "gbk", 120_000, "第 120002 行不是 UTF-8 编码（前面的行是）"),
        ("gbk", PASTED, "utf-8", 120_000, "第 120002 行不是 GBK 编码（前面的行是）"),
        ("gbk", DECODABLE, "utf-8", 120_000, "第 120002 行是 UTF-8 编码，而文件其余部分是 GBK"),
    ],
    ids=[
        "utf-8-then-gbk",
        "gbk-then-utf-8",
        "gbk-then-utf-8-decodable",
        "utf-8-then-gbk-late",
        "gbk-then-utf-8-late",
        "gbk-then-utf-8-decodable-late",
    ],
)
def test_mixed_encodings_are_refused_at_the_first_line_that_differs(
    tmp_path: Path, first: str, pasted: str, then: str, lines: int, message: str
) -> None:
    head = ("学校名称,所在地\n" + "北京大学,北京市\n" * lines).encode(first)

    error = refused(write(tmp_path, "名单.csv", head + pasted.encode(then)))

    assert error.code == "mixed_encoding"
    assert error.details["line"] == lines + 2
    assert message in error.localized()


# --- very wide files --------------------------------------------------------------------------


def test_ten_thousand_columns_load_quickly_from_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "max_columns", 10_000)  # raised by the operator
    width = 10_000
    text = ",".join(f"指标{n}" for n in range(width)) + "\n"
    text += ",".join(str(n) for n in range(width)) + "\n"
    path = write(tmp_path, "wide.csv", text.encode())

    started = time.monotonic()
    con, raw = read(path)

    assert time.monotonic() - started < 10
    assert len(raw.columns) == width and raw.rows == 1
    assert con.execute('SELECT "指标0", "指标9999" FROM raw').fetchone() == ("0", "9999")


def test_ten_thousand_columns_load_quickly_from_xlsx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "max_columns", 10_000)  # raised by the operator
    width = 10_000
    path = workbook(
        tmp_path / "wide.xlsx", [[f"指标{n}" for n in range(width)], list(range(width))]
    )

    started = time.monotonic()
    con, raw = read(path)

    assert time.monotonic() - started < 10  # one ALTER TABLE per column took over 30 s
    assert len(raw.columns) == width and raw.rows == 1
    assert con.execute('SELECT _line, "指标0", "指标9999" FROM raw').fetchone() == (2, "0", "9999")


def test_more_columns_than_the_limit_are_refused_plainly(tmp_path: Path) -> None:
    width = MAX_COLUMNS + 1
    text = ",".join(f"c{n}" for n in range(width)) + "\n" + ",".join("1" * width) + "\n"

    started = time.monotonic()
    error = refused(write(tmp_path, "wider.csv", text.encode()))

    assert time.monotonic() - started < 10
    assert error.code == "too_many_columns"
    assert f"文件有 {width} 列，超过上限 {MAX_COLUMNS} 列" in error.localized()


# --- header problems --------------------------------------------------------------------------


def test_duplicate_header_names_both_columns(tmp_path: Path) -> None:
    error = refused(write(tmp_path, "表.csv", "地区,人口,地区\n北京市,2185,京\n".encode()))

    assert error.code == "duplicate_header"
    assert error.details == {"name": "地区", "columns": [1, 3]}
    assert "列名“地区”重复（第 1 列和第 3 列）" in error.localized()


def test_header_names_differing_only_in_case_are_duplicates(tmp_path: Path) -> None:
    error = refused(write(tmp_path, "t.csv", b"Name,name\n1,2\n"))

    assert error.code == "duplicate_header"
    assert "仅大小写不同（第 1 列和第 2 列）" in error.localized()


def test_duplicate_header_in_a_sheet(tmp_path: Path) -> None:
    path = workbook(tmp_path / "表.xlsx", [["地区", "人口", "地区"], ["北京市", 2185, "京"]])

    error = refused(path)

    assert error.code == "duplicate_header"
    assert error.details == {"name": "地区", "columns": [1, 3]}


@pytest.mark.parametrize(
    ("text", "columns"),
    [("地区,,女\n北京市,1,2\n", [2]), ("地区,男,\n北京市,1,\n", [3])],
    ids=["middle", "trailing-delimiter"],
)
def test_empty_header_in_csv_names_the_column(
    tmp_path: Path, text: str, columns: list[int]
) -> None:
    error = refused(write(tmp_path, "表.csv", text.encode()))

    assert error.code == "empty_header"
    assert error.details == {"columns": columns}
    assert f"表头第 {columns[0]} 列的列名为空" in error.localized()


def test_empty_header_over_an_empty_column_of_a_sheet_drops_the_column(tmp_path: Path) -> None:
    path = workbook(tmp_path / "表.xlsx", [["地区", None, "女"], ["北京市", None, 2]])

    con, raw = read(path)

    assert raw.columns == ["地区", "女"]
    assert con.execute("SELECT _line, 地区, 女 FROM raw").fetchall() == [(2, "北京市", "2")]


# --- empty input ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["空.csv", "空.xlsx", "空.json"])
def test_empty_file_is_refused_whatever_its_name(tmp_path: Path, name: str) -> None:
    error = refused(write(tmp_path, name, b""))

    assert error.code == "empty_file"
    assert error.localized() == "文件为空。"


def test_file_of_blank_lines_is_empty(tmp_path: Path) -> None:
    error = refused(write(tmp_path, "空.csv", b"\r\n\r\n   \r\n"))

    assert error.code == "empty_file"


def test_sheet_without_cells_is_empty_and_named(tmp_path: Path) -> None:
    error = refused(workbook(tmp_path / "空.xlsx", []))

    assert error.code == "empty_file"
    assert "工作表“Sheet1”为空" in error.localized()


def test_header_only_csv_loads_with_no_rows(tmp_path: Path) -> None:
    con, raw = read(write(tmp_path, "表.csv", "地区,人口\r\n".encode()))

    assert raw.columns == ["地区", "人口"] and raw.rows == 0
    assert con.execute("SELECT count(*) FROM raw").fetchone() == (0,)


# --- JSON that is not records -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "record"),
    [
        ([1, 2, 3], 1),
        (["北京市", "天津市"], 1),
        ([{"地区": "北京市"}, {"地区": "天津市"}, ["河北省"]], 3),
    ],
    ids=["numbers", "strings", "third-is-array"],
)
def test_json_array_element_that_is_not_an_object_is_named(
    tmp_path: Path, document: list[object], record: int
) -> None:
    error = refused(write(tmp_path, "d.json", json.dumps(document, ensure_ascii=False).encode()))

    assert error.code == "json_not_records"
    assert error.details == {"record": record}
    assert f"第 {record} 条记录不是对象" in error.localized()


def test_json_lines_with_a_line_that_is_not_an_object(tmp_path: Path) -> None:
    text = '{"地区": "北京市"}\n{"地区": "天津市"}\n["河北省"]\n'
    error = refused(write(tmp_path, "d.jsonl", text.encode()))

    assert error.code == "json_not_records"
    assert "第 3 条记录不是对象" in error.localized()


def test_records_in_an_envelope_that_are_not_objects(tmp_path: Path) -> None:
    document = {"success": True, "result": {"records": [{"地区": "北京市"}, "天津市"]}}
    error = refused(write(tmp_path, "d.json", json.dumps(document, ensure_ascii=False).encode()))

    assert error.code == "json_not_records"
    assert error.details == {"record": 2}


def test_json_object_without_any_array_of_records(tmp_path: Path) -> None:
    document = {"success": True, "result": {"total": 2, "names": ["北京市", "天津市"]}}
    error = refused(write(tmp_path, "d.json", json.dumps(document, ensure_ascii=False).encode()))

    assert error.code == "records_path_not_found"
    assert "records_path" in error.localized()


def test_records_path_pointing_at_a_number(tmp_path: Path) -> None:
    path = write(tmp_path, "d.json", b'{"result": {"total": 2}}')

    error = refused(path, records_path="result.total")

    assert error.code == "records_path_not_found"
    assert "“result.total”不是数组" in error.localized()


def test_empty_json_array_has_no_records(tmp_path: Path) -> None:
    error = refused(write(tmp_path, "d.json", b"[]"))

    assert error.code == "no_rows"


def test_bare_json_number_is_refused_as_not_json_records(tmp_path: Path) -> None:
    error = refused(write(tmp_path, "d.json", b"42"))

    # A bare scalar is not sniffed as JSON at all; it is refused for not matching its name.
    assert error.code == "format_mismatch"
    assert "d.json" in error.localized()


def test_truncated_json_array_is_malformed(tmp_path: Path) -> None:
    error = refused(write(tmp_path, "d.json", '[{"地区": "北京市"},\n{"地区": '.encode()))

    assert error.code == "json_invalid"
    assert "JSON 格式错误" in error.localized()
