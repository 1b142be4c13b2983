"""Downloads are exact: a file with leading zeros, 18-digit IDs, text starting with - + = @ and
Chinese is loaded through the real pipeline, downloaded in every format, read back with an ordinary
reader and compared with the source file's text."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kuaishu.accounts.roles import Role
from kuaishu.db import make_sessionmaker, transaction
from kuaishu.store.exports import excel_header
from kuaishu.store.plan import FORMULA_CHARS
from kuaishu.web.app import create_app
from tests import factories as f
from tests.functional.store.conftest import load_file

ITEMS = [("编号", "C"), ("身份证号", "C"), ("证件序号", "I"), ("备注", "C"), ("金额", "Y")]
SOURCE = [
    ["编号", "身份证号", "证件序号", "备注", "金额"],
    ["007", "110101199003070011", "123456789012345678", "-5 度", "12.30"],
    ["0012345", "52010219900101002X", "900000000000000001", "+86 138 0000 0000", "0.05"],
    ["000", "440301200001011234", "7", "=1+2", "1234567890123456.78"],
    ["01", "310101198001010019", "100000000000000000", "@SUM(A1)", "-0.10"],
    ["10", "120101197707070707", "42", "中文：北京市朝阳区，“引号”, 逗号", "0.00"],
]
TEXT = {name: kind == "C" for name, kind in ITEMS}  # the formula guard is for text cells
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


@pytest.fixture(scope="module")
def downloaded(
    load_engine: Engine, module_data_dir: Path
) -> Iterator[tuple[TestClient, str, dict[str, str]]]:
    factory = make_sessionmaker(load_engine)
    with transaction(factory) as db:
        dept = f.department(db, name="省公安厅")
        entry = f.published_entry(db, dept=dept, name="证件登记", items=ITEMS, keys=("编号",))
        member = {"X-API-Key": f.api_key(db, f.user(db, roles=[Role.CATALOGUER], dept=dept))}
        entry_id, code = entry.id, entry.code
    path = module_data_dir / "source.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(SOURCE)
    assert load_file(factory, entry_id, path) == len(SOURCE) - 1
    with TestClient(create_app(engine=load_engine), base_url="http://testserver") as client:
        yield client, code, member


def source_rows() -> list[dict[str, str]]:
    """The source file as text, read back with the csv module (the file itself was moved into
    the load; SOURCE is what was written)."""
    text = io.StringIO()
    csv.writer(text).writerows(SOURCE)
    return list(csv.DictReader(io.StringIO(text.getvalue())))


def as_source(name: str, value: Any) -> str:
    """A value read back, as the source file's text: exact, with nothing rounded or reformatted."""
    kind = dict(ITEMS)[name]
    if kind == "Y":
        return f"{Decimal(str(value)):.2f}" if not isinstance(value, str) else value
    return str(value)


def fetch(downloaded: tuple[TestClient, str, dict[str, str]], fmt: str, **params: str) -> bytes:
    client, code, member = downloaded
    response = client.get(f"/api/v1/data/{code}/download.{fmt}", params=params, headers=member)
    assert response.status_code == 200, response.text
    return response.content


def read_back(fmt: str, content: bytes) -> list[dict[str, Any]]:
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(content.decode("utf-8"))))
    if fmt == "json":
        return list(json.loads(content, parse_float=Decimal))
    if fmt == "jsonl":
        return [json.loads(line, parse_float=Decimal) for line in content.decode().splitlines()]
    if fmt == "xml":
        found = ET.fromstring(content).find("rows")
        assert found is not None
        return [
            {cell.tag: cell.text for cell in row if cell.get(XSI_NIL) != "true"} for row in found
        ]
    if fmt == "xlsx":
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
        values = list(book.worksheets[0].iter_rows(values_only=True))
        book.close()
        return [dict(zip(values[0], row, strict=True)) for row in values[1:]]
    return list(pq.read_table(io.BytesIO(content)).to_pylist())


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "xml", "xlsx", "parquet"])
def test_every_format_returns_the_source_values_exactly(
    downloaded: tuple[TestClient, str, dict[str, str]], fmt: str
) -> None:
    content = fetch(downloaded, fmt, sort="编号")
    got = [{k: as_source(k, v) for k, v in row.items()} for row in read_back(fmt, content)]
    assert got == sorted(source_rows(), key=lambda r: r["编号"])


def test_the_api_csv_is_byte_exact(downloaded: tuple[TestClient, str, dict[str, str]]) -> None:
    content = fetch(downloaded, "csv", sort="编号")
    expected = io.StringIO()
    rows = sorted(source_rows(), key=lambda r: r["编号"])
    writer = csv.writer(expected, lineterminator="\n")
    writer.writerow(SOURCE[0])
    writer.writerows([list(r.values()) for r in rows])
    assert content == expected.getvalue().encode()


def test_xlsx_text_cells_are_text_and_long_ids_are_text(
    downloaded: tuple[TestClient, str, dict[str, str]],
) -> None:
    book = openpyxl.load_workbook(io.BytesIO(fetch(downloaded, "xlsx", sort="编号")))
    sheet = book.worksheets[0]
    cells = {
        (c.row, sheet.cell(1, c.column).value): c for row in sheet.iter_rows(min_row=2) for c in row
    }
    for (_row, name), cell in cells.items():
        if name in ("编号", "身份证号", "备注"):
            assert cell.data_type == "s" and not str(cell.value).startswith("'"), cell.value
        if name == "证件序号":  # 18 digits are text; short numbers stay numbers
            assert (cell.data_type == "s") == (len(str(cell.value)) > 15), cell.value
    book.close()


def test_the_excel_csv_is_the_named_variant_with_bom_and_formula_guard(
    downloaded: tuple[TestClient, str, dict[str, str]],
) -> None:
    content = fetch(downloaded, "csv", sort="编号", variant="excel")
    assert content.startswith(b"\xef\xbb\xbf")
    got = list(csv.DictReader(io.StringIO(content[3:].decode("utf-8"))))
    expected = [
        {k: "'" + v if TEXT[k] and v.startswith(FORMULA_CHARS) else v for k, v in r.items()}
        for r in sorted(source_rows(), key=lambda r: r["编号"])
    ]
    assert [{k: as_source(k, v) for k, v in r.items()} for r in got] == expected
    assert excel_header(["=合计", "-差额", "名称"]) == "'=合计,'-差额,名称\n".encode()
