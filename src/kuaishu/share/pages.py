"""Console pages of the sharing exchange (共享交换), first half: the share catalog, applying, and
the applications both sides follow — answered, refused with a reason, revised and resubmitted,
overturned by the operator. Grants, objections and usage are in :mod:`kuaishu.share.grant_pages`.

The pages call the services the API calls; those authorize and record every change. Refusals by
policy are not caught here: they reach the error handler, which records them too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from kuaishu.accounts.actor import Actor
from kuaishu.authz import Denied, authorize, check
from kuaishu.calendar import china_today
from kuaishu.catalog.enums import LABELS as CATALOG_LABELS
from kuaishu.catalog.services import get_entry
from kuaishu.collect.services import entry_items
from kuaishu.errors import AppError
from kuaishu.share import directory, forms, services
from kuaishu.share.directory import BetweenDepartments
from kuaishu.share.enums import LABELS, AccessMethod, ApplicationState
from kuaishu.share.models import ShareGrant
from kuaishu.share.routes import application_out
from kuaishu.share.routes import approve_as as approve_as_api
from kuaishu.web.deps import CurrentActor, PageDep, SessionDep
from kuaishu.web.forms import redirect
from kuaishu.web.templating import render

router = APIRouter(prefix="/share", include_in_schema=False)

OBJECTION_STATES = {"submitted": "待答复", "corrected": "已更正", "rejected": "已驳回"}
# What a service's list of problems (``details``) says, per code.
PROBLEMS = {
    "unknown_item": "没有这个信息项",
    "unknown_method": "没有这种共享方式",
    "required": "请至少选择一项",
    "bad_filter": "写法有误，或没有这个字段",
}
Row = TypeVar("Row", bound=BetweenDepartments)


async def read_form(request: Request) -> FormData:
    """The whole form (checkbox lists, numbered rows), read before the sync handler."""
    return await request.form()


FormDep = Annotated[FormData, Depends(read_form)]


def labels() -> dict[str, Any]:
    """What every exchange page needs to name states, methods and fields."""
    return {
        "share_labels": LABELS,
        "catalog_labels": {t.__name__: v for t, v in CATALOG_LABELS.items()},
        "access_methods": list(AccessMethod),
        "objection_states": OBJECTION_STATES,
        "field_label": forms.field_label,
        "problems": PROBLEMS,
    }


def sides(rows: Iterable[Row], actor: Actor) -> dict[str, list[Row]]:
    """Rows where the actor's department consumes, where it provides, and — for the operator, who
    sees every department's exchange — the rest."""
    mine = actor.department_ids
    found: dict[str, list[Row]] = {"consumer": [], "provider": [], "others": []}
    for row in rows:
        if row.consumer_department_id in mine:
            found["consumer"].append(row)
        elif row.provider_department_id in mine:
            found["provider"].append(row)
        else:
            found["others"].append(row)
    return found


def acted(
    run: Callable[[], tuple[str, str]],
    db: SessionDep,
    again: Callable[..., Response],
    **shown: Any,
) -> Response:
    """Run a change; on success go where it says with its notice, on a mistake roll back and show
    the page again (``again``) with the error and ``shown`` (what was typed, which form). Refusals
    by policy go on to the error handler."""
    try:
        url, notice = run()
    except Denied:
        raise
    except AppError as exc:
        db.rollback()
        return again(error=exc, **shown)
    return redirect(url, notice)


# The share catalog and applying -----------------------------------------------------------------


@router.get("")
def share_catalog(
    request: Request,
    db: SessionDep,
    actor: CurrentActor,
    page: PageDep,
    q: Annotated[str, Query(max_length=100)] = "",
    share_type: Annotated[str, Query(pattern="^(|unconditional|conditional|not_shared)$")] = "",
) -> Response:
    found = directory.directory(db, actor=actor, q=q, share_type=share_type, page=page)
    chosen = {k: v for k, v in (("q", q), ("share_type", share_type)) if v}
    return render(
        request,
        "share/catalog.html",
        {
            "found": found,
            "q": q,
            "share_type": share_type,
            "query_string": urlencode(chosen),
            "tab": "catalog",
            **labels(),
        },
    )


def _apply_page(
    request: Request,
    db: SessionDep,
    actor: Actor,
    entry_id: int,
    values: dict[str, Any] | None = None,
    error: AppError | None = None,
) -> Response:
    entry = services.shareable(db, entry_id)  # a not-shared entry is refused with its basis
    found = directory.listing(db, entry.id, actor=actor)
    items = entry_items(db, entry)
    blank = {
        "purpose": "",
        "legal_basis": "",
        "fields": [i.name for i in items],
        "row_filter": "",
        "methods": [AccessMethod.QUERY],
        "period_end": "",
        "expected_volume": "",
    }
    return render(
        request,
        "share/apply.html",
        {
            "listing": found,
            "entry": entry,
            "items": items,
            "values": values or blank,
            "error": error,
            "tab": "catalog",
            **labels(),
        },
        status_code=error.status if error else 200,
    )


@router.get("/entries/{entry_id}/apply")
def apply_form(request: Request, entry_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    authorize(actor, "share.apply", get_entry(db, entry_id))
    return _apply_page(request, db, actor, entry_id)


@router.post("/entries/{entry_id}/apply")
def apply(
    request: Request, entry_id: int, db: SessionDep, actor: CurrentActor, form: FormDep
) -> Response:
    """Unconditional: granted at once, on to the grant. Conditional: an application the provider
    answers by its deadline."""
    values = forms.request_values(form)

    def run() -> tuple[str, str]:
        entry = services.shareable(db, entry_id)
        made = services.apply(db, actor=actor, entry=entry, request=forms.request_from(values))
        if isinstance(made, ShareGrant):
            return f"/share/grants/{made.id}", "granted"
        return f"/share/applications/{made.id}", "applied"

    return acted(run, db, partial(_apply_page, request, db, actor, entry_id), values=values)


# Applications -----------------------------------------------------------------------------------


@router.get("/applications")
def applications_page(
    request: Request,
    db: SessionDep,
    actor: CurrentActor,
    state: ApplicationState | None = None,
) -> Response:
    found = services.applications(db, actor=actor, state=state)
    return render(
        request,
        "share/applications.html",
        {
            "sides": sides(found, actor),
            "overdue": {a.id for a in found if application_out(a).overdue},
            "names": directory.names_for(db, found),
            "state": state,
            "states": list(ApplicationState),
            "tab": "applications",
            **labels(),
        },
    )


def _application_page(
    request: Request,
    db: SessionDep,
    actor: Actor,
    application_id: int,
    *,
    error: AppError | None = None,
    posted: str = "",
    values: dict[str, Any] | None = None,
) -> Response:
    """An application with everything asked and answered, and the forms each side may use.
    ``posted`` names the form that failed, shown again with ``values``."""
    application = services.get_application(db, application_id)
    authorize(actor, "share.view", application)
    entry = get_entry(db, application.entry_id)
    items = entry_items(db, entry)
    names = [i.name for i in items]
    state = application.state
    own_request = application.consumer_department_id in actor.department_ids
    may = {
        "decide": state == ApplicationState.SUBMITTED
        and check(actor, "share.decide", application) is not None,
        # Arbitration: of a refusal, or of an application left unanswered past its deadline.
        "arbitrate": (
            state == ApplicationState.REJECTED
            or (state == ApplicationState.SUBMITTED and china_today() > application.due_on)
        )
        and check(actor, "share.arbitrate", application) is not None,
        "resubmit": state == ApplicationState.REJECTED
        and own_request
        and check(actor, "share.apply", entry) is not None,
    }
    kept = values if values is not None else {}
    return render(
        request,
        "share/application.html",
        {
            "application": application,
            "out": application_out(application),
            "entry": entry,
            "items": items,
            "names": directory.names_for(db, [application]),
            "may": may,
            "approval": kept
            if posted in ("approve", "arbitrate")
            else forms.offered_values(application, names),
            "revision": kept if posted == "resubmit" else forms.asked_values(application),
            "reject_reason": kept.get("reason", "") if posted == "reject" else "",
            "posted": posted,
            "error": error,
            "mask_choices": forms.MASK_CHOICES,
            "mask_labels": forms.MASK_LABELS,
            "tab": "applications",
            **labels(),
        },
        status_code=error.status if error else 200,
    )


@router.get("/applications/{application_id}")
def application_page(
    request: Request, application_id: int, db: SessionDep, actor: CurrentActor
) -> Response:
    return _application_page(request, db, actor, application_id)


def _approve(
    request: Request,
    db: SessionDep,
    actor: Actor,
    application_id: int,
    form: FormData,
    *,
    arbitration: bool,
) -> Response:
    application = services.get_application(db, application_id)
    items = entry_items(db, get_entry(db, application.entry_id))
    values = forms.approval_values(form, [i.name for i in items])

    def run() -> tuple[str, str]:
        # The API's approve, given the form read as its body: one reading of an approval.
        body = forms.approval_from(values)
        grant = approve_as_api(application_id, body, db, actor, arbitration=arbitration)
        return f"/share/grants/{grant.id}", "approved"

    posted = "arbitrate" if arbitration else "approve"
    again = partial(_application_page, request, db, actor, application_id)
    return acted(run, db, again, posted=posted, values=values)


@router.post("/applications/{application_id}/approve")
def approve(
    request: Request, application_id: int, db: SessionDep, actor: CurrentActor, form: FormDep
) -> Response:
    return _approve(request, db, actor, application_id, form, arbitration=False)


@router.post("/applications/{application_id}/arbitrate")
def arbitrate(
    request: Request, application_id: int, db: SessionDep, actor: CurrentActor, form: FormDep
) -> Response:
    """The operator overturns a refusal and grants."""
    return _approve(request, db, actor, application_id, form, arbitration=True)


@router.post("/applications/{application_id}/reject")
def reject(
    request: Request, application_id: int, db: SessionDep, actor: CurrentActor, form: FormDep
) -> Response:
    values = {"reason": str(form.get("reason", "")).strip()}

    def run() -> tuple[str, str]:
        application = services.get_application(db, application_id)
        services.reject(db, actor=actor, application=application, reason=values["reason"])
        return f"/share/applications/{application_id}", "rejected"

    again = partial(_application_page, request, db, actor, application_id)
    return acted(run, db, again, posted="reject", values=values)


@router.post("/applications/{application_id}/resubmit")
def resubmit(
    request: Request, application_id: int, db: SessionDep, actor: CurrentActor, form: FormDep
) -> Response:
    values = forms.request_values(form)

    def run() -> tuple[str, str]:
        application = services.get_application(db, application_id)
        revised = forms.request_from(values)
        services.resubmit(db, actor=actor, application=application, request=revised)
        return f"/share/applications/{application_id}", "resubmitted"

    again = partial(_application_page, request, db, actor, application_id)
    return acted(run, db, again, posted="resubmit", values=values)
