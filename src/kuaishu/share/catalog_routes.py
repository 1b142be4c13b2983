"""The share catalog (共享目录) as an API: the catalog's search with each entry's sharing terms,
the quality score of its served version and the provider's contact — every share type, so a
department also sees what it cannot have, and on what basis."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from kuaishu.accounts.models import Department
from kuaishu.catalog.enums import ShareType
from kuaishu.share.directory import directory
from kuaishu.share.schemas import ListingOut
from kuaishu.web.deps import CurrentActor, PageDep, SessionDep

router = APIRouter(prefix="/api/v1/share", tags=["share"])


@router.get(
    "/catalog", summary="共享目录：检索可共享的资源（共享类型、条件、方式、质量、联系方式）"
)
def share_catalog(
    db: SessionDep,
    actor: CurrentActor,
    page: PageDep,
    q: Annotated[str, Query(max_length=100, description="关键词")] = "",
    share_type: Annotated[ShareType | None, Query(description="共享类型")] = None,
) -> dict[str, Any]:
    found = directory(db, actor=actor, q=q, share_type=share_type or "", page=page)
    listed = found.page.items
    wanted = {item.entry.department_id for item in listed}
    providers = {
        department_id: name
        for department_id, name in db.execute(
            select(Department.id, Department.name).where(Department.id.in_(wanted))
        )
    }
    items = []
    for item in listed:
        entry, revision = item.entry, item.revision
        items.append(
            ListingOut(
                id=entry.id,
                code=entry.code,
                name=entry.name,
                provider_department_id=entry.department_id,
                provider=providers.get(entry.department_id, ""),
                contact=revision.contact if revision else "",
                share_type=str(entry.share_type) if entry.share_type else None,
                share_conditions=revision.share_conditions if revision else "",
                share_methods=list(revision.share_methods or []) if revision else [],
                share_basis=revision.share_basis if revision else "",
                update_cycle=str(entry.update_cycle) if entry.update_cycle else None,
                quality_score=item.score,
            )
        )
    return {
        "items": items,
        "page": found.page.page,
        "page_size": found.page.page_size,
        "total": found.page.total,
        "pages": found.page.pages,
        "facets": {"share_type": found.share_types},
    }
