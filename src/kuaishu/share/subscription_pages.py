"""Console pages of subscriptions (数据订阅, 库表同步) under a grant: the consuming department
registers a push endpoint — its signing secret shown on this one page and never again — or a table
of its own database, and pauses, resumes or stops them. Both sides see a grant's subscriptions on
the grant page (:mod:`kuaishu.share.grant_pages`, ``share/_subscriptions.html``).

Like the other exchange pages these call what the API calls, which authorizes and records each
change; a mistake shows the grant page again with what was typed (never the password).
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kuaishu.accounts.actor import Actor
from kuaishu.authz import Denied
from kuaishu.errors import AppError
from kuaishu.share import forms, services, subscriptions
from kuaishu.share.enums import SubscriptionState
from kuaishu.share.grant_pages import _grant_page as grant_page
from kuaishu.share.pages import FormDep, acted
from kuaishu.share.subscription_routes import subscribe as subscribe_as_api
from kuaishu.web.deps import CurrentActor, SessionDep
from kuaishu.web.forms import redirect
from kuaishu.web.templating import render

router = APIRouter(prefix="/share", include_in_schema=False)


@router.post("/grants/{grant_id}/subscriptions")
def subscribe(
    request: Request, grant_id: int, db: SessionDep, actor: CurrentActor, form: FormDep
) -> Response:
    """Push: the page showing the signing secret, once. Table sync: back to the grant."""
    values = forms.subscription_values(form)
    try:
        body = forms.subscription_from(values, str(form.get("password", "")))
        made = subscribe_as_api(grant_id, body, db, actor)
    except Denied:
        raise
    except AppError as exc:
        db.rollback()
        kept = forms.without_password(values)
        return grant_page(request, db, actor, grant_id, error=exc, posted="subscribe", values=kept)
    if made.secret is None:
        return redirect(f"/share/grants/{grant_id}", "subscribed")
    grant = services.get_grant(db, grant_id)
    return render(request, "share/subscription_issued.html", {"made": made, "grant": grant})


def _move(
    request: Request, db: SessionDep, actor: Actor, subscription_id: int, to: SubscriptionState
) -> Response:
    found = subscriptions.get_subscription(db, subscription_id, actor=actor)
    grant_id = found.grant_id

    def run() -> tuple[str, str]:
        subscriptions.change_state(db, actor=actor, subscription=found, to=to)
        return f"/share/grants/{grant_id}", f"subscription_{to}"

    again = partial(grant_page, request, db, actor, grant_id)
    return acted(run, db, again, posted="subscription")


@router.post("/subscriptions/{subscription_id}/pause")
def pause(request: Request, subscription_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    return _move(request, db, actor, subscription_id, SubscriptionState.PAUSED)


@router.post("/subscriptions/{subscription_id}/resume")
def resume(request: Request, subscription_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    """Delivery goes on from where it stopped: nothing published meanwhile is lost."""
    return _move(request, db, actor, subscription_id, SubscriptionState.ACTIVE)


@router.post("/subscriptions/{subscription_id}/stop")
def stop(request: Request, subscription_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    """Final: a stopped subscription is not resumed (register a new one)."""
    return _move(request, db, actor, subscription_id, SubscriptionState.STOPPED)
