"""The outbound allow list over HTTP: the platform operator lists, adds and removes entries."""

from __future__ import annotations

from fastapi import APIRouter, Response

from kuaishu.security import egress
from kuaishu.security.schemas import AllowedDestinationIn, AllowedDestinationOut
from kuaishu.web.deps import CurrentActor, SessionDep

router = APIRouter(prefix="/api/v1/egress", tags=["security"])


@router.get("/allowed", response_model=list[AllowedDestinationOut], summary="对外访问白名单")
def list_allowed(db: SessionDep, actor: CurrentActor) -> object:
    return egress.list_destinations(db, actor=actor)


@router.post(
    "/allowed", response_model=AllowedDestinationOut, status_code=201, summary="添加白名单条目"
)
def add_allowed(body: AllowedDestinationIn, db: SessionDep, actor: CurrentActor) -> object:
    return egress.add_destination(db, actor=actor, **body.model_dump())


@router.delete("/allowed/{destination_id}", status_code=204, summary="删除白名单条目")
def remove_allowed(destination_id: int, db: SessionDep, actor: CurrentActor) -> Response:
    egress.remove_destination(db, actor=actor, destination_id=destination_id)
    return Response(status_code=204)
