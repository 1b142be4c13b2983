"""The catalog through the console pages: what cataloguers, reviewers, officers and everyone else
see and do, from the form to withdrawal, with every step on the audit trail."""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import openpyxl
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from kuaishu.accounts.models import Department
from kuaishu.accounts.roles import Role
from kuaishu.catalog.models import DataElement
from kuaishu.security.models import AuditEvent
from tests import factories as f
from tests.functional.catalog.test_spreadsheet import filled_template, workbook_bytes

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


INLINE = re.compile(r"</?(?:a|b|code|em|small|span|strong)\b[^>]*>")


def visible(response: Response) -> str:
    """The main part's text as a reader sees it: no tags, entities decoded, spaces collapsed."""
    main = response.text.split("<main", 1)[-1].split(">", 1)[-1]
    text = re.sub(r"<[^>]+>", " ", INLINE.sub("", main))
    return " ".join(html.unescape(text).split())


@dataclass
class Person:
    """A signed-in browser: its own cookies and the session's CSRF token."""

    username: str
    client: TestClient
    csrf: str

    def get(self, url: str, status: int = 200) -> Response:
        response = self.client.get(url)
        assert response.status_code == status, (url, response.status_code, visible(response))
        return response

    def post(self, url: str, status: int = 303, **fields: Any) -> Response:
        """Send a form; after a redirect, the page it leads to."""
        response = self.client.post(
            url, data={"csrf_token": self.csrf, **fields}, follow_redirects=False
        )
        assert response.status_code == status, (url, response.status_code, visible(response))
        if status != 303:
            return response
        return self.get(response.headers["location"])


@dataclass
class Bureau:
    department: Department
    police: Department
    cataloguer: Person
    reviewer: Person
    officer: Person
    both: Person  # cataloguer and reviewer at once
    outsider: Person  # another department's user: the "public" view of the catalog


@pytest.fixture
def bureau(app: FastAPI, db: Session) -> Iterator[Bureau]:
    department = f.department(db, name="省统计局")
    police = f.department(db, name="省公安厅")
    welfare = f.department(db, name="省人社厅")
    db.add(
        DataElement(
            name="公民身份号码",
            variants=["身份证号", "身份证号码", "公民身份证号"],
            authority_department_id=police.id,
        )
    )
    users = {
        "cataloguer": f.user(db, roles=[Role.CATALOGUER], dept=department),
        "reviewer": f.user(db, roles=[Role.REVIEWER], dept=department),
        "officer": f.user(db, roles=[Role.DATA_OFFICER], dept=department),
        "both": f.user(db, roles=[Role.CATALOGUER, Role.REVIEWER], dept=department),
        "outsider": f.user(db, roles=[Role.CONSUMER], dept=welfare),
    }
    db.commit()
    with ExitStack() as stack:
        people = {}
        for key, user in users.items():
            client = stack.enter_context(TestClient(app, base_url="http://testserver"))
            login = f.sign_in(client, user.username)
            people[key] = Person(user.username, client, login.csrf)
        yield Bureau(department=department, police=police, **people)


def entry_form(**changes: Any) -> dict[str, Any]:
    """The entry form as a browser sends it, blank rows of the data-item table included."""
    form: dict[str, Any] = {
        "name": "常住人口统计表",
        "domain": "社保就业",
        "summary": "全省分地区年末常住人口",
        "resource_class": "1",
        "subject_code": "01",
        "category_code": "001",
        "subcategory_code": "",
        "resource_format": "spreadsheet",
        "update_cycle": "yearly",
        "security_level": "",
        "keywords": "人口，统计年鉴",
        "contact": "0851-0000000",
        "source_systems": "",
        "related_codes": "",
        "licence": "",
        "share_type": "unconditional",
        "share_methods": ["api", "file"],
        "share_conditions": "",
        "share_basis": "",
        "open_type": "unconditional",
        "open_conditions": "",
        "open_basis": "",
    }
    items = changes.pop(
        "items", [("地区", "C", "50", "", True), ("年末常住人口", "N", "", "万人", False)]
    )
    rows = [*items, *[("", "C", "", "", False)] * 3]
    for n, (name, type_code, length, description, is_key) in enumerate(rows, start=1):
        form |= {
            f"items-{n}-name": name,
            f"items-{n}-type_code": type_code,
            f"items-{n}-length": length,
            f"items-{n}-description": description,
            f"items-{n}-sensitivity": "",
        }
        if is_key:
            form[f"items-{n}-is_key"] = "1"
    return form | changes


def create(person: Person, **changes: Any) -> tuple[int, Response]:
    """Fill in and save the new-entry form; the entry's id and the page it leads to."""
    response = person.client.post(
        "/catalog/new",
        data={"csrf_token": person.csrf, **entry_form(**changes)},
        follow_redirects=False,
    )
    assert response.status_code == 303, visible(response)
    location = response.headers["location"]
    found = re.fullmatch(r"/catalog/entries/(\d+)\?done=created", location)
    assert found, location
    return int(found.group(1)), person.get(location)


def trail(db: Session, entry_id: int) -> list[tuple[str, str]]:
    events = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.target_type == "catalog_entry", AuditEvent.target_id == str(entry_id))
        .order_by(AuditEvent.id)
    )
    return [(e.action, e.actor_username) for e in events]


def test_lifecycle_through_the_console(db: Session, bureau: Bureau) -> None:
    who = bureau
    assert "新建目录条目" in visible(who.cataloguer.get("/catalog/new"))
    entry_id, page = create(who.cataloguer)
    entry = f"/catalog/entries/{entry_id}"
    text = visible(page)
    assert "已创建。" in text and "常住人口统计表 未发布" in text
    assert "第 1 版 · 草稿" in text and "年末常住人口" in text and "万人" in text
    code = re.search(r"<code>([^<]+)</code>", page.text)
    assert code is not None
    assert code.group(1) in visible(who.cataloguer.get("/catalog/department"))

    assert "第 1 版 · 待审核" in visible(who.cataloguer.post(f"{entry}/submit"))
    queue = who.reviewer.get("/catalog/review")
    assert f'href="{entry}"' in queue.text and "常住人口统计表" in visible(queue)
    review = visible(who.reviewer.get(entry))
    assert "审核通过" in review and "退回修改" in review
    returned = visible(
        who.reviewer.post(
            f"{entry}/return",
            **{
                "field-1": "summary",
                "comment-1": "请写明统计口径",
                "field-2": "items[2]",
                "comment-2": "单位应为“万人”还是“人”？",
            },
        )
    )
    assert "第 1 版 · 已退回" in returned

    # The cataloguer reads each remark beside what it is about, and again on the form.
    remarks = ("信息资源摘要：请写明统计口径", "信息项 2（年末常住人口）：单位应为“万人”还是“人”？")
    seen = visible(who.cataloguer.get(entry))
    assert all(remark in seen for remark in remarks), seen
    form = who.cataloguer.get(f"{entry}/edit")
    assert all(remark in visible(form) for remark in remarks)
    assert 'value="常住人口统计表"' in form.text and 'value="年末常住人口"' in form.text
    summary = "全省分地区年末常住人口（常住口径）"
    saved = who.cataloguer.post(
        f"{entry}/edit",
        **entry_form(
            summary=summary,
            items=[("地区", "C", "50", "", True), ("年末常住人口", "N", "", "人", False)],
        ),
    )
    assert "已保存。" in visible(saved) and summary in visible(saved)
    assert "第 1 版 · 待审核" in visible(who.cataloguer.post(f"{entry}/submit"))
    assert "第 1 版 · 已通过" in visible(who.reviewer.post(f"{entry}/approve"))
    published = visible(who.officer.post(f"{entry}/publish"))
    assert "常住人口统计表 已发布" in published and "现行版本 第 1 版 · 已发布" in published
    assert "常住人口统计表" in visible(who.outsider.get("/catalog?q=常住人口"))

    # A revision is worked on while the published one stays in force.
    revising = visible(who.cataloguer.post(f"{entry}/revise"))
    assert "正在处理的修订 第 2 版 · 草稿" in revising and "现行版本 第 1 版 · 已发布" in revising
    who.cataloguer.post(
        f"{entry}/edit",
        **entry_form(name="常住人口年报", summary=summary, update_cycle="quarterly"),
    )
    public = visible(who.outsider.get(entry))
    assert "常住人口统计表 已发布" in public and "常住人口年报" not in public
    assert "正在处理的修订" not in public and "第 2 版" not in public
    assert "常住人口年报" not in visible(who.outsider.get("/catalog?q=常住人口"))
    who.outsider.get(f"{entry}/diff?from=1&to=2", status=404)  # the draft is not public

    compared = visible(who.cataloguer.get(f"{entry}/diff?from=1&to=2"))
    assert "信息资源名称 常住人口统计表 常住人口年报" in compared
    assert "更新周期 每年 每季度" in compared
    assert "信息资源摘要" not in compared  # unchanged fields are not listed
    who.cataloguer.post(f"{entry}/submit")
    who.reviewer.post(f"{entry}/approve")
    second = visible(who.reviewer.post(f"{entry}/publish"))
    assert "常住人口年报 已发布" in second and "现行版本 第 2 版 · 已发布" in second
    assert "第 1 版 · 已被取代" in second
    assert "常住人口年报" in visible(who.outsider.get(entry))
    assert "常住人口年报" in visible(who.outsider.get("/catalog?q=常住人口"))

    reason = "统计口径调整，并入新目录"
    refused = visible(who.officer.post(f"{entry}/withdraw", status=422, reason=" "))
    assert "撤销必须说明原因。" in refused
    gone = visible(who.officer.post(f"{entry}/withdraw", reason=reason))
    assert f"已撤销：{reason}" in gone
    assert f"已撤销：{reason}" in visible(who.outsider.get(entry))
    assert "没有找到符合条件的目录。" in visible(who.outsider.get("/catalog?q=常住人口"))

    assert trail(db, entry_id) == [
        ("catalog.create", who.cataloguer.username),
        ("catalog.submit", who.cataloguer.username),
        ("catalog.return", who.reviewer.username),
        ("catalog.edit", who.cataloguer.username),
        ("catalog.submit", who.cataloguer.username),
        ("catalog.approve", who.reviewer.username),
        ("catalog.publish", who.officer.username),
        ("catalog.revise", who.cataloguer.username),
        ("catalog.edit", who.cataloguer.username),
        ("catalog.submit", who.cataloguer.username),
        ("catalog.approve", who.reviewer.username),
        ("catalog.publish", who.reviewer.username),
        ("catalog.withdraw", who.officer.username),
    ]
    returned_event = db.scalar(
        select(AuditEvent).where(
            AuditEvent.action == "catalog.return", AuditEvent.target_id == str(entry_id)
        )
    )
    assert returned_event is not None and returned_event.details is not None
    assert [c["field"] for c in returned_event.details["comments"]] == ["summary", "items[2]"]


def test_nobody_approves_their_own_submission(db: Session, bureau: Bureau) -> None:
    entry_id, _page = create(bureau.both)
    entry = f"/catalog/entries/{entry_id}"
    bureau.both.post(f"{entry}/submit")
    refused = visible(bureau.both.post(f"{entry}/approve", status=403))
    assert "不能审核自己编制或提交的目录。" in refused and "第 1 版 · 待审核" in refused
    assert f'href="{entry}"' not in bureau.both.get("/catalog/review").text
    assert f'href="{entry}"' in bureau.reviewer.get("/catalog/review").text
    assert [action for action, _who in trail(db, entry_id)] == ["catalog.create", "catalog.submit"]


def test_a_refusal_by_policy_is_audited(db: Session, bureau: Bureau) -> None:
    entry_id, _page = create(bureau.cataloguer)
    bureau.cataloguer.post(f"/catalog/entries/{entry_id}/submit")
    refused = bureau.cataloguer.post(f"/catalog/entries/{entry_id}/approve", status=403)
    assert "您没有执行此操作的权限" in visible(refused)
    denied = db.scalars(
        select(AuditEvent.action).where(
            AuditEvent.outcome == "denied", AuditEvent.actor_username == bureau.cataloguer.username
        )
    ).all()
    assert denied == ["catalog.review"]


def test_review_shows_the_one_source_flag(bureau: Bureau) -> None:
    items = [("身份证号", "C", "18", "", True), ("就业状态", "C", "10", "", False)]
    entry_id, _page = create(bureau.cataloguer, name="就业人员名册", items=items)
    entry = f"/catalog/entries/{entry_id}"
    bureau.cataloguer.post(f"{entry}/submit")
    assert "一数一源 1 项" in visible(bureau.reviewer.get("/catalog/review"))
    review = visible(bureau.reviewer.get(entry))
    assert "一数一源提示" in review and "一数一源处理意见" in review
    assert "“身份证号”是省公安厅的权威数据元“公民身份号码”，应通过共享从省公安厅获取。" in review
    assert "就业状态”是" not in review
    refused = visible(bureau.reviewer.post(f"{entry}/approve", status=422, flag_decision=""))
    assert "有 1 个信息项与其他部门的权威数据元重复（一数一源），请填写处理意见" in refused
    decision = "仅作核验键，数据从公安厅共享获取"
    approved = visible(bureau.reviewer.post(f"{entry}/approve", flag_decision=decision))
    assert "第 1 版 · 已通过" in approved and f"审核处理意见：{decision}" in approved


def test_the_form_names_the_broken_rules(bureau: Bureau) -> None:
    response = bureau.cataloguer.post(
        "/catalog/new",
        status=422,
        **entry_form(items=[("地区", "C", "50", "", True), ("人口", "C", "abc", "", False)]),
    )
    text = visible(response)
    assert "目录信息不符合要求：信息项 2 · 长度 应为整数（共 1 处）" in text
    assert "信息项 2 · 长度：应为整数" in text
    assert 'value="常住人口统计表"' in response.text  # what was typed is kept


def test_import_reports_every_error_and_a_good_file_imports(bureau: Bureau) -> None:
    person = bureau.cataloguer
    department = person.get("/catalog/department")
    assert 'action="/catalog/import"' in department.text
    template = re.search(r'href="(/api/v1/catalog/template\.xlsx)"', department.text)
    assert template is not None

    def upload(content: bytes) -> Response:
        return person.client.post(
            "/catalog/import",
            data={"csrf_token": person.csrf},
            files={"file": ("目录.xlsx", content, XLSX)},
            follow_redirects=False,
        )

    book = filled_template(person.client, {})
    header = [c.value for c in book["目录"][1]]
    book["目录"].cell(row=2, column=header.index("共享类型") + 1, value="随便共享")
    book["信息项"].append(["9", "孤儿信息项", "字符型", "", "", "否", ""])
    failed = upload(workbook_bytes(book))
    assert failed.status_code == 422
    text = visible(failed)
    assert "导入失败：共 2 处错误，未导入任何条目" in text
    assert "目录 2 共享类型 “随便共享”不是可选值" in text
    assert "信息项 5 序号 目录表中没有序号为 9 的条目" in text
    assert "义务教育学校名录" not in text

    not_xlsx = upload(b"name,summary\n")
    assert not_xlsx.status_code == 422 and "文件不是有效的 XLSX 工作簿。" in visible(not_xlsx)

    imported = upload(workbook_bytes(filled_template(person.client, {})))
    assert imported.status_code == 303
    assert imported.headers["location"] == "/catalog/department?done=created"
    listed = visible(person.get(imported.headers["location"]))
    assert "义务教育学校名录" in listed and "民办学校审批信息" in listed


def test_export_links_download_the_department_catalog(bureau: Bureau) -> None:
    create(bureau.cataloguer)
    page = bureau.cataloguer.get("/catalog/department").text
    links = re.findall(r'href="(/api/v1/catalog/export\.(\w+)\?department_id=\d+)"', page)
    assert [fmt for _link, fmt in links] == ["xlsx", "csv", "json"]
    readers: dict[str, Callable[[bytes], str]] = {
        "xlsx": lambda body: str(
            [c.value for c in openpyxl.load_workbook(io.BytesIO(body))["目录"]["B"]]
        ),
        "csv": lambda body: body.decode("utf-8-sig"),
        "json": lambda body: str([row["name"] for row in json.loads(body)]),
    }
    for link, fmt in links:
        download = bureau.cataloguer.get(html.unescape(link))
        assert "attachment" in download.headers["content-disposition"]
        assert "常住人口统计表" in readers[fmt](download.content), fmt


def test_catalog_list_acts_on_ticked_entries_and_reports_each(db: Session, bureau: Bureau) -> None:
    first, _ = create(bureau.cataloguer, name="批量一")
    second, _ = create(bureau.cataloguer, name="批量二")
    incomplete, _ = create(bureau.cataloguer, name="缺领域", domain="")
    page = bureau.cataloguer.get("/catalog/department")
    assert 'action="/catalog/bulk"' in page.text
    assert f'name="ids" value="{first}"' in page.text

    submitted = bureau.cataloguer.post(
        "/catalog/bulk", 200, action="submit", ids=[str(first), str(second), str(incomplete)]
    )
    text = visible(submitted)
    assert "成功 2 条，未执行 1 条。" in text
    assert f"#{incomplete}" in text
    # The reviewer approves the two; the trail has one event per entry.
    approved = bureau.reviewer.post("/catalog/bulk", 200, action="approve", ids=[first, second])
    assert "成功 2 条，未执行 0 条。" in visible(approved)
    published = bureau.officer.post("/catalog/bulk", 200, action="publish", ids=[first, second])
    assert "成功 2 条，未执行 0 条。" in visible(published)
    for entry_id in (first, second):
        actions = [action for action, _who in trail(db, entry_id)]
        assert actions[-3:] == ["catalog.submit", "catalog.approve", "catalog.publish"]
    # A cataloguer may not publish: every ticked entry says so.
    refused = bureau.cataloguer.post("/catalog/bulk", 200, action="publish", ids=[incomplete])
    assert "成功 0 条，未执行 1 条。" in visible(refused)
    nothing = bureau.cataloguer.post("/catalog/bulk", 422, action="publish")
    assert "请勾选条目" in visible(nothing)
