"""Console pages of the sharing exchange, second half: grants — their state and bounds, the
provider's suspension, resumption, revocation and renewal, the consumer's online lookup, downloads
and objections — the objections with their answers, and usage per grant.

Like :mod:`kuaishu.share.pages`, these call the services the API calls, and let refusals by policy
(a read the grant no longer allows among them) reach the error handler, which records them.
"""

from __future__ import annotations

from functools import partial
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kuaishu.accounts.actor import Actor
from kuaishu.authz import Denied, authorize, check
from kuaishu.catalog.services import get_entry
from kuaishu.clean.services import Channel, masks_for
from kuaishu.collect.services import entry_items
from kuaishu.errors import AppError
from kuaishu.share import directory, forms, grants, objections, services, subscriptions
from kuaishu.share.enums import AccessMethod, GrantState
from kuaishu.share.pages import FormDep, acted, labels, sides
from kuaishu.store import reads
from kuaishu.store.services import versions_of
from kuaishu.web.deps import CurrentActor, SessionDep
from kuaishu.web.templating import render

router = APIRouter(prefix="/share", include_in_schema=False)

# (format, extra query, label): the CSV for Excel (BOM, formula guard) beside the exact CSV.
DOWNLOADS = (
    ("csv", "&variant=excel", "CSV (Excel)"),
    ("csv", "", "CSV"),
    ("xlsx", "", "Excel"),
    ("json", "", "JSON"),
)


@router.get("/grants")
def grants_page(request: Request, db: SessionDep, actor: CurrentActor) -> Response:
    found = grants.grants_of(db, actor=actor)
    return render(
        request,
        "share/grants.html",
        {
            "sides": sides(found, actor),
            "states": {g.id: grants.effective_state(g) for g in found},
            "names": directory.names_for(db, found),
            "tab": "grants",
            **labels(),
        },
    )


def _grant_page(
    request: Request,
    db: SessionDep,
    actor: Actor,
    grant_id: int,
    *,
    error: AppError | None = None,
    posted: str = "",
    values: dict[str, Any] | None = None,
    found: reads.Rows | None = None,
) -> Response:
    """A grant and what each side may do with it; ``posted`` names the form to show again with
    ``values`` (and ``found``, the rows of a lookup)."""
    grant = services.get_grant(db, grant_id)
    authorize(actor, "share.view", grant)
    entry = get_entry(db, grant.entry_id)
    granted = [i for i in entry_items(db, entry) if not grant.fields or i.name in grant.fields]
    state = grants.effective_state(grant)
    reading = check(actor, "share.read", grant) is not None
    usable = reading and state == GrantState.ACTIVE
    # The consuming department's readers pause and stop subscriptions, and register new ones
    # while the grant is active; both sides (and the operator) see them.
    subscriber = check(actor, "share.subscribe", grant) is not None
    registering = subscriber and state == GrantState.ACTIVE
    may = {
        "manage": check(actor, "share.manage_grant", grant) is not None,
        "lookup": usable and AccessMethod.LOOKUP in grant.methods,
        "download": usable and AccessMethod.DOWNLOAD in grant.methods,
        "object": reading,
        "subscribe": subscriber,
        "push": registering and AccessMethod.SUBSCRIBE in grant.methods,
        "sync": registering and AccessMethod.SYNC in grant.methods,
    }
    return render(
        request,
        "share/grant.html",
        {
            "grant": grant,
            "state": state,
            "entry": entry,
            "granted": granted,
            # How each granted item shows: the share channel's policy with this grant's overrides.
            "masks": masks_for(db, entry, Channel.SHARE, overrides=grant.masking).masks,
            "keys": [i.name for i in granted if i.is_key],
            "names": directory.names_for(db, [grant]),
            "may": may,
            "reading": reading,
            "downloads": DOWNLOADS,
            "purpose_query": urlencode({"purpose": grant.purpose[:200]}),
            "mask_labels": forms.MASK_LABELS,
            "posted": posted,
            "values": values or {},
            "found": found,
            "subscriptions": subscriptions.subscriptions(db, actor=actor, grant_id=grant.id),
            "error": error,
            "tab": "grants",
            **labels(),
        },
        status_code=error.status if error else 200,
    )


@router.get("/grants/{grant_id}")
def grant_page(request: Request, grant_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    return _grant_page(request, db, actor, grant_id)


def _change(
    request: Request, db: SessionDep, actor: Actor, grant_id: int, form: Any, to: GrantState
) -> Response:
    values = {"reason": str(form.get("reason", "")).strip()}

    def run() -> tuple[str, str]:
        grant = services.get_grant(db, grant_id)
        grants.change_grant(db, actor=actor, grant=grant, to=to, reason=values["reason"])
        return f"/share/grants/{grant_id}", "grant_changed"

    again = partial(_grant_page, request, db, actor, grant_id)
    return acted(run, db, again, posted="state", values=values)


@router.post("/grants/{grant_id}/suspend")
def suspend(
    request: Request, grant_id: int, db: SessionDep, actor: CurrentActor, form: FormDep
) -> Response:
    return _change(request, db, actor, grant_id, form, GrantState.SUSPENDED)


@router.post("/grants/{grant_id}/resume")
def resume(
    request: Request, grant_id: int, db: SessionDep, actor: CurrentActor, form: FormDep
) -> Response:
    return _change(request, db, actor, grant_id, form, GrantState.ACTIVE)


@router.post("/grants/{grant_id}/revoke")
def revoke(
    request: Request, grant_id: int, db: SessionDep, actor: CurrentActor, form: FormDep
) -> Response:
    """Effective on the consumer's very next read."""
    return _change(request, db, actor, grant_id, form, GrantState.REVOKED)


@router.post("/grants/{grant_id}/renew")
def renew(
    request: Request, grant_id: int, db: SessionDep, actor: CurrentActor, form: FormDep
) -> Response:
    values = {k: str(form.get(k, "")).strip() for k in ("expires_on", "reason")}

    def run() -> tuple[str, str]:
        body = forms.renewal_from(form)
        grant = services.get_grant(db, grant_id)
        grants.renew(db, actor=actor, grant=grant, expires_on=body.expires_on, reason=body.reason)
        return f"/share/grants/{grant_id}", "renewed"

    again = partial(_grant_page, request, db, actor, grant_id)
    return acted(run, db, again, posted="renew", values=values)


@router.post("/grants/{grant_id}/lookup")
def lookup(
    request: Request, grant_id: int, db: SessionDep, actor: CurrentActor, form: FormDep
) -> Response:
    """联机查询 under the grant: a read, so the rows are shown in place rather than after a
    redirect — and the key (often an ID number) stays out of the address and the server logs.
    The grant is checked afresh and the read recorded, as through the API."""
    grant = services.get_grant(db, grant_id)
    entry = get_entry(db, grant.entry_id)
    names = [i.name for i in entry_items(db, entry) if i.is_key]
    keys = forms.keys_from(form, names)

    def locate(number: int | None) -> reads.Served:
        return grants.served_by_grant(
            db, actor=actor, grant=grant, method=AccessMethod.LOOKUP, number=number
        )

    values = {"keys": keys}
    request.state.purpose = grant.purpose[:200]  # a refusal is recorded with it
    try:
        found = reads.lookup(
            db, actor=actor, code="", keys=keys, purpose=grant.purpose[:200], locate=locate
        )
    except Denied:
        raise
    except AppError as exc:
        db.rollback()
        return _grant_page(request, db, actor, grant_id, error=exc, posted="lookup", values=values)
    return _grant_page(request, db, actor, grant_id, posted="lookup", values=values, found=found)


# Objections (疑义校核) ----------------------------------------------------------------------------


@router.post("/grants/{grant_id}/objections")
def raise_objection(
    request: Request, grant_id: int, db: SessionDep, actor: CurrentActor, form: FormDep
) -> Response:
    values = forms.objection_values(form)

    def run() -> tuple[str, str]:
        body = forms.objection_from(values)
        objection = objections.raise_objection(
            db,
            actor=actor,
            grant=services.get_grant(db, grant_id),
            records=body.records,
            fields=body.fields,
            description=body.description,
            evidence=body.evidence,
        )
        return f"/share/objections/{objection.id}", "objected"

    again = partial(_grant_page, request, db, actor, grant_id)
    return acted(run, db, again, posted="objection", values=values)


@router.get("/objections")
def objections_page(request: Request, db: SessionDep, actor: CurrentActor) -> Response:
    found = objections.objections(db, actor=actor)
    return render(
        request,
        "share/objections.html",
        {
            "sides": sides(found, actor),
            "names": directory.names_for(db, found),
            "tab": "objections",
            **labels(),
        },
    )


def _objection_page(
    request: Request,
    db: SessionDep,
    actor: Actor,
    objection_id: int,
    *,
    error: AppError | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    objection = objections.get_objection(db, objection_id, actor=actor)
    may_answer = (
        objection.state == "submitted" and check(actor, "share.decide", objection) is not None
    )
    later = [
        v.number for v in versions_of(db, objection.entry_id) if v.number > objection.version_number
    ]
    return render(
        request,
        "share/objection.html",
        {
            "objection": objection,
            "entry": get_entry(db, objection.entry_id),
            "names": directory.names_for(db, [objection]),
            "may_answer": may_answer,
            "later_versions": later if may_answer else [],
            "values": values or {},
            "error": error,
            "tab": "objections",
            **labels(),
        },
        status_code=error.status if error else 200,
    )


@router.get("/objections/{objection_id}")
def objection_page(
    request: Request, objection_id: int, db: SessionDep, actor: CurrentActor
) -> Response:
    return _objection_page(request, db, actor, objection_id)


@router.post("/objections/{objection_id}/answer")
def answer_objection(
    request: Request, objection_id: int, db: SessionDep, actor: CurrentActor, form: FormDep
) -> Response:
    """Corrected in a later version, or — with no version chosen — rejected with a reason."""
    values = {k: str(form.get(k, "")).strip() for k in ("corrected_in", "reason")}

    def run() -> tuple[str, str]:
        body = forms.answer_from(form)
        objection = objections.get_objection(db, objection_id, actor=actor)
        objections.answer(
            db, actor=actor, objection=objection, corrected_in=body.corrected_in, reason=body.reason
        )
        return f"/share/objections/{objection_id}", "answered"

    again = partial(_objection_page, request, db, actor, objection_id)
    return acted(run, db, again, values=values)


# Usage ----------------------------------------------------------------------------------------


@router.get("/usage")
def usage_page(request: Request, db: SessionDep, actor: CurrentActor) -> Response:
    found = grants.usage(db, actor=actor)
    return render(
        request,
        "share/usage.html",
        {
            "rows": found,
            "states": {u.grant.id: grants.effective_state(u.grant) for u in found},
            "names": directory.names_for(db, [u.grant for u in found]),
            "tab": "usage",
            **labels(),
        },
    )
