"""Console pages of collection: an entry's data (served version, versions, roll back, upload),
its sources with their mapping, its loads, and a load's page with live progress.

Paths sit beside the catalog's (``/catalog/entries/{id}`` → ``/collect/entries/{id}``).
Refusals are not caught here: they reach the error handler, which records them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from starlette.datastructures import FormData

from kuaishu.accounts.actor import Actor
from kuaishu.authz import Denied, check
from kuaishu.catalog.enums import EntryStatus
from kuaishu.collect import services
from kuaishu.collect.enums import LABELS, RunStatus, SourceKind
from kuaishu.collect.models import Source
from kuaishu.collect.schemas import RunOut, redact
from kuaishu.collect.uploads import SAMPLE_MAX_BYTES, clean_filename, spooled, submit_after_commit
from kuaishu.errors import AppError, ValidationFailed
from kuaishu.store.services import publish_version
from kuaishu.web.deps import CurrentActor, PageDep, SessionDep
from kuaishu.web.forms import redirect
from kuaishu.web.templating import local_time, render

router = APIRouter(prefix="/collect", include_in_schema=False)
upload_router = APIRouter(prefix="/collect", include_in_schema=False)

VERSION_STATES = {"ready": "已生成", "published": "已发布", "retired": "已清理"}
NO_COLUMN = "__none__"  # the form's word for "this source has no such item" (saved as "")
RECENT_RUNS = 5


async def read_form(request: Request) -> FormData:
    """The whole form (mapping rows have numbered names), read before the sync handler."""
    return await request.form()


FormDep = Annotated[FormData, Depends(read_form)]


def _labels() -> dict[str, Any]:
    return {
        "labels": {
            "RunStatus": LABELS[RunStatus],
            "SourceKind": LABELS[SourceKind],
            "VersionState": VERSION_STATES,
        },
        "kinds": list(SourceKind),
    }


OPERATIONS = {
    "load": "collect.load",
    "manage": "collect.manage_source",
    "publish": "store.publish",
    "cancel": "collect.cancel",
    "read_data": "data.read_own",
}


def _may(actor: Actor, entry: Any) -> dict[str, bool]:
    may = {name: check(actor, op, entry) is not None for name, op in OPERATIONS.items()}
    # Loads, sources and versions need a published entry; reading what exists does not.
    for name in ("load", "manage", "publish"):
        may[name] = may[name] and entry.status == EntryStatus.PUBLISHED
    return may


def _entry_page(
    request: Request,
    db: SessionDep,
    actor: Actor,
    entry_id: int,
    error: AppError | None = None,
) -> Response:
    entry = services.entry_for(db, entry_id, actor=actor)
    versions, current_id = services.versions_for(db, actor=actor, entry=entry)
    current = next((v for v in versions if v.id == current_id), None)
    return render(
        request,
        "collect/entry.html",
        {
            "entry": entry,
            "tab": "data",
            "versions": versions,
            "current": current,
            "sources": services.sources_of(db, actor=actor, entry=entry),
            "runs": services.runs_of(db, actor=actor, entry=entry, limit=RECENT_RUNS),
            "may": _may(actor, entry),
            "error": error,
            **_labels(),
        },
        status_code=error.status if error else 200,
    )


@router.get("/entries/{entry_id}")
def entry_page(request: Request, entry_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    return _entry_page(request, db, actor, entry_id)


@router.post("/entries/{entry_id}/versions/{number}/publish")
def publish(
    request: Request,
    entry_id: int,
    number: int,
    db: SessionDep,
    actor: CurrentActor,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        if not reason.strip():
            raise ValidationFailed("请说明发布或回退的原因。", code="reason_required")
        entry = services.entry_for(db, entry_id, actor=actor, operation="store.publish")
        publish_version(db, actor=actor, entry=entry, number=number, reason=reason.strip())
    except Denied:
        raise
    except AppError as exc:
        db.rollback()
        return _entry_page(request, db, actor, entry_id, exc)
    return redirect(f"/collect/entries/{entry_id}", "saved")


@upload_router.post("/entries/{entry_id}/upload")
def upload(
    request: Request,
    entry_id: int,
    background: BackgroundTasks,
    db: SessionDep,
    actor: CurrentActor,
    file: Annotated[UploadFile, File()],
    source_id: Annotated[str, Form()] = "",
) -> Response:
    try:
        entry = services.entry_for(db, entry_id, actor=actor, operation="collect.load")
        source = services.get_source(db, int(source_id)) if source_id.isdigit() else None
        name = clean_filename(file.filename)
        with spooled(file.file, filename=name) as path:
            run = services.queue_load(
                db, actor=actor, entry=entry, source=source, upload=path, filename=name
            )
    except Denied:
        raise
    except AppError as exc:
        db.rollback()
        return _entry_page(request, db, actor, entry_id, exc)
    submit_after_commit(background, request, run.id)
    return redirect(f"/collect/runs/{run.id}")


# Sources -------------------------------------------------------------------------------------------


def _sources_page(
    request: Request,
    db: SessionDep,
    actor: Actor,
    entry_id: int,
    error: AppError | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    entry = services.entry_for(db, entry_id, actor=actor)
    return render(
        request,
        "collect/sources.html",
        {
            "entry": entry,
            "tab": "sources",
            "sources": services.sources_of(db, actor=actor, entry=entry),
            "may": _may(actor, entry),
            "error": error,
            "form": form or {},
            **_labels(),
        },
        status_code=error.status if error else 200,
    )


@router.get("/entries/{entry_id}/sources")
def sources_page(request: Request, entry_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    return _sources_page(request, db, actor, entry_id)


def _config_from(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValidationFailed(
            "来源设置不是有效的 JSON：{reason}", code="config_invalid", reason=error.msg
        ) from error
    if not isinstance(config, dict):
        raise ValidationFailed("来源设置应是 JSON 对象。", code="config_invalid")
    return config


@router.post("/entries/{entry_id}/sources")
def create_source(
    request: Request, entry_id: int, db: SessionDep, actor: CurrentActor, form: FormDep
) -> Response:
    values = {k: str(form.get(k) or "").strip() for k in ("kind", "name", "config", "schedule")}
    try:
        if values["kind"] not in set(SourceKind) or not values["name"]:
            raise ValidationFailed("请填写来源名称并选择来源类型。", code="source_invalid")
        entry = services.entry_for(db, entry_id, actor=actor, operation="collect.manage_source")
        source = services.create_source(
            db,
            actor=actor,
            entry=entry,
            name=values["name"][:200],
            kind=SourceKind(values["kind"]),
            config=_config_from(values["config"]),
            schedule=values["schedule"] or None,
            secret=str(form.get("secret") or "") or None,
        )
    except Denied:
        raise
    except AppError as exc:
        db.rollback()
        return _sources_page(request, db, actor, entry_id, exc, values)
    return redirect(f"/collect/sources/{source.id}", "created")


def _source_page(
    request: Request,
    db: SessionDep,
    actor: Actor,
    source: Source,
    *,
    columns: list[str] | None = None,
    chosen: dict[str, str] | None = None,
    error: AppError | None = None,
) -> Response:
    entry = services.entry_for(db, source.entry_id, actor=actor)
    items = services.entry_items(db, entry)
    chosen = chosen if chosen is not None else dict(source.mapping)
    known = list(columns or [])
    known += [c for c in chosen.values() if c and c not in known]
    return render(
        request,
        "collect/source.html",
        {
            "entry": entry,
            "tab": "sources",
            "source": source,
            "config": redact(source.config or {}),
            "items": items,
            "columns": known,
            "sampled": columns is not None,
            "chosen": chosen,
            "no_column": NO_COLUMN,
            "may": _may(actor, entry),
            "error": error,
            **_labels(),
        },
        status_code=error.status if error else 200,
    )


@router.get("/sources/{source_id}")
def source_page(request: Request, source_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    return _source_page(request, db, actor, services.view_source(db, source_id, actor=actor))


def _mapping_from(form: FormData, items: list[str]) -> dict[str, str]:
    """Item → column from the table: a typed name wins over the list; "auto" items are left out."""
    mapping: dict[str, str] = {}
    for n, item in enumerate(items, start=1):
        typed = str(form.get(f"other-{n}") or "").strip()
        picked = str(form.get(f"map-{n}") or "")
        if typed:
            mapping[item] = typed
        elif picked == NO_COLUMN:
            mapping[item] = ""
        elif picked:
            mapping[item] = picked
    return mapping


@router.post("/sources/{source_id}/mapping")
def save_mapping(
    request: Request, source_id: int, db: SessionDep, actor: CurrentActor, form: FormDep
) -> Response:
    source = services.view_source(db, source_id, actor=actor)
    entry = services.entry_for(db, source.entry_id, actor=actor)
    items = [item.name for item in services.entry_items(db, entry)]
    services.update_mapping(db, actor=actor, source=source, mapping=_mapping_from(form, items))
    return redirect(f"/collect/sources/{source_id}", "saved")


@upload_router.post("/sources/{source_id}/sample/upload")
def read_sample(
    request: Request,
    source_id: int,
    db: SessionDep,
    actor: CurrentActor,
    file: Annotated[UploadFile, File()],
) -> Response:
    source = services.view_source(db, source_id, actor=actor)
    entry = services.entry_for(db, source.entry_id, actor=actor)
    try:
        name = clean_filename(file.filename)
        with spooled(file.file, filename=name, limit=SAMPLE_MAX_BYTES) as path:
            columns = services.sample_columns(path, filename=name)
        proposal = services.propose_for(db, actor=actor, entry=entry, columns=columns)
    except Denied:
        raise
    except AppError as exc:
        return _source_page(request, db, actor, source, error=exc)
    # What was saved stays chosen where it names a column of the sample; proposals fill the rest.
    saved = {k: v for k, v in source.mapping.items() if v == "" or v in columns}
    chosen = {**proposal["mapping"], **saved}
    return _source_page(request, db, actor, source, columns=columns, chosen=chosen)


@router.post("/sources/{source_id}/run")
def run_source(
    request: Request,
    source_id: int,
    background: BackgroundTasks,
    db: SessionDep,
    actor: CurrentActor,
) -> Response:
    try:
        entry, source = services.runnable_source(db, source_id, actor=actor)
        run = services.queue_load(db, actor=actor, entry=entry, source=source)
    except Denied:
        raise
    except AppError as exc:
        db.rollback()
        found = services.view_source(db, source_id, actor=actor)
        return _source_page(request, db, actor, found, error=exc)
    submit_after_commit(background, request, run.id)
    return redirect(f"/collect/runs/{run.id}")


def _set_enabled(db: SessionDep, actor: Actor, source_id: int, enabled: bool) -> Response:
    source = services.view_source(db, source_id, actor=actor)
    services.set_source_enabled(db, actor=actor, source=source, enabled=enabled)
    return redirect(f"/collect/sources/{source_id}", "saved")


@router.post("/sources/{source_id}/disable")
def disable_source(source_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    return _set_enabled(db, actor, source_id, False)


@router.post("/sources/{source_id}/enable")
def enable_source(source_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    return _set_enabled(db, actor, source_id, True)


# Runs ----------------------------------------------------------------------------------------------


@router.get("/entries/{entry_id}/runs")
def runs_page(
    request: Request, entry_id: int, db: SessionDep, actor: CurrentActor, page: PageDep
) -> Response:
    entry = services.entry_for(db, entry_id, actor=actor)
    result = services.list_runs(db, actor=actor, page=page, entry_id=entry_id)
    return render(
        request,
        "collect/runs.html",
        {"entry": entry, "tab": "runs", "result": result, "may": _may(actor, entry), **_labels()},
    )


TRIGGERS = {"manual": "手动", "schedule": "定时", "push": "系统推送"}


def _log_lines(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Log lines with their time in China time (they are stored as UTC ISO strings)."""
    lines = []
    for line in log:
        try:
            when = local_time(datetime.fromisoformat(str(line.get("at"))), "%H:%M:%S")
        except ValueError:
            when = ""
        lines.append({**line, "when": when})
    return lines


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    run = services.view_run(db, run_id, actor=actor)
    entry = services.entry_for(db, run.entry_id, actor=actor)
    versions, current_id = services.versions_for(db, actor=actor, entry=entry)
    shown = RunOut.of(run)
    details = run.error_details
    return render(
        request,
        "collect/run.html",
        {
            "entry": entry,
            "tab": "runs",
            "run": run,
            "finished": shown.finished,
            "quarantine_url": shown.quarantine_url,
            "source": services.get_source(db, run.source_id) if run.source_id else None,
            "version": next((v for v in versions if v.id == run.version_id), None),
            "current_id": current_id,
            "triggers": TRIGGERS,
            "log": _log_lines(list(run.log or [])),
            "error_details": json.dumps(details, ensure_ascii=False, indent=2) if details else "",
            "may": _may(actor, entry),
            **_labels(),
        },
    )


@router.post("/runs/{run_id}/cancel")
def cancel(request: Request, run_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    run = services.view_run(db, run_id, actor=actor)
    try:
        services.cancel_run(db, actor=actor, run=run)
    except Denied:
        raise
    except AppError:
        db.rollback()  # it finished meanwhile: its page says how
    return redirect(f"/collect/runs/{run_id}")
