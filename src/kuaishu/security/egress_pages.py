"""The operator's console page for the outbound allow list: the entries, add one, remove one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from kuaishu.errors import AppError
from kuaishu.security import egress
from kuaishu.security.models import DestinationKind
from kuaishu.web.deps import CurrentActor, SessionDep
from kuaishu.web.forms import redirect
from kuaishu.web.templating import render

router = APIRouter(prefix="/admin", include_in_schema=False)
KIND_LABELS = {DestinationKind.HOST: "主机或网段", DestinationKind.FOLDER: "服务器目录"}


def _page(request: Request, db: SessionDep, actor: CurrentActor, **extra: object) -> Response:
    entries = egress.list_destinations(db, actor=actor)
    status = extra.pop("status_code", 200)
    return render(
        request,
        "admin/egress.html",
        {"entries": entries, "kinds": KIND_LABELS, "form": {}, **extra},
        status_code=int(status),  # type: ignore[call-overload]
    )


@router.get("/egress")
def allow_list(request: Request, db: SessionDep, actor: CurrentActor) -> Response:
    return _page(request, db, actor)


@router.post("/egress")
def add_entry(
    request: Request,
    db: SessionDep,
    actor: CurrentActor,
    kind: Annotated[DestinationKind, Form()],
    value: Annotated[str, Form(max_length=255)],
    port: Annotated[str, Form(max_length=5)] = "",
    note: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        egress.add_destination(
            db,
            actor=actor,
            kind=kind,
            value=value,
            port=int(port) if port.isdigit() else None,
            note=note,
        )
    except AppError as exc:
        db.rollback()
        form = {"kind": kind, "value": value, "port": port, "note": note}
        return _page(request, db, actor, error=exc, form=form, status_code=exc.status)
    return redirect("/admin/egress", "created")


@router.post("/egress/{destination_id}/remove")
def remove_entry(destination_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    egress.remove_destination(db, actor=actor, destination_id=destination_id)
    return redirect("/admin/egress", "saved")
