"""Offline compilation: the template, an import that reports every error and imports nothing,
a correct import, and export → import round trips."""

from __future__ import annotations

import io
import json

import openpyxl
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kuaishu.catalog.models import CatalogEntry
from tests.functional.catalog.conftest import Bureau, entry_body

API = "/api/v1/catalog"


def workbook_bytes(book: openpyxl.Workbook) -> bytes:
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def filled_template(client: TestClient, headers: dict[str, str]) -> openpyxl.Workbook:
    template = client.get(f"{API}/template.xlsx", headers=headers)
    assert template.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(template.content))
    entries, items = book["目录"], book["信息项"]
    header = [c.value for c in entries[1]]
    row = {
        "序号": "1",
        "信息资源名称": "义务教育学校名录",
        "信息资源摘要": "全省义务教育阶段学校",
        "类": "部门信息资源",
        "信息资源格式": "电子表格",
        "共享类型": "无条件共享",
        "共享方式": "接口，文件",
        "开放类型": "无条件开放",
        "更新周期": "每年",
        "领域": "教育文化",
        "关键字": "学校，教育",
    }
    entries.append([row.get(h, "") for h in header])
    row2 = dict(
        row,
        序号="2",
        信息资源名称="民办学校审批信息",
        开放类型="依申请开放",
        开放依据="《民办教育促进法》",
        开放条件="限教育科研用途",
    )
    entries.append([row2.get(h, "") for h in header])
    items.append(["1", "学校名称", "字符型", "100", "", "是", ""])
    items.append(["1", "学校地址", "字符型", "200", "", "否", ""])
    items.append(["2", "审批文号", "字符型", "50", "", "是", ""])
    return book


def count_entries(db: Session) -> int:
    return int(db.scalar(select(func.count(CatalogEntry.id))) or 0)


def test_template_has_both_sheets_and_dropdowns(client: TestClient, bureau: Bureau) -> None:
    content = client.get(f"{API}/template.xlsx", headers=bureau.cataloguer).content
    book = openpyxl.load_workbook(io.BytesIO(content))
    assert book.sheetnames[:2] == ["目录", "信息项"]
    entries = book["目录"]
    assert entries["B1"].value == "信息资源名称"
    lists = {str(dv.sqref): dv.formula1 for dv in entries.data_validations.dataValidation}
    # class, format, share type, open type, update cycle, domain, security level
    assert len(lists) == 7 and all(f.startswith("选项!") for f in lists.values())
    assert book["选项"].sheet_state == "hidden"
    options = [c.value for c in book["选项"]["A"]]
    assert options[0] == "类" and "基础信息资源" in options


def test_correct_template_imports(client: TestClient, db: Session, bureau: Bureau) -> None:
    content = workbook_bytes(filled_template(client, bureau.cataloguer))
    response = client.post(
        f"{API}/import", headers=bureau.cataloguer, files={"file": ("目录.xlsx", content)}
    )
    assert response.status_code == 201, response.text
    assert response.json()["created"] == 2
    listed = client.get(
        f"{API}/departments/{bureau.department.id}/entries", headers=bureau.cataloguer
    ).json()["items"]
    names = {e["name"] for e in listed}
    assert {"义务教育学校名录", "民办学校审批信息"} <= names


def test_every_error_is_reported_and_nothing_imported(
    client: TestClient, db: Session, bureau: Bureau
) -> None:
    book = filled_template(client, bureau.cataloguer)
    entries = book["目录"]
    header = [c.value for c in entries[1]]
    entries.cell(row=2, column=header.index("共享类型") + 1, value="随便共享")
    entries.cell(row=3, column=header.index("开放依据") + 1, value="")
    entries.cell(row=3, column=header.index("更新周期") + 1, value="每十年")
    book["信息项"].append(["9", "孤儿信息项", "字符型", "", "", "否", ""])
    book["信息项"].append(["1", "坏类型", "文本型", "", "", "否", ""])
    before = count_entries(db)
    response = client.post(
        f"{API}/import",
        headers=bureau.cataloguer,
        files={"file": ("目录.xlsx", workbook_bytes(book))},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "import_failed"
    found = {(d["sheet"], d["row"], d["column"]) for d in error["details"]}
    assert found == {
        ("目录", 2, "共享类型"),
        ("目录", 3, "更新周期"),
        ("目录", 3, "开放依据"),
        ("信息项", 5, "序号"),
        ("信息项", 6, "数据类型"),
    }
    assert "未导入任何条目" in error["message"]
    assert count_entries(db) == before


def test_not_a_workbook(client: TestClient, bureau: Bureau) -> None:
    response = client.post(
        f"{API}/import", headers=bureau.cataloguer, files={"file": ("目录.xlsx", b"name,summary\n")}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "not_a_workbook"


def test_export_then_import_round_trips(client: TestClient, db: Session, bureau: Bureau) -> None:
    body = entry_body(keywords=["人口", "统计"], related_codes=["101001/5200100001"])
    assert client.post(f"{API}/entries", json=body, headers=bureau.cataloguer).status_code == 201
    content = workbook_bytes(filled_template(client, bureau.cataloguer))
    client.post(f"{API}/import", headers=bureau.cataloguer, files={"file": ("a.xlsx", content)})
    exported = client.get(f"{API}/export.json", headers=bureau.cataloguer).json()
    xlsx = client.get(f"{API}/export.xlsx", headers=bureau.cataloguer)
    assert xlsx.status_code == 200 and "attachment" in xlsx.headers["content-disposition"]
    # Import the export into another department; its export must read the same.
    reimport = client.post(
        f"{API}/import", headers=bureau.outsider, files={"file": ("b.xlsx", xlsx.content)}
    )
    assert reimport.status_code == 201, reimport.text
    again = client.get(f"{API}/export.json", headers=bureau.outsider).json()

    def content_of(rows: list[dict[str, object]]) -> list[str]:
        return sorted(
            json.dumps(
                {k: v for k, v in r.items() if k != "code"}, ensure_ascii=False, sort_keys=True
            )
            for r in rows
        )

    assert len(exported) == 3 and content_of(exported) == content_of(again)
    csv = client.get(f"{API}/export.csv", headers=bureau.cataloguer)
    assert csv.text.startswith("\ufeff信息资源代码") and "常住人口统计表" in csv.text
