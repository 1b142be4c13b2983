"""The sharing exchange's API: apply, answer, manage grants, and read under a grant.

Reads under a grant take the data API's parameters (filters, fields, sort, paging, formats); the
grant adds its own bounds to each. The share catalog is the catalog's ``view=share``.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from kuaishu.accounts.actor import Actor
from kuaishu.authz import authorize
from kuaishu.calendar import china_today
from kuaishu.i18n import gettext_
from kuaishu.share import grants, objections, services
from kuaishu.share.enums import AccessMethod, ApplicationState, GrantState
from kuaishu.share.models import ShareApplication, ShareGrant
from kuaishu.share.schemas import (
    AnswerIn,
    ApplicationOut,
    ApplyIn,
    ApplyOut,
    ApproveIn,
    GrantDictionaryOut,
    GrantOut,
    ObjectionIn,
    ObjectionOut,
    ReasonIn,
    RenewIn,
)
from kuaishu.store import reads
from kuaishu.store.exports import Format, Variant, content_disposition
from kuaishu.store.routes import (
    PurposeDep,
    ReadDep,
    ShapeParam,
    body_keys,
    file_response,
    keys_of,
    lookup_response,
    query_response,
)
from kuaishu.store.schemas import LookupIn, QueryOut, RowsOut, Shape
from kuaishu.web.deps import CurrentActor, SessionDep

router = APIRouter(prefix="/api/v1/share", tags=["share"])


def application_out(application: ShareApplication) -> ApplicationOut:
    out = ApplicationOut.model_validate(application, from_attributes=True)
    return out.model_copy(
        update={
            "overdue": application.state == ApplicationState.SUBMITTED
            and china_today() > application.due_on
        }
    )


def grant_out(grant: ShareGrant) -> GrantOut:
    out = GrantOut.model_validate(grant, from_attributes=True)
    return out.model_copy(update={"state": grants.effective_state(grant)})


def as_request(body: ApplyIn) -> services.Request:
    """The body of an application, as the service takes it (the API and the pages)."""
    return services.Request(
        purpose=body.purpose,
        legal_basis=body.legal_basis,
        fields=body.fields,
        row_filter=body.row_filter,
        methods=[str(m) for m in body.methods],
        period_end=body.period_end,
        expected_volume=body.expected_volume,
    )


@router.post(
    "/entries/{entry_id}/applications",
    response_model=ApplyOut,
    status_code=201,
    summary="申请共享（无条件共享即时授权；有条件共享待提供部门 10 个工作日内答复）",
)
def apply(entry_id: int, body: ApplyIn, db: SessionDep, actor: CurrentActor) -> ApplyOut:
    entry = services.shareable(db, entry_id)
    made = services.apply(db, actor=actor, entry=entry, request=as_request(body))
    if isinstance(made, ShareGrant):
        return ApplyOut(kind="grant", grant=grant_out(made))
    return ApplyOut(kind="application", application=application_out(made))


@router.get("/applications", response_model=list[ApplicationOut], summary="我方提出的与收到的申请")
def list_applications(
    db: SessionDep,
    actor: CurrentActor,
    state: Annotated[ApplicationState | None, Query(description="状态")] = None,
) -> list[ApplicationOut]:
    return [application_out(a) for a in services.applications(db, actor=actor, state=state)]


@router.get("/applications/{application_id}", response_model=ApplicationOut, summary="共享申请")
def get_application(application_id: int, db: SessionDep, actor: CurrentActor) -> ApplicationOut:
    application = services.get_application(db, application_id)
    authorize(actor, "share.view", application)
    return application_out(application)


@router.post(
    "/applications/{application_id}/approve", response_model=GrantOut, summary="同意（生成授权）"
)
def approve(application_id: int, body: ApproveIn, db: SessionDep, actor: CurrentActor) -> GrantOut:
    return approve_as(application_id, body, db, actor, arbitration=False)


@router.post(
    "/applications/{application_id}/arbitrate",
    response_model=GrantOut,
    summary="平台运营者仲裁：推翻拒绝并授权",
)
def arbitrate(
    application_id: int, body: ApproveIn, db: SessionDep, actor: CurrentActor
) -> GrantOut:
    return approve_as(application_id, body, db, actor, arbitration=True)


def approve_as(
    application_id: int, body: ApproveIn, db: SessionDep, actor: Actor, *, arbitration: bool
) -> GrantOut:
    """Approve (or, for the operator, arbitrate) with the grant ``body`` describes."""
    application = services.get_application(db, application_id)
    grant = services.approve(
        db,
        actor=actor,
        application=application,
        fields=body.fields,
        row_filter=body.row_filter,
        masking=body.masking,
        methods=[str(m) for m in body.methods] if body.methods is not None else None,
        expires_on=body.expires_on,
        rate_limit=body.rate_limit,
        reason=body.reason,
        arbitration=arbitration,
    )
    return grant_out(grant)


@router.post(
    "/applications/{application_id}/reject",
    response_model=ApplicationOut,
    summary="拒绝（须说明理由）",
)
def reject(
    application_id: int, body: ReasonIn, db: SessionDep, actor: CurrentActor
) -> ApplicationOut:
    application = services.get_application(db, application_id)
    return application_out(
        services.reject(db, actor=actor, application=application, reason=body.reason)
    )


@router.post(
    "/applications/{application_id}/resubmit",
    response_model=ApplicationOut,
    summary="修改后重新提交被拒绝的申请",
)
def resubmit(
    application_id: int, body: ApplyIn, db: SessionDep, actor: CurrentActor
) -> ApplicationOut:
    application = services.get_application(db, application_id)
    return application_out(
        services.resubmit(db, actor=actor, application=application, request=as_request(body))
    )


@router.get("/grants", response_model=list[GrantOut], summary="我方获得的与授出的授权")
def list_grants(db: SessionDep, actor: CurrentActor) -> list[GrantOut]:
    return [grant_out(g) for g in grants.grants_of(db, actor=actor)]


@router.get("/grants/{grant_id}", response_model=GrantOut, summary="共享授权")
def get_grant(grant_id: int, db: SessionDep, actor: CurrentActor) -> GrantOut:
    grant = services.get_grant(db, grant_id)
    authorize(actor, "share.view", grant)
    return grant_out(grant)


def _change(
    grant_id: int, to: GrantState, body: ReasonIn, db: SessionDep, actor: Actor
) -> GrantOut:
    grant = services.get_grant(db, grant_id)
    return grant_out(grants.change_grant(db, actor=actor, grant=grant, to=to, reason=body.reason))


@router.post(
    "/grants/{grant_id}/suspend", response_model=GrantOut, summary="暂停授权（须说明理由）"
)
def suspend(grant_id: int, body: ReasonIn, db: SessionDep, actor: CurrentActor) -> GrantOut:
    return _change(grant_id, GrantState.SUSPENDED, body, db, actor)


@router.post("/grants/{grant_id}/resume", response_model=GrantOut, summary="恢复授权")
def resume(grant_id: int, body: ReasonIn, db: SessionDep, actor: CurrentActor) -> GrantOut:
    return _change(grant_id, GrantState.ACTIVE, body, db, actor)


@router.post(
    "/grants/{grant_id}/revoke", response_model=GrantOut, summary="撤销授权（下一次请求即生效）"
)
def revoke(grant_id: int, body: ReasonIn, db: SessionDep, actor: CurrentActor) -> GrantOut:
    return _change(grant_id, GrantState.REVOKED, body, db, actor)


@router.post("/grants/{grant_id}/renew", response_model=GrantOut, summary="续期")
def renew(grant_id: int, body: RenewIn, db: SessionDep, actor: CurrentActor) -> GrantOut:
    grant = services.get_grant(db, grant_id)
    return grant_out(
        grants.renew(db, actor=actor, grant=grant, expires_on=body.expires_on, reason=body.reason)
    )


# Reads under a grant ------------------------------------------------------------------------------


def _locate(db: SessionDep, actor: Actor, grant_id: int, method: AccessMethod) -> reads.Locate:
    def locate(number: int | None) -> reads.Served:
        return grants.served_by_grant(db, actor=actor, grant=grant_id, method=method, number=number)

    return locate


@router.get(
    "/grants/{grant_id}/query",
    summary="按授权查询（参数同数据接口）",
    response_class=Response,
    responses={200: {"model": QueryOut}},
)
def query(
    grant_id: int,
    db: SessionDep,
    actor: CurrentActor,
    read: ReadDep,
    purpose: PurposeDep,
    shape: ShapeParam = Shape.ARRAYS,
) -> Response:
    """只返回授权的字段和行，按共享渠道（含本授权的覆盖）脱敏；每次调用记入审计。"""
    result = reads.query_data(
        db,
        actor=actor,
        code="",
        request=read,
        purpose=purpose,
        locate=_locate(db, actor, grant_id, AccessMethod.QUERY),
    )
    return query_response(result, shape)


@router.get(
    "/grants/{grant_id}/lookup",
    summary="按授权联机查询（如按身份证号核验）",
    response_class=Response,
    responses={200: {"model": RowsOut}},
)
def lookup(
    grant_id: int,
    request: Request,
    db: SessionDep,
    actor: CurrentActor,
    purpose: PurposeDep,
    key: Annotated[str | None, Query(description="唯一关键字段的值")] = None,
    shape: ShapeParam = Shape.ARRAYS,
) -> Response:
    keys = keys_of(request, key)
    result = reads.lookup(
        db,
        actor=actor,
        code="",
        keys=keys,
        purpose=purpose,
        locate=_locate(db, actor, grant_id, AccessMethod.LOOKUP),
    )
    return lookup_response(result, shape)


@router.post(
    "/grants/{grant_id}/lookup",
    summary="按授权联机查询（POST，值不进网址）",
    response_class=Response,
    responses={200: {"model": RowsOut}},
)
def lookup_by_post(
    grant_id: int,
    request: Request,
    body: LookupIn,
    db: SessionDep,
    actor: CurrentActor,
    purpose: PurposeDep,
) -> Response:
    request.state.purpose = body.purpose or purpose  # a refusal is recorded with it
    keys = body_keys(body)
    result = reads.lookup(
        db,
        actor=actor,
        code="",
        keys=keys,
        fields=tuple(body.fields),
        purpose=body.purpose or purpose,
        locate=_locate(db, actor, grant_id, AccessMethod.LOOKUP),
    )
    return lookup_response(result, body.shape)


@router.get(
    "/grants/{grant_id}/dictionary",
    response_model=GrantDictionaryOut,
    summary="授权范围的数据字典（只含授权的信息项）",
)
def dictionary(
    grant_id: int, db: SessionDep, actor: CurrentActor, purpose: PurposeDep
) -> dict[str, Any]:
    return reads.dictionary(
        db,
        actor=actor,
        code="",
        locate=_locate(db, actor, grant_id, AccessMethod.QUERY),
        purpose=purpose,
    )


@router.get(
    "/grants/{grant_id}/download.{fmt}",
    summary="按授权批量下载（csv、json、jsonl、xml、xlsx、parquet）",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download(
    grant_id: int,
    fmt: Format,
    request: Request,
    db: SessionDep,
    actor: CurrentActor,
    read: ReadDep,
    purpose: PurposeDep,
    bom: Annotated[bool, Query(description="CSV 加 UTF-8 BOM")] = False,
    variant: Annotated[
        Variant | None,
        Query(
            description="excel：供 Excel 打开的 CSV（加 BOM，以 = + - @ 开头的表头与文本前加单引号）"
        ),
    ] = None,
) -> StreamingResponse:
    found = reads.download(
        db,
        actor=actor,
        code="",
        request=read,
        fmt=fmt,
        bom=bom,
        variant=variant,
        purpose=purpose,
        locate=_locate(db, actor, grant_id, AccessMethod.DOWNLOAD),
    )
    return file_response(found, request)


USAGE_BY = {
    "grant": (
        ["授权", "资源", "提供部门", "使用部门", "状态"],
        ["grant", "entry_id", "provider", "consumer", "state"],
    ),
    "consumer": (["使用部门", "授权数"], ["consumer", "grants"]),
    "provider": (["提供部门", "授权数"], ["provider", "grants"]),
}
USAGE_COUNTS = (
    ["调用次数", "返回行数", "下载次数", "被拒次数"],
    ["calls", "rows", "downloads", "denied"],
)


@router.get(
    "/usage",
    summary="调用次数、行数、下载次数：按授权、使用部门或提供部门（提供部门与平台运营者可见）",
)
def usage(
    db: SessionDep,
    actor: CurrentActor,
    fmt: Annotated[str, Query(alias="format", pattern="^(json|csv)$")] = "json",
    by: Annotated[
        str, Query(pattern="^(grant|consumer|provider)$", description="统计口径")
    ] = "grant",
) -> Response:
    found = grants.usage(db, actor=actor)
    rows: list[list[Any]]
    if by == "grant":
        rows = [
            [
                u.grant.id,
                u.grant.entry_id,
                u.grant.provider_department_id,
                u.grant.consumer_department_id,
                str(grants.effective_state(u.grant)),
                u.calls,
                u.rows,
                u.downloads,
                u.denied,
            ]
            for u in found
        ]
    else:
        totals: dict[int, list[int]] = {}
        for u in found:
            side = (
                u.grant.consumer_department_id
                if by == "consumer"
                else u.grant.provider_department_id
            )
            counted = totals.setdefault(side, [0, 0, 0, 0, 0])
            for i, n in enumerate((1, u.calls, u.rows, u.downloads, u.denied)):
                counted[i] += n
        rows = [[side, *counted] for side, counted in sorted(totals.items())]
    header = USAGE_BY[by][0] + USAGE_COUNTS[0]
    keys = USAGE_BY[by][1] + USAGE_COUNTS[1]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([gettext_(h) for h in header])
        writer.writerows(rows)
        return Response(
            "\ufeff" + buffer.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": content_disposition(
                    "共享使用统计.csv", f"share-usage-by-{by}.csv"
                )
            },
        )
    return Response(
        orjson.dumps({"by": by, "items": [dict(zip(keys, r, strict=True)) for r in rows]}),
        media_type="application/json",
    )


# Objections (疑义校核) --------------------------------------------------------------------------


@router.post(
    "/grants/{grant_id}/objections",
    response_model=ObjectionOut,
    status_code=201,
    summary="提出数据疑义（所列记录、字段有误，附依据）",
)
def raise_objection(
    grant_id: int, body: ObjectionIn, db: SessionDep, actor: CurrentActor
) -> object:
    grant = services.get_grant(db, grant_id)
    return objections.raise_objection(
        db,
        actor=actor,
        grant=grant,
        records=body.records,
        fields=body.fields,
        description=body.description,
        evidence=body.evidence,
    )


@router.get("/objections", response_model=list[ObjectionOut], summary="疑义（提出的与收到的）")
def list_objections(db: SessionDep, actor: CurrentActor) -> object:
    return objections.objections(db, actor=actor)


@router.get("/objections/{objection_id}", response_model=ObjectionOut, summary="疑义")
def get_objection(objection_id: int, db: SessionDep, actor: CurrentActor) -> object:
    return objections.get_objection(db, objection_id, actor=actor)


@router.post(
    "/objections/{objection_id}/answer",
    response_model=ObjectionOut,
    summary="答复疑义：在新版本中更正（corrected_in），或说明理由驳回",
)
def answer_objection(
    objection_id: int, body: AnswerIn, db: SessionDep, actor: CurrentActor
) -> object:
    objection = objections.get_objection(db, objection_id, actor=actor)
    return objections.answer(
        db, actor=actor, objection=objection, corrected_in=body.corrected_in, reason=body.reason
    )
