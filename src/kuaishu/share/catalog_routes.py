"""The share catalog (共享目录) as an API: the catalog's search with each entry's sharing terms,
the quality score of its served version and the provider's contact — every share type, so a
department also sees what it cannot have, and on what basis."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from kuaishu.accounts.routes import page_out
from kuaishu.catalog.enums import ShareType
from kuaishu.pagination import Paged
from kuaishu.share.directory import Listing, directory
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
    listed = Paged(
        [_listing_out(item) for item in found.page.items],
        found.page.total,
        found.page.page,
        found.page.page_size,
    )
    return {**page_out(listed, ListingOut), "facets": {"share_type": found.share_types}}


def _listing_out(item: Listing) -> ListingOut:
    entry, revision = item.entry, item.revision
    return ListingOut(
        id=entry.id,
        code=entry.code,
        name=entry.name,
        provider_department_id=entry.department_id,
        provider=entry.department.name,
        contact=item.contact,
        share_type=str(entry.share_type) if entry.share_type else None,
        share_conditions=revision.share_conditions if revision else "",
        share_methods=list(revision.share_methods or []) if revision else [],
        share_basis=revision.share_basis if revision else "",
        update_cycle=str(entry.update_cycle) if entry.update_cycle else None,
        quality_score=item.score,
    )
