"""Chinese full-text search over published entries, portable across SQLite and PostgreSQL.

Text is cut into character unigrams and bigrams (and whole ASCII words); an entry matches when it
holds every term of the query. Exact titles rank first, then titles containing the query, then
by how much of the query sits in the title. See docs/decisions/0020-catalog-search.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, case, delete, func, insert, select
from sqlalchemy.orm import Session

from kuaishu.accounts.models import Department
from kuaishu.catalog.enums import LABELS, EntryStatus, OpenType, ShareType
from kuaishu.catalog.models import CatalogEntry, CatalogRevision, SearchTerm
from kuaishu.pagination import Paged, PageRequest

_RUNS = re.compile(r"[\u3400-\u9fff]+|[A-Za-z0-9]+")
FACETS = (
    "domain",
    "department_id",
    "resource_class",
    "share_type",
    "open_type",
    "resource_format",
    "update_cycle",
)


def terms(text: str) -> set[str]:
    """Unigrams and bigrams of Chinese runs, lower-cased ASCII words."""
    found: set[str] = set()
    for run in _RUNS.findall(text):
        if run.isascii():
            found.add(run.lower()[:16])
            continue
        found.update(run)
        found.update(run[i : i + 2] for i in range(len(run) - 1))
    return found


def query_terms(text: str) -> set[str]:
    """The fewest terms that pin a query down: bigrams of longer runs, the run itself if single."""
    found: set[str] = set()
    for run in _RUNS.findall(text):
        if run.isascii():
            found.add(run.lower()[:16])
        elif len(run) == 1:
            found.add(run)
        else:
            found.update(run[i : i + 2] for i in range(len(run) - 1))
    return found


def index_entry(session: Session, entry: CatalogEntry, revision: CatalogRevision) -> None:
    """Replace the entry's terms with those of ``revision`` (the one now in force)."""
    unindex_entry(session, entry)
    department = session.get(Department, entry.department_id)
    name_terms = terms(revision.name)
    body = " ".join(
        [
            revision.summary,
            " ".join(revision.keywords),
            " ".join(i.name for i in revision.items),
            department.name if department else "",
            revision.domain or "",
        ]
    )
    rows = [{"entry_id": entry.id, "term": t, "weight": 2} for t in name_terms]
    rows += [{"entry_id": entry.id, "term": t, "weight": 1} for t in terms(body) - name_terms]
    if rows:
        session.execute(insert(SearchTerm), rows)


def unindex_entry(session: Session, entry: CatalogEntry) -> None:
    session.execute(delete(SearchTerm).where(SearchTerm.entry_id == entry.id))


@dataclass(frozen=True)
class SearchQuery:
    q: str = ""
    view: str = "all"  # all | share | open
    filters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchResult:
    page: Paged[CatalogEntry]
    facets: dict[str, list[dict[str, Any]]]


def _conditions(query: SearchQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [CatalogEntry.status == EntryStatus.PUBLISHED]
    if query.view == "share":
        conditions.append(CatalogEntry.share_type != ShareType.NOT_SHARED)
    elif query.view == "open":
        conditions.append(CatalogEntry.open_type != OpenType.NOT_OPEN)
    for name, value in query.filters.items():
        if name in FACETS and value:
            column = getattr(CatalogEntry, name)
            conditions.append(column == (int(value) if name == "department_id" else value))
    return conditions


def search(session: Session, query: SearchQuery, page: PageRequest) -> SearchResult:
    """One page of matching published entries, best first, with facet counts."""
    q = query.q.strip()
    wanted = query_terms(q)
    conditions = _conditions(query)
    stmt: Select[Any] = select(CatalogEntry)
    ids: Select[Any] = select(CatalogEntry.id)
    order: list[Any] = []
    if wanted:
        matches = (
            select(SearchTerm.entry_id, func.sum(SearchTerm.weight).label("score"))
            .where(SearchTerm.term.in_(sorted(wanted)))
            .group_by(SearchTerm.entry_id)
            .having(func.count() == len(wanted))
            .subquery()
        )
        stmt = stmt.join(matches, matches.c.entry_id == CatalogEntry.id)
        ids = ids.join(matches, matches.c.entry_id == CatalogEntry.id)
        order = [
            case((CatalogEntry.name == q, 0), (CatalogEntry.name.contains(q), 1), else_=2),
            matches.c.score.desc(),
        ]
    stmt = stmt.where(*conditions).order_by(*order, CatalogEntry.updated_at.desc(), CatalogEntry.id)
    ids = ids.where(*conditions)
    total = int(session.scalar(select(func.count()).select_from(ids.subquery())) or 0)
    items = list(session.scalars(stmt.limit(page.page_size).offset(page.offset)))
    facets = _facets(session, ids.subquery())
    return SearchResult(Paged(items, total, page.page, page.page_size), facets)


def _facets(session: Session, matching: Any) -> dict[str, list[dict[str, Any]]]:
    result: dict[str, list[dict[str, Any]]] = {}
    names = {
        d.id: d.name
        for d in session.scalars(
            select(Department).where(
                Department.id.in_(
                    select(CatalogEntry.department_id).where(
                        CatalogEntry.id.in_(select(matching.c.id))
                    )
                )
            )
        )
    }
    for name in FACETS:
        column = getattr(CatalogEntry, name)
        rows = session.execute(
            select(column, func.count())
            .where(CatalogEntry.id.in_(select(matching.c.id)))
            .group_by(column)
            .order_by(func.count().desc())
            .limit(30)
        ).all()
        result[name] = [
            {"value": str(value), "label": _facet_label(name, value, names), "count": count}
            for value, count in rows
            if value is not None
        ]
    return result


def _facet_label(name: str, value: Any, departments: dict[int, str]) -> str:
    if name == "department_id":
        return departments.get(int(value), str(value))
    table = {
        "resource_class": "ResourceClass",
        "share_type": "ShareType",
        "open_type": "OpenType",
        "resource_format": "ResourceFormat",
        "update_cycle": "UpdateCycle",
    }
    for enum_type, labels in LABELS.items():
        if enum_type.__name__ == table.get(name):
            return labels.get(str(value), str(value))
    return str(value)
