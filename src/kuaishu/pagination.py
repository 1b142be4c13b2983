"""One pagination convention: ``page`` (from 1) and ``page_size``; results carry the total."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    page: int = 1
    page_size: int = 20

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


@dataclass(frozen=True)
class Paged(Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def paginate(session: Session, stmt: Select[Any], request: PageRequest) -> Paged[Any]:
    """Run ``stmt`` for one page, with the total count of all matching rows."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = list(session.scalars(stmt.limit(request.page_size).offset(request.offset)).all())
    return Paged(items=items, total=int(total), page=request.page, page_size=request.page_size)


class PageOut(BaseModel, Generic[T]):
    """The JSON shape of every list: ``{"items": [...], "page", "page_size", "total", "pages"}``."""

    items: list[T]
    page: int
    page_size: int
    total: int
    pages: int
