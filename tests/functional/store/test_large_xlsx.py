"""Acceptance: the XLSX of 200,000 rows opens in openpyxl with the right values.

About ten seconds (xlsxwriter writes 800,000 cells, openpyxl reads them back), so it runs on one
backend only: the spreadsheet never touches the metadata database.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine

from tests.functional.store.conftest import Served, make_served

pytestmark = pytest.mark.xdist_group("store_large_xlsx")

ROWS = 200_000
ITEMS = [("身份证号", "C"), ("人口", "I"), ("收入", "Y"), ("出生日期", "D")]


def row(i: int) -> dict[str, Any]:
    return {
        "身份证号": f"5201021990{i:08d}",
        "人口": i * 3,
        "收入": Decimal(i % 100_000) / 4,
        "出生日期": date(1950, 1, 1) + timedelta(days=i % 25_000),
    }


@pytest.fixture(scope="module")
def big(load_engine: Engine, module_data_dir: Path) -> Iterator[Served]:
    rows = [row(i) for i in range(1, ROWS + 1)]
    yield from make_served(load_engine, module_data_dir, rows, "二十万行的资源", ITEMS)


def test_xlsx_of_200000_rows_opens_in_openpyxl(
    backend: str, request: pytest.FixtureRequest
) -> None:
    if backend != "sqlite":
        pytest.skip("the spreadsheet does not depend on the database backend")
    big: Served = request.getfixturevalue("big")
    response = big.get("download.xlsx")
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True)
    [sheet] = book.worksheets
    rows = sheet.iter_rows(values_only=True)
    assert next(rows) == tuple(name for name, _ in ITEMS)
    checked = {1, 2, 77_777, 123_456, ROWS}
    count = 0
    for count, values in enumerate(rows, start=1):
        if count in checked:
            wanted = row(count)
            identity, people, income, born = values
            assert identity == wanted["身份证号"] and people == wanted["人口"]
            assert income == float(wanted["收入"]) and born.date() == wanted["出生日期"]
    assert count == ROWS
    book.close()
