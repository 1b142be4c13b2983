"""Console pages of the catalog: search, my department's catalog, the entry form, review,
revisions and their differences, overdue entries, the public negative list."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response
from starlette.datastructures import FormData, UploadFile

from kuaishu.accounts.actor import Actor
from kuaishu.authz import Denied, check
from kuaishu.catalog import forms, queries, services
from kuaishu.catalog.display import FIELD_LABELS, field_label, shown
from kuaishu.catalog.enums import DOMAINS, LABELS, SECURITY_LEVELS, RevisionState
from kuaishu.catalog.models import CatalogRevision
from kuaishu.catalog.schemas import FieldComment
from kuaishu.catalog.search import FACETS, SearchQuery, search
from kuaishu.errors import AppError, NotFound, ValidationFailed
from kuaishu.pagination import PageRequest
from kuaishu.web.deps import ActorDep, CurrentActor, PageDep, SessionDep
from kuaishu.web.forms import redirect
from kuaishu.web.templating import render

router = APIRouter(prefix="/catalog", include_in_schema=False)


async def read_form(request: Request) -> FormData:
    """The whole form (its data-item rows have numbered names), read before the sync handler."""
    return await request.form()


FormDep = Annotated[FormData, Depends(read_form)]


def _choices() -> dict[str, Any]:
    return {
        "labels": {t.__name__: v for t, v in LABELS.items()},
        "domains": DOMAINS,
        "levels": SECURITY_LEVELS,
        "field_labels": FIELD_LABELS,
        "field_label": field_label,
    }


def _my_department(actor: Actor) -> int | None:
    departments = sorted(actor.department_ids)
    return departments[0] if departments else None


@router.get("")
def catalog_search(
    request: Request,
    db: SessionDep,
    actor: CurrentActor,
    page: PageDep,
    q: Annotated[str, Query(max_length=100)] = "",
    view: Annotated[str, Query(pattern="^(all|share|open)$")] = "all",
) -> Response:
    filters = {k: v for k, v in request.query_params.items() if k in FACETS and v}
    result = search(db, SearchQuery(q=q, view=view, filters=filters), page)
    query = {k: v for k, v in request.query_params.items() if k != "page" and v}

    def facet_url(name: str, value: str) -> str:
        """Toggle one facet value, keeping the rest of the search."""
        chosen = {k: v for k, v in query.items() if k != name}
        if filters.get(name) != value:
            chosen[name] = value
        return "/catalog?" + urlencode(chosen)

    return render(
        request,
        "catalog/search.html",
        {
            "result": result.page,
            "facets": result.facets,
            "q": q,
            "view": view,
            "filters": filters,
            "query_string": urlencode(query),
            "facet_url": facet_url,
            **_choices(),
        },
    )


@router.get("/negative-list")
def negative_list(request: Request, db: SessionDep, actor: ActorDep) -> Response:
    rows = queries.negative_list(db, actor=actor)
    return render(request, "catalog/negative_list.html", {"rows": rows, **_choices()})


@router.get("/department")
def department(
    request: Request,
    db: SessionDep,
    actor: CurrentActor,
    page: PageDep,
    department_id: int | None = None,
) -> Response:
    department_id = department_id or _my_department(actor)
    result = queries.department_catalog(
        db, actor=actor, department_id=department_id or 0, page=page
    )
    return render(
        request,
        "catalog/department.html",
        {
            "result": result,
            "department_id": department_id,
            **_choices(),
        },
    )


@router.post("/bulk")
def bulk_action(request: Request, db: SessionDep, actor: CurrentActor, form: FormDep) -> Response:
    """Submit, approve or publish the ticked entries; the page reports each entry's outcome."""
    from kuaishu.catalog import bulk

    department_id = _my_department(actor)
    try:
        action = bulk.BulkAction(str(form.get("action") or ""))
        ids = [int(str(v)) for v in form.getlist("ids")]
        if any(not 1 <= i <= bulk.MAX_ID for i in ids):
            raise ValueError("id out of range")
    except ValueError:
        action, ids = None, []
    outcomes: list[bulk.EntryOutcome] = []
    error: AppError | None = None
    if action is None or not ids or len(ids) > bulk.MAX_SELECTION:
        error = ValidationFailed(
            "请勾选条目（最多 {n} 条）并选择操作。", code="bulk_selection", n=bulk.MAX_SELECTION
        )
    else:
        outcomes = bulk.act(
            db,
            actor=actor,
            action=action,
            ids=ids,
            flag_decision=str(form.get("flag_decision") or "").strip()[:2000],
        )
    result = queries.department_catalog(
        db, actor=actor, department_id=department_id or 0, page=PageRequest()
    )
    return render(
        request,
        "catalog/department.html",
        {
            "result": result,
            "department_id": department_id,
            "error": error,
            "outcomes": outcomes,
            "bulk_action": action,
            **_choices(),
        },
        status_code=error.status if error else 200,
    )


@router.get("/review")
def review_queue(request: Request, db: SessionDep, actor: CurrentActor, page: PageDep) -> Response:
    result = queries.review_queue(db, actor=actor, page=page)
    flags = queries.flag_counts(db, result.items)
    return render(
        request, "catalog/review_queue.html", {"result": result, "flags": flags, **_choices()}
    )


@router.get("/overdue")
def overdue(request: Request, db: SessionDep, actor: CurrentActor) -> Response:
    scope = None if check(actor, "catalog.overdue_all") else _my_department(actor)
    rows = queries.overdue(db, actor=actor, today=date.today(), department_id=scope)
    return render(request, "catalog/overdue.html", {"rows": rows, **_choices()})


@router.get("/new")
def new_entry(request: Request, db: SessionDep, actor: CurrentActor) -> Response:
    from kuaishu.authz import authorize

    authorize(actor, "catalog.create", _my_department(actor))
    return _form(request, None, forms.form_values(None))


def _form(
    request: Request,
    entry: Any,
    values: dict[str, Any],
    error: AppError | None = None,
    revision: CatalogRevision | None = None,
) -> Response:
    """The entry form; when editing, the reviewer's remarks on the revision are shown above it."""
    return render(
        request,
        "catalog/form.html",
        {
            "entry": entry,
            "form": values,
            "error": error,
            "revision": revision,
            "blank_rows": forms.BLANK_ITEM_ROWS,
            **_choices(),
        },
        status_code=error.status if error else 200,
    )


@router.post("/new")
def create_entry(request: Request, db: SessionDep, actor: CurrentActor, form: FormDep) -> Response:
    try:
        data = forms.revision_from_form(form)
        entry = services.create_entry(
            db, actor=actor, department_id=_my_department(actor) or 0, data=data
        )
    except AppError as exc:
        _refuse_if_denied(exc)
        db.rollback()
        return _form(request, None, _raw(form), exc)
    return redirect(f"/catalog/entries/{entry.id}", "created")


def _refuse_if_denied(exc: AppError) -> None:
    """A refusal by policy goes to the error handler, which records it in the audit trail."""
    if isinstance(exc, Denied):
        raise exc


def _raw(form: Any) -> dict[str, Any]:
    values = {k: form.get(k) for k in form if not k.startswith("items-")}
    values["share_methods"] = form.getlist("share_methods")
    values["items"] = forms._items(form)
    return values


@router.get("/entries/{entry_id}")
def entry_page(request: Request, entry_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    return _entry(request, db, actor, entry_id)


def _entry(
    request: Request, db: SessionDep, actor: Actor, entry_id: int, error: AppError | None = None
) -> Response:
    entry = services.view_entry(db, entry_id, actor=actor)
    revisions = services.visible_revisions(db, entry, actor=actor)
    working = next((r for r in revisions if r.id == entry.working_revision_id), None)
    in_force = next((r for r in revisions if r.id == entry.published_revision_id), None)
    may = {
        op: check(actor, f"catalog.{op}", entry) is not None
        for op in ("edit", "submit", "review", "publish", "withdraw")
    }
    return render(
        request,
        "catalog/entry.html",
        {
            "entry": entry,
            "revisions": revisions,
            "working": working,
            "in_force": in_force,
            "may": may,
            "error": error,
            "states": RevisionState,
            **_choices(),
        },
        status_code=error.status if error else 200,
    )


@router.get("/entries/{entry_id}/edit")
def edit_entry(request: Request, entry_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    from kuaishu.authz import authorize

    entry = services.get_entry(db, entry_id)
    authorize(actor, "catalog.edit", entry)
    revision = services.working_revision(db, entry)
    values = forms.form_values(services.revision_data(revision))
    return _form(request, entry, values, revision=revision)


@router.post("/entries/{entry_id}/edit")
def save_entry(
    request: Request, entry_id: int, db: SessionDep, actor: CurrentActor, form: FormDep
) -> Response:
    try:
        services.update_draft(db, entry_id, actor=actor, data=forms.revision_from_form(form))
    except AppError as exc:
        _refuse_if_denied(exc)
        db.rollback()
        entry = services.get_entry(db, entry_id)
        revision = services.working_revision(db, entry)
        return _form(request, entry, _raw(form), exc, revision)
    return redirect(f"/catalog/entries/{entry_id}", "saved")


def _act(request: Request, db: SessionDep, actor: Actor, entry_id: int, run: Any) -> Response:
    try:
        run()
    except AppError as exc:
        _refuse_if_denied(exc)
        db.rollback()
        return _entry(request, db, actor, entry_id, exc)
    return redirect(f"/catalog/entries/{entry_id}", "saved")


@router.post("/entries/{entry_id}/submit")
def submit(request: Request, entry_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    return _act(request, db, actor, entry_id, lambda: services.submit(db, entry_id, actor=actor))


@router.post("/entries/{entry_id}/approve")
def approve(
    request: Request,
    entry_id: int,
    db: SessionDep,
    actor: CurrentActor,
    flag_decision: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    return _act(
        request,
        db,
        actor,
        entry_id,
        lambda: services.approve(db, entry_id, actor=actor, flag_decision=flag_decision),
    )


@router.post("/entries/{entry_id}/return")
def return_entry(
    request: Request, entry_id: int, db: SessionDep, actor: CurrentActor, form: FormDep
) -> Response:
    remarks = [
        FieldComment(
            field=str(form.get(f"field-{n}")), comment=str(form.get(f"comment-{n}")).strip()
        )
        for n in range(1, 11)
        if form.get(f"field-{n}") and str(form.get(f"comment-{n}", "")).strip()
    ]
    return _act(
        request,
        db,
        actor,
        entry_id,
        lambda: services.return_for_changes(db, entry_id, actor=actor, comments=remarks),
    )


@router.post("/entries/{entry_id}/publish")
def publish(request: Request, entry_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    return _act(request, db, actor, entry_id, lambda: services.publish(db, entry_id, actor=actor))


@router.post("/entries/{entry_id}/revise")
def revise(request: Request, entry_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    return _act(
        request, db, actor, entry_id, lambda: services.start_revision(db, entry_id, actor=actor)
    )


@router.post("/entries/{entry_id}/withdraw")
def withdraw(
    request: Request,
    entry_id: int,
    db: SessionDep,
    actor: CurrentActor,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    return _act(
        request,
        db,
        actor,
        entry_id,
        lambda: services.withdraw(db, entry_id, actor=actor, reason=reason),
    )


@router.get("/entries/{entry_id}/diff")
def diff(
    request: Request,
    entry_id: int,
    db: SessionDep,
    actor: CurrentActor,
    from_number: Annotated[int, Query(alias="from", ge=1)] = 1,
    to_number: Annotated[int, Query(alias="to", ge=1)] = 2,
) -> Response:
    entry = services.view_entry(db, entry_id, actor=actor)
    revisions = {r.number: r for r in services.visible_revisions(db, entry, actor=actor)}
    if from_number not in revisions or to_number not in revisions:
        raise NotFound("目录修订不存在。", code="revision_not_found")
    rows = [
        {
            "field": field_label(row["field"]),
            "before": shown(row["field"], row["before"]),
            "after": shown(row["field"], row["after"]),
        }
        for row in services.diff(revisions[from_number], revisions[to_number])
    ]
    return render(
        request,
        "catalog/diff.html",
        {
            "entry": entry,
            "rows": rows,
            "from_number": from_number,
            "to_number": to_number,
            "numbers": sorted(revisions),
            **_choices(),
        },
    )


@router.post("/import")
def import_workbook(
    request: Request, db: SessionDep, actor: CurrentActor, form: FormDep
) -> Response:
    from kuaishu.catalog import spreadsheet

    upload = form.get("file")
    content = upload.file.read() if isinstance(upload, UploadFile) else b""
    department_id = _my_department(actor) or 0
    try:
        entries = spreadsheet.read_workbook(content)
        services.import_entries(db, actor=actor, department_id=department_id, entries=entries)
    except AppError as exc:
        _refuse_if_denied(exc)
        db.rollback()
        result = queries.department_catalog(
            db, actor=actor, department_id=department_id, page=PageRequest()
        )
        return render(
            request,
            "catalog/department.html",
            {
                "result": result,
                "department_id": department_id,
                "error": exc,
                **_choices(),
            },
            status_code=exc.status,
        )
    return redirect("/catalog/department", "created")
