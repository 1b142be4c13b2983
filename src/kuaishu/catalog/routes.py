"""REST endpoints of the catalog: compile, review, publish, search, negative list."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from fastapi import Path as PathParam
from pydantic import Field, TypeAdapter
from pydantic import ValidationError as PydanticError

from kuaishu.accounts.routes import page_out
from kuaishu.catalog import bulk, importer, queries, services, sources, spreadsheet
from kuaishu.catalog.enums import EntryStatus
from kuaishu.catalog.schemas import (
    ApproveIn,
    DiffRow,
    EntryCreateIn,
    EntryOut,
    NegativeListRow,
    ReturnIn,
    RevisionIn,
    RevisionOut,
    SearchOut,
    WithdrawIn,
)
from kuaishu.catalog.search import FACETS, SearchQuery, search
from kuaishu.errors import ValidationFailed
from kuaishu.pagination import Paged, PageOut
from kuaishu.schemas import Input
from kuaishu.web.deps import ActorDep, CurrentActor, PageDep, SessionDep

router = APIRouter(prefix="/api/v1/catalog", tags=["catalog"])
# A portal's whole catalog is larger than an ordinary request body: its own, upload-sized limit.
upload_router = APIRouter(prefix="/api/v1/catalog", tags=["catalog"])


class StructureChangeIn(Input):
    on: date = Field(description="数据结构变化的日期")


def _department_of(actor: CurrentActor, requested: int | None) -> int:
    if requested is not None:
        return requested
    departments = sorted(actor.department_ids)
    if len(departments) != 1:
        raise ValidationFailed(
            "请指定部门（department_id）。",
            code="department_required",
            details={"field": "department_id"},
        )
    return departments[0]


@router.post("/entries", response_model=EntryOut, status_code=201, summary="新建目录条目（草稿）")
def create_entry(body: EntryCreateIn, db: SessionDep, actor: CurrentActor) -> object:
    data = RevisionIn.model_validate(body.model_dump(exclude={"department_id"}))
    return services.create_entry(
        db, actor=actor, department_id=_department_of(actor, body.department_id), data=data
    )


class BulkIn(Input):
    action: bulk.BulkAction = Field(description="submit 提交审核 / approve 审核通过 / publish 发布")
    ids: list[Annotated[int, Field(ge=1, le=bulk.MAX_ID)]] = Field(
        min_length=1, max_length=bulk.MAX_SELECTION, description="目录条目 ID"
    )
    flag_decision: str = Field(default="", max_length=2000, description="审核通过时的一数一源意见")


class BulkOutcomeOut(Input):
    id: int
    ok: bool
    code: str | None
    state: str | None
    error: str | None
    message: str | None


class BulkOut(Input):
    action: str
    done: int
    refused: int
    outcomes: list[BulkOutcomeOut]


@router.post(
    "/entries/bulk",
    response_model=BulkOut,
    summary="批量提交 / 审核通过 / 发布（逐条授权、逐条审计、逐条报告结果）",
)
def bulk_action(body: BulkIn, db: SessionDep, actor: CurrentActor) -> object:
    outcomes = bulk.act(
        db, actor=actor, action=body.action, ids=body.ids, flag_decision=body.flag_decision
    )
    done = sum(1 for o in outcomes if o.ok)
    return {
        "action": body.action,
        "done": done,
        "refused": len(outcomes) - done,
        "outcomes": [o.as_dict() for o in outcomes],
    }


@router.get("/entries", response_model=SearchOut, summary="检索已发布目录（含分面统计）")
def search_entries(
    db: SessionDep,
    actor: CurrentActor,
    page: PageDep,
    q: Annotated[str, Query(max_length=100, description="关键词")] = "",
    view: Annotated[
        str, Query(pattern="^(all|share|open)$", description="全部 / 共享目录 / 开放目录")
    ] = "all",
    domain: str | None = None,
    department_id: int | None = None,
    resource_class: str | None = None,
    share_type: str | None = None,
    open_type: str | None = None,
    resource_format: str | None = None,
    update_cycle: str | None = None,
) -> dict[str, Any]:
    from kuaishu.authz import authorize

    authorize(actor, "catalog.read")
    values = {
        "domain": domain,
        "department_id": department_id,
        "resource_class": resource_class,
        "share_type": share_type,
        "open_type": open_type,
        "resource_format": resource_format,
        "update_cycle": update_cycle,
    }
    filters = {k: str(v) for k, v in values.items() if v is not None and k in FACETS}
    result = search(db, SearchQuery(q=q, view=view, filters=filters), page)
    return {**page_out(result.page, EntryOut), "facets": result.facets}


@router.get("/entries/{entry_id}", response_model=EntryOut, summary="目录条目")
def get_entry(entry_id: int, db: SessionDep, actor: CurrentActor) -> object:
    return services.view_entry(db, entry_id, actor=actor)


@router.get(
    "/entries/{entry_id}/revisions", response_model=PageOut[RevisionOut], summary="修订列表"
)
def list_revisions(entry_id: int, db: SessionDep, actor: CurrentActor, page: PageDep) -> object:
    entry = services.view_entry(db, entry_id, actor=actor)
    revisions = services.visible_revisions(db, entry, actor=actor)
    window = revisions[page.offset : page.offset + page.page_size]
    return page_out(Paged(window, len(revisions), page.page, page.page_size), RevisionOut)


@router.get("/entries/{entry_id}/diff", response_model=list[DiffRow], summary="比较两个修订")
def diff(
    entry_id: int,
    db: SessionDep,
    actor: CurrentActor,
    from_number: Annotated[int, Query(alias="from", ge=1)],
    to_number: Annotated[int, Query(alias="to", ge=1)],
) -> object:
    entry = services.view_entry(db, entry_id, actor=actor)
    revisions = {r.number: r for r in services.visible_revisions(db, entry, actor=actor)}
    if from_number not in revisions or to_number not in revisions:
        from kuaishu.errors import NotFound

        raise NotFound("目录修订不存在。", code="revision_not_found")
    return services.diff(revisions[from_number], revisions[to_number])


@router.put("/entries/{entry_id}/draft", response_model=RevisionOut, summary="保存草稿")
def update_draft(entry_id: int, body: RevisionIn, db: SessionDep, actor: CurrentActor) -> object:
    return services.update_draft(db, entry_id, actor=actor, data=body)


@router.post("/entries/{entry_id}/submit", response_model=RevisionOut, summary="提交审核")
def submit(entry_id: int, db: SessionDep, actor: CurrentActor) -> object:
    return services.submit(db, entry_id, actor=actor)


@router.post("/entries/{entry_id}/return", response_model=RevisionOut, summary="退回（逐条意见）")
def return_for_changes(
    entry_id: int, body: ReturnIn, db: SessionDep, actor: CurrentActor
) -> object:
    return services.return_for_changes(db, entry_id, actor=actor, comments=body.comments)


@router.post("/entries/{entry_id}/approve", response_model=RevisionOut, summary="审核通过")
def approve(entry_id: int, body: ApproveIn, db: SessionDep, actor: CurrentActor) -> object:
    return services.approve(db, entry_id, actor=actor, flag_decision=body.flag_decision)


@router.post("/entries/{entry_id}/publish", response_model=EntryOut, summary="发布")
def publish(entry_id: int, db: SessionDep, actor: CurrentActor) -> object:
    return services.publish(db, entry_id, actor=actor)


@router.post(
    "/entries/{entry_id}/revise", response_model=RevisionOut, status_code=201, summary="发起修订"
)
def revise(entry_id: int, db: SessionDep, actor: CurrentActor) -> object:
    return services.start_revision(db, entry_id, actor=actor)


@router.post("/entries/{entry_id}/withdraw", response_model=EntryOut, summary="撤销（公开原因）")
def withdraw(entry_id: int, body: WithdrawIn, db: SessionDep, actor: CurrentActor) -> object:
    return services.withdraw(db, entry_id, actor=actor, reason=body.reason)


@router.post(
    "/entries/{entry_id}/structure-change",
    response_model=EntryOut,
    summary="登记数据结构变化（2 个工作日内更新）",
)
def structure_change(
    entry_id: int, body: StructureChangeIn, db: SessionDep, actor: CurrentActor
) -> object:
    return services.report_structure_change(db, entry_id, actor=actor, on=body.on)


@router.get(
    "/departments/{department_id}/entries",
    response_model=PageOut[EntryOut],
    summary="部门目录（含草稿）",
)
def department_catalog(
    department_id: int,
    db: SessionDep,
    actor: CurrentActor,
    page: PageDep,
    status: EntryStatus | None = None,
) -> object:
    result = queries.department_catalog(
        db, actor=actor, department_id=department_id, page=page, status=status
    )
    return page_out(result, EntryOut)


@router.get("/review-queue", response_model=PageOut[EntryOut], summary="待审核")
def review_queue(db: SessionDep, actor: CurrentActor, page: PageDep) -> object:
    return page_out(queries.review_queue(db, actor=actor, page=page), EntryOut)


class OverdueOut(EntryOut):
    reasons: list[dict[str, str]]


@router.get("/overdue", response_model=PageOut[OverdueOut], summary="逾期未更新/未复核")
def overdue(
    db: SessionDep,
    actor: CurrentActor,
    page: PageDep,
    department_id: int | None = None,
) -> object:
    rows = queries.overdue(db, actor=actor, today=date.today(), department_id=department_id)
    items = [
        OverdueOut.model_validate(
            {**EntryOut.model_validate(r["entry"]).model_dump(), "reasons": r["reasons"]}
        )
        for r in rows
    ]
    window = items[page.offset : page.offset + page.page_size]
    return {
        "items": window,
        "page": page.page,
        "page_size": page.page_size,
        "total": len(items),
        "pages": max(1, -(-len(items) // page.page_size)),
    }


@router.get(
    "/negative-list",
    response_model=PageOut[NegativeListRow],
    summary="负面清单（依申请开放、不予开放及其依据，公开）",
)
def negative_list(db: SessionDep, actor: ActorDep, page: PageDep) -> object:
    rows = queries.negative_list(db, actor=actor)
    window = rows[page.offset : page.offset + page.page_size]
    return {
        "items": window,
        "page": page.page,
        "page_size": page.page_size,
        "total": len(rows),
        "pages": max(1, -(-len(rows) // page.page_size)),
    }


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/template.xlsx", summary="下载目录编制模板（XLSX）")
def template(actor: CurrentActor) -> Response:
    from kuaishu.web.downloads import attachment_header

    return Response(
        spreadsheet.write_workbook([]),
        media_type=XLSX,
        headers={"Content-Disposition": attachment_header("政务数据资源目录编制模板.xlsx")},
    )


class ImportOut(Input):
    created: int
    codes: list[str]


@router.post(
    "/import",
    response_model=ImportOut,
    status_code=201,
    summary="导入目录（XLSX，逐行校验，有错则全部不导入）",
)
def import_workbook(
    db: SessionDep,
    actor: CurrentActor,
    file: Annotated[UploadFile, File(description="按模板填写的 XLSX")],
    department_id: int | None = None,
) -> object:
    content = file.file.read()
    entries = spreadsheet.read_workbook(content)
    made = services.import_entries(
        db, actor=actor, department_id=_department_of(actor, department_id), entries=entries
    )
    return {"created": len(made), "codes": [entry.code for entry in made]}


@router.get("/export.{fmt}", summary="导出部门目录（xlsx / csv / json）")
def export(
    fmt: Annotated[str, PathParam(pattern="^(xlsx|csv|json)$")],
    db: SessionDep,
    actor: CurrentActor,
    department_id: int | None = None,
) -> Response:
    from kuaishu.web.downloads import attachment_header

    rows = services.export_entries(
        db, actor=actor, department_id=_department_of(actor, department_id)
    )
    if fmt == "xlsx":
        body, media = spreadsheet.write_workbook(entry for _code, entry in rows), XLSX
    elif fmt == "csv":
        body, media = spreadsheet.write_csv(rows), "text/csv; charset=utf-8"
    else:
        body, media = spreadsheet.write_json(rows), "application/json"
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": attachment_header(f"目录导出.{fmt}")},
    )


MAX_IMPORT_BYTES = 50 * 1024 * 1024
_MAPPING = TypeAdapter(dict[Annotated[str, Field(max_length=100)], str | None])


def parse_mapping(text: str) -> dict[str, str | None]:
    """The operator's confirmed category → domain mapping (a JSON object)."""
    try:
        return _MAPPING.validate_json(text or "{}")
    except PydanticError:
        raise ValidationFailed(
            "类别对应关系应为 JSON 对象，键为来源类别，值为领域或 null。",
            code="invalid_mapping",
            details={"field": "mapping"},
        ) from None


@upload_router.post(
    "/bulk-import/upload",
    summary="跨部门导入其他平台的目录（先预览类别与部门对应，确认后导入；完全重复的条目只报告）",
    response_model=None,
)
def bulk_import(
    db: SessionDep,
    actor: CurrentActor,
    response: Response,
    file: Annotated[UploadFile, File(description="目录文件")],
    format: Annotated[sources.SourceFormat, Form(description="xlsx / csv / json / jsonl / ckan")],
    confirm: Annotated[bool, Form(description="false：只返回预览；true：按 mapping 导入")] = False,
    mapping: Annotated[
        str, Form(max_length=100_000, description="确认的类别→领域对应（JSON 对象）")
    ] = "",
    region_id: Annotated[int | None, Form(description="新建部门的默认行政区")] = None,
    source: Annotated[str, Form(max_length=100, description="来源平台名称")] = "",
) -> dict[str, Any]:
    from kuaishu.authz import authorize

    authorize(actor, "catalog.import")
    content = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(content) > MAX_IMPORT_BYTES:
        raise ValidationFailed("文件超过 50 MB。", code="import_too_large")
    parsed = sources.read(content, format, source)
    plan = importer.plan_import(db, actor=actor, parsed=parsed, region_id=region_id)
    if not confirm:
        return {"confirmed": False, **plan.as_dict()}
    result = importer.run_import(
        db, actor=actor, plan=plan, mapping=parse_mapping(mapping), source=source
    )
    response.status_code = 201
    return {"confirmed": True, **result.as_dict()}
