"""Bring another portal's catalog in, across departments, in one import (decision 0021).

One reader per source format turns the file into the same typed :class:`SourceRecord` list:
the Excel template with a 部门 column, CSV, JSON, JSON Lines (flat records, or the Guangxi
portal's scrape) and CKAN ``package_search`` JSON. :func:`preview` proposes how the source's
categories map to our domains and which departments match or will be created, and lists exact
duplicates; :func:`run` imports once the operator has confirmed that mapping. Entries come in as
published (they were published where they came from), with the source's issued/modified dates.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

import openpyxl
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.cn import uscc

from kuaishu.accounts import services as accounts
from kuaishu.accounts.actor import Actor
from kuaishu.accounts.models import Department, Region
from kuaishu.accounts.roles import LevelKind
from kuaishu.authz import authorize
from kuaishu.catalog import rules, services, spreadsheet
from kuaishu.catalog.enums import (
    DOMAINS,
    OpenType,
    ResourceClass,
    ResourceFormat,
    ShareMethod,
    ShareType,
    UpdateCycle,
)
from kuaishu.catalog.guangxi import CYCLES, Dataset, load_guangxi_lines, numbered_lines
from kuaishu.catalog.models import CatalogEntry
from kuaishu.catalog.portals import ALIASES, GUANGXI_PORTAL, NEAR_DOMAINS, NO_DOMAIN
from kuaishu.catalog.schemas import RevisionIn
from kuaishu.errors import AppError, ValidationFailed
from kuaishu.i18n import gettext_
from kuaishu.security import audit

CHINA = timezone(timedelta(hours=8))
MAX_RECORDS = 20_000
SPREADSHEET_FORMATS = {"xls", "xlsx", "csv"}


class SourceFormat(StrEnum):
    XLSX = "xlsx"
    CSV = "csv"
    JSON = "json"
    JSONL = "jsonl"
    CKAN = "ckan"


@dataclass(frozen=True)
class SourceRecord:
    """One dataset of the source, typed: what every reader produces."""

    ref: str  # where it is in the file, for the operator: "第 12 行", "results[3]"
    department: str
    data: RevisionIn  # the domain is filled from the confirmed mapping at import
    category: str | None
    issued: datetime | None
    modified: datetime | None


class Unreadable(ValueError):
    """A record's value that cannot be read: a message template and its parameters."""

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message)
        self.params = params

    def localized(self) -> str:
        return gettext_(str(self.args[0]), **self.params)


@dataclass(frozen=True)
class Problem:
    ref: str
    reason: str


@dataclass
class Parsed:
    records: list[SourceRecord] = field(default_factory=list)
    rejected: list[Problem] = field(default_factory=list)


def _pick(raw: dict[str, Any], name: str) -> Any:
    for key in ALIASES[name]:
        value = raw.get(key)
        if value not in (None, ""):
            return value
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return str(value.get("title") or value.get("name") or "").strip()
    return str(value).strip()


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [t for t in (_text(v) for v in value) if t]
    return [p.strip() for p in str(value).replace("，", ",").split(",") if p.strip()]


def parse_date(value: Any, zone: timezone = CHINA) -> datetime | None:
    """A source date; one without a zone is in ``zone`` (China time unless the source says
    otherwise). Raises ValueError when unreadable."""
    if value in (None, "", "暂无"):
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip().replace("/", "-").replace("Z", "+00:00")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise Unreadable("日期“{value}”无法识别", value=str(value)[:50]) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _cycle(value: Any) -> UpdateCycle | None:
    text = _text(value)
    if not text:
        return None
    if text in CYCLES:
        return CYCLES[text]
    try:
        return UpdateCycle(text)
    except ValueError:
        raise Unreadable("更新频率“{value}”无法识别", value=text[:50]) from None


def _resource_format(formats: Iterable[str]) -> ResourceFormat:
    if SPREADSHEET_FORMATS & {f.lower().strip(".") for f in formats}:
        return ResourceFormat.SPREADSHEET
    return ResourceFormat.SELF_DESCRIBING


def open_data_revision(
    *,
    name: str,
    summary: str,
    formats: Iterable[str],
    update_cycle: UpdateCycle | None,
    keywords: Iterable[str],
    licence: str,
    source: str,
) -> RevisionIn:
    """What a dataset on an open-data portal says about itself, as our metadata."""
    return RevisionIn(
        name=name[:200],
        summary=(summary or name)[:4000],
        resource_class=ResourceClass.DEPARTMENT,
        resource_format=_resource_format(formats),
        share_type=ShareType.UNCONDITIONAL,
        share_methods=[ShareMethod.API, ShareMethod.FILE],
        open_type=OpenType.UNCONDITIONAL,
        update_cycle=update_cycle,
        keywords=[k[:50] for k in dict.fromkeys(keywords) if k][:30],
        licence=licence[:100],
        source_systems=[source[:100]] if source else [],
    )


def _flat(ref: str, raw: Any, source: str) -> SourceRecord:
    if not isinstance(raw, dict):
        raise ValueError("记录不是对象")
    name, department = _text(_pick(raw, "name")), _text(_pick(raw, "department"))
    if not name or not department:
        raise ValueError("缺少数据集名称或来源部门")
    data = open_data_revision(
        name=name,
        summary=_text(_pick(raw, "summary")),
        formats=_list(_pick(raw, "formats")),
        update_cycle=_cycle(_pick(raw, "update_cycle")),
        keywords=_list(_pick(raw, "keywords")),
        licence=_text(raw.get("licence") or raw.get("license")),
        source=source,
    )
    return SourceRecord(
        ref=ref,
        department=department,
        data=data,
        category=_text(_pick(raw, "category")) or None,
        issued=parse_date(_pick(raw, "issued")),
        modified=parse_date(_pick(raw, "modified")),
    )


def _collect(rows: Iterable[tuple[str, Any]], make: Callable[[str, Any], SourceRecord]) -> Parsed:
    parsed = Parsed()
    for ref, raw in rows:
        try:
            parsed.records.append(make(ref, raw))
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            if isinstance(exc, Unreadable):
                reason = exc.localized()
            elif isinstance(exc, ValidationError):
                reason = gettext_("内容不符合目录字段要求")
            else:
                reason = gettext_(str(exc))
            parsed.rejected.append(Problem(ref, reason))
        if len(parsed.records) + len(parsed.rejected) > MAX_RECORDS:
            raise ValidationFailed(
                "一次最多导入 {n} 条记录。", code="import_too_large", n=MAX_RECORDS
            )
    return parsed


def _not_readable(kind: str) -> ValidationFailed:
    return ValidationFailed(
        "文件不是有效的 {kind}。", code="unreadable_import", details={"format": kind}, kind=kind
    )


def _decode(content: bytes, kind: str) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _not_readable(kind) from None


# Readers: one per format -----------------------------------------------------------------------


def read_csv(content: bytes, source: str) -> Parsed:
    rows = csv.DictReader(io.StringIO(_decode(content, "CSV")))
    return _collect(
        ((f"第 {n} 行", row) for n, row in enumerate(rows, start=2)),
        lambda ref, raw: _flat(ref, raw, source),
    )


def _json(content: bytes, kind: str) -> Any:
    try:
        return json.loads(_decode(content, kind))
    except json.JSONDecodeError:
        raise _not_readable(kind) from None


def read_json(content: bytes, source: str) -> Parsed:
    document = _json(content, "JSON")
    if isinstance(document, dict):
        document = next(
            (document[k] for k in ("records", "datasets", "data", "items") if k in document), None
        )
    if not isinstance(document, list):
        raise ValidationFailed(
            "JSON 应为记录数组，或含 records/datasets/data/items 数组的对象。",
            code="unreadable_import",
            details={"format": "JSON"},
        )
    return _collect(
        ((f"[{i}]", raw) for i, raw in enumerate(document)),
        lambda ref, raw: _flat(ref, raw, source),
    )


def read_jsonl(content: bytes, source: str) -> Parsed:
    """Flat records one a line; the Guangxi portal's scrape (records with ``info``) is
    recognised and repaired as in :mod:`kuaishu.catalog.guangxi`."""
    lines = list(numbered_lines(_decode(content, "JSON Lines").splitlines()))
    if lines and '"info"' in lines[0][1]:
        return _guangxi(lines, source or GUANGXI_PORTAL)
    parsed = Parsed()
    good: list[tuple[str, Any]] = []
    for number, line in lines:
        try:
            good.append((f"第 {number} 行", json.loads(line)))
        except json.JSONDecodeError:
            parsed.rejected.append(Problem(f"第 {number} 行", gettext_("不是有效的 JSON")))
    found = _collect(good, lambda ref, raw: _flat(ref, raw, source))
    return Parsed(found.records, parsed.rejected + found.rejected)


def _guangxi(lines: list[tuple[int, str]], source: str) -> Parsed:
    load = load_guangxi_lines(lines)
    rejected = [Problem(f"第 {r.line} 行", gettext_(r.reason)) for r in load.rejected]
    return Parsed([_from_dataset(d, source) for d in load.datasets], rejected)


def _from_dataset(dataset: Dataset, source: str) -> SourceRecord:
    data = open_data_revision(
        name=dataset.name,
        summary=dataset.summary,
        formats=dataset.formats,
        update_cycle=dataset.update_cycle,
        keywords=[k for k in (dataset.topic, dataset.industry) if k],
        licence="CC BY 4.0",
        source=source,
    )
    return SourceRecord(
        ref=f"{dataset.department}／{dataset.name}",
        department=dataset.department,
        data=data,
        category=dataset.topic or None,
        issued=dataset.published.replace(tzinfo=CHINA) if dataset.published else None,
        modified=dataset.updated.replace(tzinfo=CHINA) if dataset.updated else None,
    )


def read_ckan(content: bytes, source: str) -> Parsed:
    """A CKAN ``package_search`` (or ``package_list``-style) response."""
    document = _json(content, "CKAN JSON")
    result = document.get("result", document) if isinstance(document, dict) else document
    packages = result.get("results") if isinstance(result, dict) else result
    if not isinstance(packages, list):
        raise ValidationFailed(
            "不是 CKAN package_search 的响应（缺少 result.results）。",
            code="unreadable_import",
            details={"format": "CKAN"},
        )
    return _collect(
        ((f"results[{i}]", raw) for i, raw in enumerate(packages)),
        lambda ref, raw: _ckan(ref, raw, source),
    )


def _ckan(ref: str, package: Any, source: str) -> SourceRecord:
    if not isinstance(package, dict):
        raise ValueError("记录不是对象")
    name = _text(package.get("title") or package.get("name"))
    department = _text(package.get("organization") or package.get("author"))
    if not name or not department:
        raise ValueError("缺少数据集名称或所属机构")
    groups = _list(package.get("groups"))
    tags = [_text(t.get("display_name") or t.get("name")) for t in package.get("tags") or []]
    formats = [_text(r.get("format")) for r in package.get("resources") or []]
    data = open_data_revision(
        name=name,
        summary=_text(package.get("notes")),
        formats=formats,
        update_cycle=None,
        keywords=tags,
        licence=_text(package.get("license_title") or package.get("license_id")),
        source=source,
    )
    return SourceRecord(
        ref=ref,
        department=department,
        data=data,
        category=groups[0] if groups else None,
        # CKAN's metadata timestamps are UTC.
        issued=parse_date(package.get("metadata_created"), zone=UTC),
        modified=parse_date(package.get("metadata_modified"), zone=UTC),
    )


DEPARTMENT_COLUMN, ISSUED_COLUMN, MODIFIED_COLUMN = "部门", "发布时间", "更新时间"


def read_xlsx(content: bytes, source: str) -> Parsed:
    """The compilation template with a 部门 column (and optional 发布时间 / 更新时间)."""
    entries = spreadsheet.read_workbook(content)
    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    rows = book[spreadsheet.ENTRY_SHEET].iter_rows(values_only=True)
    headers = [str(h).strip() if h is not None else "" for h in next(rows, ())]
    if DEPARTMENT_COLUMN not in headers:
        raise ValidationFailed(
            "目录表缺少“{column}”列：跨部门导入需写明每条目录的部门。",
            code="department_column_missing",
            details={"column": DEPARTMENT_COLUMN},
            column=DEPARTMENT_COLUMN,
        )
    position = {h: i for i, h in enumerate(headers)}
    # Keyed by 序号 as read_workbook keys its entries, so each entry meets its own row.
    extra: dict[str, tuple[int, dict[str, Any]]] = {}
    for number, row in enumerate(rows, start=2):
        if all(v is None or str(v).strip() == "" for v in row):
            continue
        values = {h: row[i] if i < len(row) else None for h, i in position.items()}
        extra[str(values.get("序号") or "").strip()] = (number, values)
    records = Parsed()
    for data, (number, values) in zip(entries, extra.values(), strict=True):
        ref = f"目录表第 {number} 行"
        try:
            department = _text(values.get(DEPARTMENT_COLUMN))
            if not department:
                raise ValueError("“部门”必填")
            category = data.domain
            records.records.append(
                SourceRecord(
                    ref=ref,
                    department=department,
                    data=data.model_copy(update={"domain": None}),
                    category=category,
                    issued=parse_date(values.get(ISSUED_COLUMN)),
                    modified=parse_date(values.get(MODIFIED_COLUMN)),
                )
            )
        except Unreadable as exc:
            records.rejected.append(Problem(ref, exc.localized()))
        except ValueError as exc:
            records.rejected.append(Problem(ref, gettext_(str(exc))))
    return records


READERS: dict[SourceFormat, Callable[[bytes, str], Parsed]] = {
    SourceFormat.XLSX: read_xlsx,
    SourceFormat.CSV: read_csv,
    SourceFormat.JSON: read_json,
    SourceFormat.JSONL: read_jsonl,
    SourceFormat.CKAN: read_ckan,
}


def read(content: bytes, fmt: SourceFormat, source: str = "") -> Parsed:
    return READERS[fmt](content, source)


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
