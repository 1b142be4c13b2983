"""Bring another portal's catalog in, across departments, in one import (decision 0021).

The readers (:mod:`kuaishu.catalog.sources`) turn each source format into the same typed
:class:`SourceRecord` list. :func:`plan_import` proposes how the source's categories map to our
domains and which departments match or will be created, and lists exact duplicates;
:func:`run_import` imports once the operator has confirmed that mapping. Entries come in as
published (they were published where they came from), with the source's issued/modified dates.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.cn import uscc

from kuaishu.accounts import services as accounts
from kuaishu.accounts.actor import Actor
from kuaishu.accounts.models import Department, Region
from kuaishu.accounts.roles import LevelKind
from kuaishu.authz import authorize
from kuaishu.catalog import rules, services
from kuaishu.catalog.enums import (
    DOMAINS,
)
from kuaishu.catalog.models import CatalogEntry
from kuaishu.catalog.portals import NEAR_DOMAINS, NO_DOMAIN
from kuaishu.catalog.services import CHINA
from kuaishu.catalog.sources import (
    Parsed,
    Problem,
    SourceRecord,
)
from kuaishu.errors import AppError, ValidationFailed
from kuaishu.security import audit

# Planning --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DepartmentMatch:
    name: str
    department_id: int | None  # None: to be created
    region_id: int | None  # proposed region for a department to be created
    entries: int


@dataclass(frozen=True)
class Duplicate:
    ref: str
    name: str
    department: str
    code: str | None  # the existing entry; None when the file repeats itself


@dataclass
class Plan:
    records: list[SourceRecord]
    rejected: list[Problem]
    categories: dict[str, str | None]  # source category → proposed domain ("" = uncategorised)
    departments: list[DepartmentMatch]
    duplicates: list[Duplicate]
    skip: set[int] = field(default_factory=set)  # positions of the duplicates in ``records``

    @property
    def new(self) -> list[SourceRecord]:
        return [r for i, r in enumerate(self.records) if i not in self.skip]

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": len(self.records),
            "to_import": len(self.new),
            "categories": [
                {"category": c, "proposed_domain": d, "entries": self._count(c)}
                for c, d in self.categories.items()
            ],
            "departments": [d.__dict__ for d in self.departments],
            "duplicates": [d.__dict__ for d in self.duplicates],
            "rejected": [p.__dict__ for p in self.rejected],
        }

    def _count(self, category: str) -> int:
        return sum(1 for r in self.records if (r.category or "") == category)


def propose_domain(category: str) -> str | None:
    if category in DOMAINS:
        return category
    if category in NO_DOMAIN:
        return None
    return NEAR_DOMAINS.get(category)


def _regions(session: Session) -> list[Region]:
    return list(session.scalars(select(Region)))


def _region_for(name: str, regions: list[Region], default: int | None) -> int | None:
    """The region whose name begins the department's name (the most specific), else default."""
    named = [r for r in regions if r.name and name.startswith(r.name)]
    if named:
        return max(named, key=lambda r: len(r.name)).id
    return default


def plan_import(
    session: Session, *, actor: Actor, parsed: Parsed, region_id: int | None = None
) -> Plan:
    """What the import would do: the operator reads it and confirms the category mapping."""
    authorize(actor, "catalog.import")
    by_name = {d.name: d for d in session.scalars(select(Department))}
    regions = _regions(session)
    counts: dict[str, int] = {}
    for record in parsed.records:
        counts[record.department] = counts.get(record.department, 0) + 1
    departments = [
        DepartmentMatch(
            name=name,
            department_id=by_name[name].id if name in by_name else None,
            region_id=None if name in by_name else _region_for(name, regions, region_id),
            entries=n,
        )
        for name, n in counts.items()
    ]
    known_ids = [d.department_id for d in departments if d.department_id is not None]
    existing: dict[tuple[int, str, str], str] = {}
    if known_ids:
        for entry in session.scalars(
            select(CatalogEntry).where(CatalogEntry.department_id.in_(known_ids))
        ):
            existing.setdefault((entry.department_id, entry.name, entry.summary), entry.code)
    duplicates: list[Duplicate] = []
    skip: set[int] = set()
    seen: set[tuple[str, str, str]] = set()
    for index, record in enumerate(parsed.records):
        key = (record.department, record.data.name, record.data.summary)
        department = by_name.get(record.department)
        code = (
            existing.get((department.id, record.data.name, record.data.summary))
            if department
            else None
        )
        if code is not None or key in seen:
            duplicates.append(Duplicate(record.ref, record.data.name, record.department, code))
            skip.add(index)
        seen.add(key)
    categories = {
        c: propose_domain(c) for c in dict.fromkeys((r.category or "") for r in parsed.records)
    }
    audit.record(
        session,
        actor,
        "catalog.import_preview",
        details={
            "records": len(parsed.records),
            "duplicates": len(duplicates),
            "rejected": len(parsed.rejected),
            "new_departments": sum(1 for d in departments if d.department_id is None),
        },
    )
    return Plan(parsed.records, parsed.rejected, categories, departments, duplicates, skip)


# Importing -------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    created: list[str]
    departments_created: list[str]
    duplicates: list[Duplicate]
    rejected: list[Problem]

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": len(self.created),
            "codes": self.created,
            "departments_created": self.departments_created,
            "duplicates": [d.__dict__ for d in self.duplicates],
            "rejected": [p.__dict__ for p in self.rejected],
        }


def check_mapping(plan: Plan, mapping: dict[str, str | None]) -> dict[str, str | None]:
    """The confirmed mapping, which must name every category of the file and only our domains."""
    missing = [c for c in plan.categories if c not in mapping]
    if missing:
        raise ValidationFailed(
            "请确认类别“{value}”对应的领域（可为空）后再导入。",
            code="mapping_unconfirmed",
            details={"categories": missing, "plan": plan.as_dict()},
            value=missing[0],
        )
    unknown = [d for d in mapping.values() if d is not None and d not in DOMAINS]
    if unknown:
        raise ValidationFailed(
            "“{value}”不是本平台的领域。",
            code="unknown_domain",
            details={"domains": unknown},
            value=unknown[0],
        )
    return {c: mapping[c] for c in plan.categories}


def run_import(
    session: Session,
    *,
    actor: Actor,
    plan: Plan,
    mapping: dict[str, str | None],
    source: str,
) -> ImportResult:
    """Import the plan's new records as published entries with their source dates.

    A record the catalog rules refuse is reported with its reason and the others go in; exact
    duplicates are reported, never imported. Each entry is a ``catalog.import`` event.
    """
    authorize(actor, "catalog.import")
    confirmed = check_mapping(plan, mapping)
    unplaced = [d.name for d in plan.departments if d.department_id is None and not d.region_id]
    if unplaced:
        raise ValidationFailed(
            "部门“{value}”不存在，且无法确定其所属行政区：请指定新部门的行政区（region_id）。",
            code="region_required",
            details={"departments": unplaced},
            value=unplaced[0],
        )
    ids = {d.name: d.department_id for d in plan.departments if d.department_id is not None}
    created_departments: list[str] = []
    for match in plan.departments:
        if match.department_id is None and match.region_id is not None:
            department = _create_department(session, actor, match.name, match.region_id)
            ids[match.name] = department.id
            created_departments.append(match.name)
    created: list[str] = []
    rejected = list(plan.rejected)
    for record in plan.new:
        data = record.data.model_copy(update={"domain": confirmed[record.category or ""]})
        try:
            with session.begin_nested():
                rules.raise_if(rules.write_problems(data))
                entry = services.import_published(
                    session,
                    actor=actor,
                    department_id=ids[record.department],
                    data=data,
                    published=_china(record.issued),
                    updated=_china(record.modified),
                )
            created.append(entry.code)
        except AppError as exc:
            rejected.append(Problem(record.ref, exc.localized()))
    audit.record(
        session,
        actor,
        "catalog.bulk_import",
        details={
            "source": source,
            "created": len(created),
            "duplicates": len(plan.duplicates),
            "rejected": len(rejected),
            "departments_created": created_departments,
            "mapping": confirmed,
        },
    )
    return ImportResult(created, created_departments, plan.duplicates, rejected)


def _china(moment: datetime | None) -> datetime | None:
    """China wall-clock time without a zone, as :func:`services.import_published` expects."""
    return moment.astimezone(CHINA).replace(tzinfo=None) if moment else None


# New departments -------------------------------------------------------------------------------

_LAST = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_FOURTH = {
    LevelKind.PROVINCE: "0123456789QRSTUVWXYZ",
    LevelKind.CITY: "0QRSTUVWXYZ",
    LevelKind.COUNTY: "123456789",
}


def _department_codes(region: Region) -> Iterator[str]:
    """GB/T 21063.5 codes that fit the region: province xx0??, city/county xxC?? (C its city)."""
    third = "0" if region.level == LevelKind.PROVINCE else _LAST[int(region.code[2:4]) % 36]
    for fourth in _FOURTH[region.level]:
        for last in _LAST:
            yield f"{region.code[:2]}{third}{fourth}{last}"


def _create_department(session: Session, actor: Actor, name: str, region_id: int) -> Department:
    """A department named by the source, with the first free code of its region and a
    placeholder credit code (``MB`` series) the operator replaces with the real one."""
    region = session.get(Region, region_id)
    if region is None:
        raise ValidationFailed("行政区不存在。", code="region_not_found")
    used = set(
        session.scalars(select(Department.code).where(Department.code.like(f"{region.code[:2]}%")))
    )
    code = next((c for c in _department_codes(region) if c not in used), None)
    if code is None:
        raise ValidationFailed(
            "行政区“{value}”的部门代码已用尽。",
            code="department_codes_exhausted",
            value=region.name,
        )
    credits = set(session.scalars(select(Department.credit_code)))
    serial = len(credits) + 1
    while True:
        body = f"11{region.code[:6]}MB{serial:07d}"
        credit = body + uscc.calc_check_digit(body)
        if credit not in credits:
            break
        serial += 1
    return accounts.create_department(
        session, actor=actor, code=code, name=name, credit_code=credit, region_id=region.id
    )
