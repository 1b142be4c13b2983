"""What the exchange's console pages read besides the exchange itself: the share catalog (共享目录)
— the catalog's search, each entry with the sharing terms of its revision in force and the quality
score of its served version — and the names of the entries and departments a list shows.

Each list is loaded in a fixed number of queries, however many rows it has.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuaishu.accounts.actor import Actor
from kuaishu.accounts.models import Department
from kuaishu.authz import authorize
from kuaishu.catalog.models import CatalogEntry, CatalogRevision
from kuaishu.catalog.search import SearchQuery, search
from kuaishu.catalog.services import get_entry
from kuaishu.pagination import Paged, PageRequest
from kuaishu.store.models import Dataset, DatasetVersion


@dataclass(frozen=True)
class Listing:
    """A catalog entry as the share catalog shows it."""

    entry: CatalogEntry
    revision: CatalogRevision | None  # the revision in force: conditions, methods, basis, contact
    score: float | None  # quality score of the served version; None without data or report

    @property
    def contact(self) -> str:
        """The entry's own contact, else its department's."""
        own = self.revision.contact if self.revision else ""
        return own or self.entry.department.contact or ""


@dataclass(frozen=True)
class Directory:
    page: Paged[Listing]
    share_types: dict[str, int]  # share type → how many entries match the query


def directory(
    session: Session, *, actor: Actor, q: str = "", share_type: str = "", page: PageRequest
) -> Directory:
    """One page of published entries with their sharing terms: every share type, since a
    department looking for data needs to see what it cannot have, and why, too."""
    authorize(actor, "share.browse")
    filters = {"share_type": share_type} if share_type else {}
    found = search(session, SearchQuery(q=q, view="all", filters=filters), page)
    listed = _listings(session, found.page.items)
    counts = {str(f["value"]): int(f["count"]) for f in found.facets.get("share_type", [])}
    return Directory(Paged(listed, found.page.total, found.page.page, found.page.page_size), counts)


def listing(session: Session, entry_id: int, *, actor: Actor) -> Listing:
    """One entry of the share catalog."""
    authorize(actor, "share.browse")
    return _listings(session, [get_entry(session, entry_id)])[0]


def _listings(session: Session, entries: list[CatalogEntry]) -> list[Listing]:
    revision_ids = [e.published_revision_id for e in entries if e.published_revision_id]
    revisions = {
        r.id: r
        for r in session.scalars(
            select(CatalogRevision).where(CatalogRevision.id.in_(revision_ids))
        )
    }
    found = session.execute(
        select(Dataset.entry_id, DatasetVersion.quality)
        .join(DatasetVersion, DatasetVersion.id == Dataset.current_version_id)
        .where(Dataset.entry_id.in_([e.id for e in entries]))
    )
    scores = {entry_id: _score(report) for entry_id, report in found}
    return [
        Listing(
            entry=e,
            revision=revisions.get(e.published_revision_id or 0),
            score=scores.get(e.id),
        )
        for e in entries
    ]


def _score(report: dict[str, Any] | None) -> float | None:
    value = (report or {}).get("score")
    return float(value) if isinstance(value, int | float) else None


class BetweenDepartments(Protocol):
    """An application, grant or objection: an entry, and the departments on either side."""

    @property
    def entry_id(self) -> int: ...
    @property
    def provider_department_id(self) -> int: ...
    @property
    def consumer_department_id(self) -> int: ...


@dataclass(frozen=True)
class Names:
    """The entries and department names a list of exchange rows refers to."""

    entries: dict[int, CatalogEntry]
    departments: dict[int, str]

    def entry(self, entry_id: int) -> str:
        found = self.entries.get(entry_id)
        return found.name if found else f"#{entry_id}"

    def department(self, department_id: int) -> str:
        return self.departments.get(department_id, f"#{department_id}")


def names_for(session: Session, rows: Iterable[BetweenDepartments]) -> Names:
    listed = list(rows)
    entry_ids = {r.entry_id for r in listed}
    department_ids = {r.provider_department_id for r in listed} | {
        r.consumer_department_id for r in listed
    }
    entries = {
        e.id: e for e in session.scalars(select(CatalogEntry).where(CatalogEntry.id.in_(entry_ids)))
    }
    departments = {
        department_id: name
        for department_id, name in session.execute(
            select(Department.id, Department.name).where(Department.id.in_(department_ids))
        )
    }
    return Names(entries, departments)
