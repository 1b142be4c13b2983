"""Readers of another portal's catalog (decision 0021): one per source format, each turning the
file into the same typed :class:`SourceRecord` list — the Excel template with a 部门 column, CSV,
JSON, JSON Lines (flat records, or the Guangxi portal's scrape) and CKAN ``package_search`` JSON.
:mod:`kuaishu.catalog.importer` plans and runs the import from them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timezone
from enum import StrEnum
from typing import Any

import openpyxl
from pydantic import ValidationError

from kuaishu.catalog import spreadsheet
from kuaishu.catalog.enums import (
    OpenType,
    ResourceClass,
    ResourceFormat,
    ShareMethod,
    ShareType,
    UpdateCycle,
)
from kuaishu.catalog.guangxi import CYCLES, Dataset, load_guangxi_lines, numbered_lines
from kuaishu.catalog.portals import ALIASES, GUANGXI_PORTAL
from kuaishu.catalog.schemas import RevisionIn
from kuaishu.catalog.services import CHINA
from kuaishu.errors import ValidationFailed
from kuaishu.i18n import gettext_

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
