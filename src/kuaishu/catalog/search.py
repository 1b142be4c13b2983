"""Chinese full-text search over published entries, portable across SQLite and PostgreSQL.

Text is cut into character unigrams and bigrams (and whole ASCII words); an entry matches when it
holds every term of the query. Exact titles rank first, then titles containing the query, then
by how much of the query sits in the title. See docs/decisions/0020-catalog-search.md.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, insert, select
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


def _matching(wanted: set[str]) -> Select[Any]:
    """Ids of entries holding every term: one posting list, or their intersection."""
    if len(wanted) == 1:
        return select(SearchTerm.entry_id).where(SearchTerm.term == next(iter(wanted)))
    return (
        select(SearchTerm.entry_id)
        .where(SearchTerm.term.in_(sorted(wanted)))
        .group_by(SearchTerm.entry_id)
        .having(func.count() == len(wanted))
    )


ROW_COLUMNS = (
    CatalogEntry.id,
    CatalogEntry.name,
    CatalogEntry.updated_at,
    *(getattr(CatalogEntry, name) for name in FACETS),
)


def search(session: Session, query: SearchQuery, page: PageRequest) -> SearchResult:
    """One page of matching published entries, best first, with facet counts.

    One query fetches the few columns ranking and facets need for every match; counting and
    ranking happen in memory, which beats seven GROUP BYs over the same match set.
    """
    q = query.q.strip()
    wanted = query_terms(q)
    stmt = select(*ROW_COLUMNS).where(*_conditions(query))
    if wanted:
        stmt = stmt.where(CatalogEntry.id.in_(_matching(wanted)))
    rows = list(session.execute(stmt).all())
    rows.sort(key=lambda row: _rank(row, q, wanted))
    window = [row[0] for row in rows[page.offset : page.offset + page.page_size]]
    found = {
        e.id: e for e in session.scalars(select(CatalogEntry).where(CatalogEntry.id.in_(window)))
    }
    items = [found[i] for i in window]
    return SearchResult(Paged(items, len(rows), page.page, page.page_size), _facets(session, rows))


def _rank(row: Any, q: str, wanted: set[str]) -> tuple[int, int, float, int]:
    name = row[1]
    closeness = 0 if name == q else 1 if q and q in name else 2
    in_name = sum(1 for term in wanted if term in name)
    updated = row[2].timestamp() if row[2] else 0.0
    return closeness, -in_name, -updated, row[0]


def _facets(session: Session, rows: list[Any]) -> dict[str, list[dict[str, Any]]]:
    counters = {name: Counter(row[3 + n] for row in rows) for n, name in enumerate(FACETS)}
    top = {
        name: [(v, c) for v, c in counter.most_common(31) if v is not None][:30]
        for name, counter in counters.items()
    }
    ids = [int(v) for v, _c in top["department_id"]]
    names = (
        dict(
            session.execute(
                select(Department.id, Department.name).where(Department.id.in_(ids))
            ).all()
        )
        if ids
        else {}
    )
    return {
        name: [
            {"value": str(v), "label": _facet_label(name, v, names), "count": c} for v, c in values
        ]
        for name, values in top.items()
    }


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
