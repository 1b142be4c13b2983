"""Every download format, parsed back with an ordinary reader and compared to the loaded rows."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import openpyxl
import pyarrow.parquet as pq
import pytest

from kuaishu.store import exports
from tests.functional.store.conftest import ITEMS, Served

pytestmark = pytest.mark.xdist_group("store_downloads")

KINDS = dict(ITEMS)
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


def typed(name: str, value: Any) -> Any:
    """A value read back from text (or a spreadsheet cell) as the column's type."""
    if value is None or value == "":
        return None
    kind = KINDS[name]
    if kind == "C":
        return value
    if kind == "I":
        return int(value)
    if kind == "Y":
        return Decimal(str(value)).quantize(Decimal("0.01"))
    if kind == "N":
        return float(value)
    if kind == "L":
        return value if isinstance(value, bool) else value == "true"
    if isinstance(value, datetime):
        return value.date() if kind == "D" else value
    return date.fromisoformat(value) if kind == "D" else datetime.fromisoformat(value)


def neutralised(row: dict[str, Any]) -> dict[str, Any]:
    """What a spreadsheet format must hold: formula-like text prefixed with a quote."""
    return {
        k: "'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v
        for k, v in row.items()
    }


def read_back(fmt: str, content: bytes) -> list[dict[str, Any]]:
    if fmt == "csv":
        text = content.decode("utf-8")
        return [{k: typed(k, v) for k, v in r.items()} for r in csv.DictReader(io.StringIO(text))]
    if fmt == "json":
        return [{k: typed(k, v) for k, v in r.items()} for r in json.loads(content)]
    if fmt == "jsonl":
        lines = content.decode().splitlines()
        return [{k: typed(k, v) for k, v in json.loads(line).items()} for line in lines]
    if fmt == "xml":
        return read_xml(content)
    if fmt == "xlsx":
        return read_xlsx(content)["数据"]
    assert fmt == "parquet"
    return list(pq.read_table(io.BytesIO(content)).to_pylist())


def read_xml(content: bytes) -> list[dict[str, Any]]:
    root = ET.fromstring(content)
    elements = {f.get("element"): f.get("name") for f in root.iter("field")}
    rows = []
    found = root.find("rows")
    assert found is not None
    for row in found:
        rows.append(
            {
                str(elements[cell.tag]): None
                if cell.get(XSI_NIL) == "true"
                else typed(str(elements[cell.tag]), cell.text or "")
                for cell in row
            }
        )
    return rows


def read_xlsx(content: bytes) -> dict[str, list[dict[str, Any]]]:
    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    sheets = {}
    for sheet in book.worksheets:
        rows = sheet.iter_rows(values_only=True)
        header = [str(h) for h in next(rows)]
        sheets[sheet.title] = [
            {name: typed(name, value) for name, value in zip(header, row, strict=True)}
            for row in rows
        ]
    book.close()
    return sheets


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "xml", "xlsx", "parquet"])
def test_every_format_holds_every_row(served: Served, fmt: str) -> None:
    response = served.get(f"download.{fmt}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(
        exports.MEDIA_TYPES[exports.Format(fmt)].split(";")[0]
    )
    assert read_back(fmt, response.content) == served.rows  # formula-like text exactly as stored


def test_the_excel_csv_has_a_bom_and_guards_formula_like_text(served: Served) -> None:
    response = served.get("download.csv", variant="excel")
    assert response.content.startswith(b"\xef\xbb\xbf")
    assert read_back("csv", response.content[3:]) == [neutralised(r) for r in served.rows]


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "xml", "xlsx", "parquet"])
def test_downloads_take_the_query_filters_fields_and_sort(served: Served, fmt: str) -> None:
    response = served.get(
        f"download.{fmt}", 地区="北京", 人口__gte="20", fields="身份证号,人口,收入", sort="-人口"
    )
    chosen = [r for r in served.rows if r["地区"] == "北京" and (r["人口"] or 0) >= 20]
    chosen.sort(key=lambda r: -r["人口"])
    wanted = [{k: r[k] for k in ("身份证号", "人口", "收入")} for r in chosen]
    assert wanted and read_back(fmt, response.content) == wanted


def test_csv_bom_for_excel(served: Served) -> None:
    plain = served.get("download.csv", limit=2).content
    with_bom = served.get("download.csv", limit=2, bom="1").content
    assert not plain.startswith(b"\xef\xbb\xbf")
    assert with_bom == b"\xef\xbb\xbf" + plain
    assert plain.decode().splitlines()[0] == ",".join(name for name, _ in ITEMS)


def test_chinese_file_name_per_rfc_6266(served: Served) -> None:
    header = served.get("download.xlsx", limit=1).headers["content-disposition"]
    match = re.fullmatch(r'attachment; filename="([^"]+)"; filename\*=UTF-8\'\'(\S+)', header)
    assert match is not None, header
    fallback, encoded = match.groups()
    assert fallback.isascii() and fallback.endswith("_v1.xlsx")
    assert re.fullmatch(r"人口登记信息_v1_\d{8}\.xlsx", unquote(encoded))
    assert "%" in encoded and encoded.isascii()


def test_formula_cells_are_neutralised_only_in_the_excel_csv(served: Served) -> None:
    params = {"姓名__in": "=1+2,+86 123,-5 度,@SUM(A1)", "fields": "姓名"}
    stored = ["=1+2", "+86 123", "-5 度", "@SUM(A1)"]
    csv_names = [r["姓名"] for r in read_back("csv", served.get("download.csv", **params).content)]
    assert csv_names == stored
    excel = served.get("download.csv", variant="excel", **params).content
    assert excel.startswith(b"\xef\xbb\xbf")
    excel_names = [r["姓名"] for r in read_back("csv", excel[3:])]
    assert excel_names == ["'=1+2", "'+86 123", "'-5 度", "'@SUM(A1)"]
    xlsx = served.get("download.xlsx", **params).content
    assert [r["姓名"] for r in read_xlsx(xlsx)["数据"]] == stored
    book = openpyxl.load_workbook(io.BytesIO(xlsx))
    assert all(cell.data_type == "s" for (cell,) in book["数据"].iter_rows(min_row=2))
    as_json = served.get("download.json", **params).json()
    assert [r["姓名"] for r in as_json] == stored
    assert served.get("query", **params).json()["rows"][0] == ["=1+2"]


def test_xlsx_continues_on_a_new_sheet_past_the_row_limit(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "SHEET_ROWS", 100)
    sheets = read_xlsx(served.get("download.xlsx").content)
    assert list(sheets) == ["数据", "数据2", "数据3"]
    assert [len(rows) for rows in sheets.values()] == [100, 100, 40]
    joined = [row for rows in sheets.values() for row in rows]
    assert joined == served.rows


def test_empty_result_is_a_valid_empty_file(served: Served) -> None:
    for fmt in ("csv", "json", "jsonl", "xml", "xlsx", "parquet"):
        response = served.get(f"download.{fmt}", 地区="拉萨")
        assert response.status_code == 200
        assert read_back(fmt, response.content) == [], fmt


def test_xml_element_names_stay_valid_for_any_column_name() -> None:
    assert exports.element_names(["地区", "人口(万人)", "1号", "地区"]) == [
        "地区",
        "人口_万人_",
        "_1号",
        "地区_2",
    ]


def test_unknown_format_and_bad_filter_are_refused(served: Served) -> None:
    assert served.get("download.docx").status_code == 422
    bad = served.get("download.csv", 人口__gt="很多")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_value"
