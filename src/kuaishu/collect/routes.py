"""REST endpoints of collection: sources and their mapping, loads (jobs), pushes, versions.

Entries are named by their id, as in the catalog API (a resource code holds a "/"); sources,
runs and versions by their own id or number. Loads answer 202 with the queued run: the job
starts once the request's transaction has committed, and its progress is read from the run.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import StreamingResponse

from kuaishu.catalog.enums import EntryStatus
from kuaishu.collect import services
from kuaishu.collect.enums import RunStatus
from kuaishu.collect.models import Source
from kuaishu.collect.push import push_records
from kuaishu.collect.schemas import (
    CollectionOut,
    ColumnsIn,
    MappingIn,
    ProposalOut,
    PublishIn,
    RunOut,
    SourceIn,
    SourceOut,
    VersionOut,
)
from kuaishu.collect.uploads import SAMPLE_MAX_BYTES, clean_filename, spooled, submit_after_commit
from kuaishu.i18n import gettext_
from kuaishu.pagination import PageOut
from kuaishu.store.services import publish_version
from kuaishu.web.deps import CurrentActor, PageDep, SessionDep
from kuaishu.web.downloads import attachment_header

PREFIX = "/api/v1/collect"
router = APIRouter(prefix=PREFIX, tags=["collect"])
# Files and pushes: the app gives this router the upload body limit (paths end in /upload, /push).
upload_router = APIRouter(prefix=PREFIX, tags=["collect"])

UploadDep = Annotated[
    UploadFile, File(description="数据文件（CSV、XLSX、XLS、JSON、XML、Parquet…）")
]


# Overview and sources ---------------------------------------------------------------------------


@router.get("/entries/{entry_id}", response_model=CollectionOut, summary="资源的数据概况")
def collection(entry_id: int, db: SessionDep, actor: CurrentActor) -> object:
    entry = services.entry_for(db, entry_id, actor=actor)
    versions, current_id = services.versions_for(db, actor=actor, entry=entry)
    current = next((v for v in versions if v.id == current_id), None)
    latest = services.runs_of(db, actor=actor, entry=entry, limit=1)
    return CollectionOut(
        entry_id=entry.id,
        code=entry.code,
        name=entry.name,
        department_id=entry.department_id,
        published=entry.status == EntryStatus.PUBLISHED,
        current_version=VersionOut.of(current, current_id) if current else None,
        sources=[SourceOut.of(s) for s in services.sources_of(db, actor=actor, entry=entry)],
        latest_run=RunOut.of(latest[0]) if latest else None,
    )


@router.get("/entries/{entry_id}/sources", response_model=list[SourceOut], summary="采集来源")
def list_sources(entry_id: int, db: SessionDep, actor: CurrentActor) -> object:
    entry = services.entry_for(db, entry_id, actor=actor)
    return [SourceOut.of(s) for s in services.sources_of(db, actor=actor, entry=entry)]


@router.post(
    "/entries/{entry_id}/sources",
    response_model=SourceOut,
    status_code=201,
    summary="新建采集来源（凭据加密保存，永不返回）",
)
def create_source(entry_id: int, body: SourceIn, db: SessionDep, actor: CurrentActor) -> object:
    entry = services.entry_for(db, entry_id, actor=actor, operation="collect.manage_source")
    source = services.create_source(db, actor=actor, entry=entry, **body.model_dump())
    return SourceOut.of(source)


@router.get("/sources/{source_id}", response_model=SourceOut, summary="采集来源")
def get_source(source_id: int, db: SessionDep, actor: CurrentActor) -> object:
    return SourceOut.of(services.view_source(db, source_id, actor=actor))


@router.put("/sources/{source_id}/mapping", response_model=SourceOut, summary="保存字段映射")
def save_mapping(source_id: int, body: MappingIn, db: SessionDep, actor: CurrentActor) -> object:
    source = services.view_source(db, source_id, actor=actor)
    return SourceOut.of(
        services.update_mapping(db, actor=actor, source=source, mapping=body.mapping)
    )


@router.post("/sources/{source_id}/disable", response_model=SourceOut, summary="停用采集来源")
def disable_source(source_id: int, db: SessionDep, actor: CurrentActor) -> object:
    source = services.view_source(db, source_id, actor=actor)
    return SourceOut.of(services.set_source_enabled(db, actor=actor, source=source, enabled=False))


@router.post("/sources/{source_id}/enable", response_model=SourceOut, summary="启用采集来源")
def enable_source(source_id: int, db: SessionDep, actor: CurrentActor) -> object:
    source = services.view_source(db, source_id, actor=actor)
    return SourceOut.of(services.set_source_enabled(db, actor=actor, source=source, enabled=True))


@router.post(
    "/entries/{entry_id}/mapping/propose",
    response_model=ProposalOut,
    summary="按列名建议字段映射",
)
def propose_mapping(
    entry_id: int, body: ColumnsIn, db: SessionDep, actor: CurrentActor
) -> dict[str, Any]:
    entry = services.entry_for(db, entry_id, actor=actor, operation="collect.manage_source")
    return services.propose_for(db, actor=actor, entry=entry, columns=body.columns)


@upload_router.post(
    "/entries/{entry_id}/mapping/propose/upload",
    response_model=ProposalOut,
    summary="按样例文件的表头建议字段映射",
)
def propose_from_sample(
    entry_id: int, db: SessionDep, actor: CurrentActor, file: UploadDep
) -> dict[str, Any]:
    entry = services.entry_for(db, entry_id, actor=actor, operation="collect.manage_source")
    name = clean_filename(file.filename)
    with spooled(file.file, filename=name, limit=SAMPLE_MAX_BYTES) as path:
        columns = services.sample_columns(path, filename=name)
    return services.propose_for(db, actor=actor, entry=entry, columns=columns)


# Loads --------------------------------------------------------------------------------------------


def _source_for_upload(db: SessionDep, source_id: int | None) -> Source | None:
    return services.get_source(db, source_id) if source_id else None


@upload_router.post(
    "/entries/{entry_id}/upload",
    response_model=RunOut,
    status_code=202,
    summary="上传文件加载（可指定来源以使用其字段映射）",
)
def upload(
    entry_id: int,
    request: Request,
    background: BackgroundTasks,
    db: SessionDep,
    actor: CurrentActor,
    file: UploadDep,
    source_id: Annotated[int | None, Form(description="来源（使用其字段映射）")] = None,
    mode: Annotated[
        str,
        Form(
            description="replace：生成完整新版本（默认）；append：追加到现行版本，如修正后的隔离行"
        ),
    ] = "replace",
) -> object:
    # Authorize before copying: a refused caller's file is never written out again.
    entry = services.entry_for(db, entry_id, actor=actor, operation="collect.load")
    source = _source_for_upload(db, source_id)
    name = clean_filename(file.filename)
    with spooled(file.file, filename=name) as path:
        run = services.queue_load(
            db, actor=actor, entry=entry, source=source, upload=path, filename=name, mode=mode
        )
    submit_after_commit(background, request, run.id)
    return RunOut.of(run)


@router.post(
    "/sources/{source_id}/run", response_model=RunOut, status_code=202, summary="立即运行来源"
)
def run_source(
    source_id: int,
    request: Request,
    background: BackgroundTasks,
    db: SessionDep,
    actor: CurrentActor,
) -> object:
    entry, source = services.runnable_source(db, source_id, actor=actor)
    run = services.queue_load(db, actor=actor, entry=entry, source=source)
    submit_after_commit(background, request, run.id)
    return RunOut.of(run)


async def raw_body(request: Request) -> bytes:
    """The pushed records as sent (the push service checks and stores them)."""
    return await request.body()


PUSH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}


@upload_router.post(
    "/sources/{source_id}/push",
    response_model=RunOut,
    status_code=202,
    summary="系统推送数据（JSON 记录数组、JSON Lines 或 CSV，以 API 密钥调用）",
    openapi_extra=PUSH_BODY,
)
def push(
    source_id: int,
    request: Request,
    background: BackgroundTasks,
    db: SessionDep,
    actor: CurrentActor,
    body: Annotated[bytes, Depends(raw_body)],
) -> object:
    source = services.get_source(db, source_id)
    content_type = request.headers.get("content-type", "")
    run = push_records(db, actor=actor, source=source, body=body, content_type=content_type)
    submit_after_commit(background, request, run.id)
    return RunOut.of(run)


@router.get("/runs", response_model=PageOut[RunOut], summary="加载任务（可按资源、状态筛选）")
def list_runs(
    db: SessionDep,
    actor: CurrentActor,
    page: PageDep,
    entry_id: Annotated[int | None, Query(description="目录条目")] = None,
    status: Annotated[RunStatus | None, Query(description="状态")] = None,
) -> dict[str, Any]:
    result = services.list_runs(db, actor=actor, page=page, entry_id=entry_id, status=status)
    return {
        "items": [RunOut.of(run) for run in result.items],
        "page": result.page,
        "page_size": result.page_size,
        "total": result.total,
        "pages": result.pages,
    }


@router.get("/runs/{run_id}", response_model=RunOut, summary="加载任务（状态、进度、日志、错误）")
def get_run(run_id: int, db: SessionDep, actor: CurrentActor) -> object:
    return RunOut.of(services.view_run(db, run_id, actor=actor))


@router.post("/runs/{run_id}/cancel", response_model=RunOut, summary="取消加载任务")
def cancel_run(run_id: int, db: SessionDep, actor: CurrentActor) -> object:
    run = services.view_run(db, run_id, actor=actor)
    return RunOut.of(services.cancel_run(db, actor=actor, run=run))


@router.get(
    "/runs/{run_id}/quarantine.csv",
    summary="下载被隔离的数据行及原因（CSV，流式）",
    response_class=StreamingResponse,
)
def quarantine(
    run_id: int,
    db: SessionDep,
    actor: CurrentActor,
    bom: Annotated[bool, Query(description="加 BOM，便于 Excel 打开")] = False,
) -> StreamingResponse:
    run = services.view_run(db, run_id, actor=actor)
    path = services.quarantine_of(db, actor=actor, run=run)
    labels = {"_line": gettext_("源文件行号"), "_reason": gettext_("隔离原因")}
    return StreamingResponse(
        quarantine_csv(path, labels, bom=bom),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": attachment_header(gettext_("隔离数据-任务{n}.csv", n=run.id))
        },
    )


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    """A text cell Excel would run as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def quarantine_csv(path: Path, labels: dict[str, str], *, bom: bool) -> Iterator[bytes]:
    """The quarantine Parquet as CSV, a batch at a time."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([labels.get(name, name) for name in names])
    yield (("\ufeff" if bom else "") + buffer.getvalue()).encode()
    for batch in parquet.iter_batches(batch_size=8192):
        buffer.seek(0)
        buffer.truncate()
        columns = [column.to_pylist() for column in batch.columns]
        writer.writerows([_cell(v) for v in row] for row in zip(*columns, strict=True))
        yield buffer.getvalue().encode()


# Versions -----------------------------------------------------------------------------------------


@router.get(
    "/entries/{entry_id}/versions", response_model=list[VersionOut], summary="数据版本（新→旧）"
)
def list_versions(entry_id: int, db: SessionDep, actor: CurrentActor) -> object:
    entry = services.entry_for(db, entry_id, actor=actor)
    versions, current_id = services.versions_for(db, actor=actor, entry=entry)
    return [VersionOut.of(v, current_id) for v in versions]


@router.post(
    "/entries/{entry_id}/versions/{number}/publish",
    response_model=VersionOut,
    summary="发布或回退到指定版本（须说明原因）",
)
def publish(
    entry_id: int, number: int, body: PublishIn, db: SessionDep, actor: CurrentActor
) -> object:
    entry = services.entry_for(db, entry_id, actor=actor, operation="store.publish")
    version = publish_version(
        db,
        actor=actor,
        entry=entry,
        number=number,
        reason=body.reason,
        override_release=body.override_release,
    )
    return VersionOut.of(version, version.id)
