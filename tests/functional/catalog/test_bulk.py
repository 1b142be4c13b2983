"""Bulk catalog work: one import brings another portal's catalog in across departments (preview,
confirmed category mapping, source dates kept, exact duplicates reported), and submit / approve /
publish act on a selection with every entry authorized, audited and reported on its own."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from kuaishu.accounts.models import Department
from kuaishu.accounts.roles import LevelKind, Role
from kuaishu.catalog.guangxi import load_guangxi_catalog
from kuaishu.catalog.models import CatalogEntry
from kuaishu.security.models import AuditEvent, Outcome
from tests import factories as f
from tests.functional.catalog.conftest import Bureau, entry_body
from tests.samples import sample, uses

API = "/api/v1/catalog"
GUANGXI = sample("guangxi_portal_catalog.jsonl")
CKAN = sample("ckan_package_search_birmingham.json")
CHINA = timezone(timedelta(hours=8))


def post_import(
    client: TestClient,
    headers: dict[str, str],
    content: bytes,
    fmt: str,
    filename: str,
    **form: Any,
) -> Any:
    data = {"format": fmt, **{k: str(v) for k, v in form.items()}}
    return client.post(
        f"{API}/bulk-import/upload", headers=headers, data=data, files={"file": (filename, content)}
    )


def confirm_all(plan: dict[str, Any], **overrides: str | None) -> str:
    """The operator accepts every proposed domain, changing only ``overrides``."""
    mapping = {c["category"]: c["proposed_domain"] for c in plan["categories"]}
    mapping.update(overrides)
    return json.dumps(mapping, ensure_ascii=False)


def entries(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(CatalogEntry)) or 0


@uses(GUANGXI)
def test_guangxi_catalog_comes_in_with_one_import_and_a_second_import_is_all_duplicates(
    client: TestClient, db: Session, bureau: Bureau
) -> None:
    guangxi = f.region(db, code="450000", name="广西壮族自治区")
    nanning = f.region(db, code="450100", name="南宁市", level=LevelKind.CITY, parent=guangxi)
    db.commit()
    content = GUANGXI.read_bytes()
    source = load_guangxi_catalog(GUANGXI)
    departments = {d.department for d in source.datasets}
    before = entries(db)

    preview = post_import(client, bureau.operator, content, "jsonl", "guangxi.jsonl")
    assert preview.status_code == 200, preview.text
    plan = preview.json()
    assert plan["confirmed"] is False and entries(db) == before
    assert events(db, "catalog.import_preview") == [None]  # the preview is on the trail too
    assert plan["to_import"] == len(source.datasets) and plan["duplicates"] == []
    assert {d["name"] for d in plan["departments"]} == departments
    assert all(d["department_id"] is None for d in plan["departments"])
    proposed = {c["category"]: c["proposed_domain"] for c in plan["categories"]}
    assert proposed["生态环境"] == "生态环境" and proposed["其他"] is None
    assert proposed["商业服务"] == "商贸流通"
    # Without a confirmed mapping nothing happens.
    unconfirmed = post_import(
        client,
        bureau.operator,
        content,
        "jsonl",
        "guangxi.jsonl",
        confirm="true",
        region_id=guangxi.id,
        mapping=json.dumps({"生态环境": "生态环境"}, ensure_ascii=False),
    )
    assert unconfirmed.status_code == 422
    assert unconfirmed.json()["error"]["code"] == "mapping_unconfirmed"
    assert entries(db) == before

    # The operator overrides one proposal: 商业服务 entries go to 生活服务.
    mapping = confirm_all(plan, 商业服务="生活服务")
    done = post_import(
        client,
        bureau.operator,
        content,
        "jsonl",
        "guangxi.jsonl",
        confirm="true",
        mapping=mapping,
        region_id=guangxi.id,
        source="广西公共数据开放平台",
    )
    assert done.status_code == 201, done.text
    result = done.json()
    assert result["created"] == len(source.datasets) and result["rejected"] == []
    assert set(result["departments_created"]) == departments
    db.expire_all()
    assert entries(db) == before + len(source.datasets)
    # Across departments: each entry sits in the department the source names.
    made = {
        d.name: d for d in db.scalars(select(Department).where(Department.name.in_(departments)))
    }
    assert set(made) == departments
    assert made["南宁市生态环境局"].region_id == nanning.id  # the city's own region
    # The source's dates, and the confirmed mapping.
    first = next(d for d in source.datasets if d.published and d.updated and d.topic == "商业服务")
    entry = db.scalar(
        select(CatalogEntry).where(
            CatalogEntry.name == first.name,
            CatalogEntry.department_id == made[first.department].id,
        )
    )
    assert entry is not None and entry.status == "published"
    assert entry.domain == "生活服务"
    assert first.published is not None and first.updated is not None
    assert _china(entry.published_at) == first.published
    assert _china(entry.updated_at) == first.updated
    other = next(d for d in source.datasets if d.topic == "其他")
    assert db.scalar(select(CatalogEntry.domain).where(CatalogEntry.name == other.name)) is None
    imports = db.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "catalog.import")
    )
    assert imports == len(source.datasets)

    again = post_import(client, bureau.operator, content, "jsonl", "guangxi.jsonl")
    replan = again.json()
    assert replan["to_import"] == 0
    assert len(replan["duplicates"]) == len(source.datasets)
    assert all(d["code"] for d in replan["duplicates"])
    assert all(d["department_id"] is not None for d in replan["departments"])
    repeat = post_import(
        client,
        bureau.operator,
        content,
        "jsonl",
        "guangxi.jsonl",
        confirm="true",
        mapping=mapping,
    )
    assert repeat.status_code == 201, repeat.text
    assert repeat.json()["created"] == 0
    assert len(repeat.json()["duplicates"]) == len(source.datasets)
    db.expire_all()
    assert entries(db) == before + len(source.datasets)


def _china(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(CHINA).replace(tzinfo=None)


@uses(CKAN)
def test_ckan_package_search_imports_with_its_organisation_groups_and_utc_dates(
    client: TestClient, db: Session, bureau: Bureau
) -> None:
    packages = json.loads(CKAN.read_bytes())["result"]["results"]
    content = CKAN.read_bytes()
    plan = post_import(client, bureau.operator, content, "ckan", "ckan.json").json()
    groups = {g["title"] for p in packages for g in p["groups"][:1]}
    assert {c["category"] for c in plan["categories"]} >= groups
    done = post_import(
        client,
        bureau.operator,
        content,
        "ckan",
        "ckan.json",
        confirm="true",
        mapping=confirm_all(plan, **{"Council Business": "机构团体"}),
        region_id=bureau.department.region_id,
        source="Birmingham Data Factory",
    )
    assert done.status_code == 201, done.text
    assert done.json()["created"] == len(packages)
    db.expire_all()
    first = packages[0]
    entry = db.scalar(select(CatalogEntry).where(CatalogEntry.name == first["title"]))
    assert entry is not None and entry.department.name == first["organization"]["title"]
    assert entry.domain == "机构团体"
    created = datetime.fromisoformat(first["metadata_created"]).replace(tzinfo=UTC)
    assert _china(entry.published_at) == created.astimezone(CHINA).replace(tzinfo=None)


def test_template_csv_json_and_json_lines_read_into_the_same_records(
    client: TestClient, db: Session, bureau: Bureau
) -> None:
    rows = [
        {
            "名称": "义务教育学校名录",
            "部门": bureau.department.name,
            "描述": "全省学校",
            "主题": "教育文化",
            "发布时间": "2021-03-04 10:00:00",
        },
        {
            "名称": "公交线路",
            "部门": "省交通运输厅",
            "描述": "线路与站点",
            "主题": "交通出行",
            "发布时间": "2022-01-02",
        },
    ]
    csv_text = "名称,部门,描述,主题,发布时间\n" + "\n".join(",".join(r.values()) for r in rows)
    bodies = {
        "csv": csv_text.encode("utf-8-sig"),
        "json": json.dumps(rows, ensure_ascii=False).encode(),
        "jsonl": "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode(),
        "xlsx": _template_with_departments(client, bureau, rows),
    }
    for fmt, content in bodies.items():
        plan = post_import(client, bureau.operator, content, fmt, f"catalog.{fmt}").json()
        assert plan["to_import"] == 2, (fmt, plan)
        matches = {d["name"]: d["department_id"] for d in plan["departments"]}
        assert matches == {bureau.department.name: bureau.department.id, "省交通运输厅": None}
        categories = {c["category"]: c["proposed_domain"] for c in plan["categories"]}
        assert categories["教育文化"] == "教育文化"
    done = post_import(
        client,
        bureau.operator,
        bodies["csv"],
        "csv",
        "catalog.csv",
        confirm="true",
        mapping=json.dumps({"教育文化": "教育文化", "交通出行": "交通运输"}, ensure_ascii=False),
        region_id=bureau.department.region_id,
    )
    assert done.status_code == 201, done.text
    db.expire_all()
    bus = db.scalar(select(CatalogEntry).where(CatalogEntry.name == "公交线路"))
    assert bus is not None and bus.domain == "交通运输" and bus.department.name == "省交通运输厅"
    assert _china(bus.published_at) == datetime(2022, 1, 2)
    # The same catalog as JSON is now exact duplicates, in both departments.
    plan = post_import(client, bureau.operator, bodies["json"], "json", "c.json").json()
    assert plan["to_import"] == 0 and len(plan["duplicates"]) == 2


def _template_with_departments(
    client: TestClient, bureau: Bureau, rows: list[dict[str, str]]
) -> bytes:
    template = client.get(f"{API}/template.xlsx", headers=bureau.operator)
    book = openpyxl.load_workbook(io.BytesIO(template.content))
    sheet = book["目录"]
    header = [c.value for c in sheet[1]]
    sheet.cell(row=1, column=len(header) + 1, value="部门")
    sheet.cell(row=1, column=len(header) + 2, value="发布时间")
    for number, row in enumerate(rows, start=1):
        values = {
            "序号": str(number),
            "信息资源名称": row["名称"],
            "信息资源摘要": row["描述"],
            "类": "部门信息资源",
            "领域": row["主题"] if row["主题"] == "教育文化" else "",
        }
        sheet.append([values.get(str(h), "") for h in header] + [row["部门"], row["发布时间"]])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_only_the_operator_imports(client: TestClient, bureau: Bureau) -> None:
    content = json.dumps([{"名称": "x", "部门": "y"}]).encode()
    for headers in (bureau.cataloguer, bureau.officer, bureau.reviewer):
        response = post_import(client, headers, content, "json", "c.json")
        assert response.status_code == 403, response.text


# Bulk actions ----------------------------------------------------------------------------------


def _draft(client: TestClient, bureau: Bureau, name: str, **changes: Any) -> int:
    made = client.post(
        f"{API}/entries", json=entry_body(name=name, **changes), headers=bureau.cataloguer
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def bulk(client: TestClient, headers: dict[str, str], action: str, ids: list[int]) -> Any:
    response = client.post(
        f"{API}/entries/bulk", json={"action": action, "ids": ids}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def events(db: Session, action: str, outcome: Outcome = Outcome.SUCCESS) -> list[Any]:
    db.expire_all()
    return list(
        db.scalars(
            select(AuditEvent.target_id).where(
                AuditEvent.action == action, AuditEvent.outcome == outcome
            )
        )
    )


def test_bulk_submit_approve_publish_each_entry_audited_and_refusals_reported(
    client: TestClient, db: Session, bureau: Bureau
) -> None:
    ids = [_draft(client, bureau, f"批量条目{n}") for n in range(3)]
    incomplete = _draft(client, bureau, "缺摘要的条目", summary="")
    submitted = bulk(client, bureau.cataloguer, "submit", [*ids, incomplete])
    assert submitted["done"] == 3 and submitted["refused"] == 1
    refusal = submitted["outcomes"][-1]
    assert refusal["id"] == incomplete and refusal["ok"] is False and refusal["error"]
    assert refusal["message"]
    assert sorted(int(t) for t in events(db, "catalog.submit")) == sorted(ids)
    assert [int(t) for t in events(db, "catalog.submit", Outcome.FAILURE)] == [incomplete]

    # Another department's reviewer may approve none of them; each refusal is on the trail.
    other = f.department(db, name="省卫健委")
    stranger = {"X-API-Key": f.api_key(db, f.user(db, roles=[Role.REVIEWER], dept=other))}
    db.commit()
    denied = bulk(client, stranger, "approve", ids)
    assert denied["done"] == 0
    assert {o["error"] for o in denied["outcomes"]} == {"permission_denied"}
    assert all(o["code"] is None for o in denied["outcomes"])  # nothing about the entries
    assert sorted(int(t) for t in events(db, "catalog.review", Outcome.DENIED)) == sorted(ids)

    approved = bulk(client, bureau.reviewer, "approve", ids)
    assert approved["done"] == 3
    assert {o["state"] for o in approved["outcomes"]} == {"approved"}
    # Publishing a selection where one entry is not approved yet publishes the others.
    published = bulk(client, bureau.officer, "publish", [*ids, incomplete])
    assert [o["ok"] for o in published["outcomes"]] == [True, True, True, False]
    assert published["outcomes"][-1]["error"] == "invalid_transition"
    assert sorted(int(t) for t in events(db, "catalog.publish")) == sorted(ids)
    db.expire_all()
    states = {i: s for i, s in db.execute(select(CatalogEntry.id, CatalogEntry.status))}
    assert [states[i] for i in ids] == ["published"] * 3
    assert states[incomplete] == "unpublished"


def test_bulk_selection_is_bounded_and_typed(client: TestClient, bureau: Bureau) -> None:
    for body in (
        {"action": "delete", "ids": [1]},
        {"action": "publish", "ids": []},
        {"action": "publish", "ids": list(range(1, 502))},
        {"action": "publish", "ids": [2**40]},
    ):
        response = client.post(f"{API}/entries/bulk", json=body, headers=bureau.officer)
        assert response.status_code == 422, response.text


def test_cli_previews_then_imports_with_confirm(
    db: Session,
    bureau: Bureau,
    session_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from kuaishu.catalog import cli
    from kuaishu.cli import app

    monkeypatch.setattr(cli, "_factory", lambda: session_factory)
    rows = [{"名称": "农贸市场名录", "部门": bureau.department.name, "主题": "市场"}]
    source = tmp_path / "catalog.json"
    source.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"市场": "市场监管"}, ensure_ascii=False), encoding="utf-8")
    runner = CliRunner()
    before = entries(db)
    preview = runner.invoke(app, ["catalog", "import", str(source), "--format", "json"])
    assert preview.exit_code == 0, preview.output
    assert "待导入 1 条" in preview.output and "未导入" in preview.output
    assert entries(db) == before
    done = runner.invoke(
        app,
        [
            "catalog",
            "import",
            str(source),
            "--format",
            "json",
            "--mapping",
            str(mapping),
            "--confirm",
        ],
    )
    assert done.exit_code == 0, done.output
    assert "已导入 1 条" in done.output
    db.expire_all()
    made = db.scalar(select(CatalogEntry).where(CatalogEntry.name == "农贸市场名录"))
    assert made is not None and made.domain == "市场监管"


def test_unreadable_records_are_reported_by_line_and_the_rest_planned(
    client: TestClient, bureau: Bureau
) -> None:
    lines = [
        json.dumps({"名称": "好记录", "部门": "省统计局", "发布时间": "2020-01-01"}),
        json.dumps({"名称": "坏日期", "部门": "省统计局", "发布时间": "去年"}, ensure_ascii=False),
        "{不是 JSON",
        json.dumps({"名称": "没有部门"}, ensure_ascii=False),
    ]
    plan = post_import(
        client, bureau.operator, "\n".join(lines).encode(), "jsonl", "c.jsonl"
    ).json()
    assert plan["to_import"] == 1
    reasons = {p["ref"]: p["reason"] for p in plan["rejected"]}
    assert reasons == {
        "第 2 行": "日期“去年”无法识别",
        "第 3 行": "不是有效的 JSON",
        "第 4 行": "缺少数据集名称或来源部门",
    }
    english = client.post(
        f"{API}/bulk-import/upload",
        headers={**bureau.operator, "Accept-Language": "en"},
        data={"format": "jsonl"},
        files={"file": ("c.jsonl", "\n".join(lines).encode())},
    ).json()
    assert {p["reason"] for p in english["rejected"]} == {
        'the date "去年" cannot be read',
        "not valid JSON",
        "dataset name or source department missing",
    }
