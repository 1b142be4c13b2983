"""Offline compilation in Excel: the template, the all-or-nothing import, and exports.

The template has a 目录 sheet (one row per entry) and a 信息项 sheet (data items, tied to their
entry by 序号), with drop-down lists for every enumeration kept on a hidden 选项 sheet. An export
has the same layout, so export → import round-trips.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import openpyxl
import xlsxwriter
from pydantic import ValidationError

from kuaishu.catalog import rules
from kuaishu.catalog.enums import (
    DOMAINS,
    LABELS,
    SECURITY_LEVELS,
    ItemType,
    OpenType,
    ResourceClass,
    ResourceFormat,
    ShareMethod,
    ShareType,
    UpdateCycle,
)
from kuaishu.catalog.schemas import RevisionIn
from kuaishu.errors import PROBLEM_MESSAGES, ValidationFailed
from kuaishu.i18n import gettext_

ENTRY_SHEET, ITEM_SHEET, OPTION_SHEET = "目录", "信息项", "选项"
LIST_SEPARATOR = "，"


@dataclass(frozen=True)
class Column:
    header: str
    field: str
    enum: type[StrEnum] | None = None
    choices: tuple[str, ...] = ()
    many: bool = False
    required: bool = False
    width: int = 16


ENTRY_COLUMNS = (
    Column("序号", "_key", required=True, width=6),
    Column("信息资源名称", "name", required=True, width=28),
    Column("信息资源摘要", "summary", width=36),
    Column("类", "resource_class", enum=ResourceClass, required=True, width=14),
    Column("项", "subject_code", width=6),
    Column("目", "category_code", width=6),
    Column("细目", "subcategory_code", width=6),
    Column("信息资源格式", "resource_format", enum=ResourceFormat),
    Column("共享类型", "share_type", enum=ShareType),
    Column("共享条件", "share_conditions", width=24),
    Column("共享方式", "share_methods", enum=ShareMethod, many=True),
    Column("共享依据", "share_basis", width=24),
    Column("开放类型", "open_type", enum=OpenType),
    Column("开放条件", "open_conditions", width=24),
    Column("开放依据", "open_basis", width=24),
    Column("更新周期", "update_cycle", enum=UpdateCycle, width=10),
    Column("领域", "domain", choices=DOMAINS),
    Column("安全级别", "security_level", choices=SECURITY_LEVELS),
    Column("关键字", "keywords", many=True, width=20),
    Column("联系方式", "contact"),
    Column("关联资源代码", "related_codes", many=True),
    Column("开放许可", "licence"),
    Column("来源系统", "source_systems", many=True),
)
ITEM_COLUMNS = (
    Column("序号", "_key", required=True, width=6),
    Column("信息项名称", "name", required=True, width=20),
    Column("数据类型", "type_code", enum=ItemType, required=True, width=12),
    Column("长度", "length", width=8),
    Column("描述", "description", width=30),
    Column("是否主键", "is_key", choices=("是", "否"), width=8),
    Column("敏感级别", "sensitivity", choices=SECURITY_LEVELS),
)


def _options(column: Column) -> tuple[str, ...]:
    if column.enum is not None:
        return tuple(LABELS[column.enum].values())
    return column.choices


# Writing ---------------------------------------------------------------------------------------


def write_workbook(entries: Iterable[RevisionIn]) -> bytes:
    """The template (no entries) or an export, as XLSX bytes."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    header = book.add_format(
        {
            "bold": True,
            "bg_color": "#0B3D91",
            "font_color": "#FFFFFF",
            "border": 1,
            "text_wrap": True,
            "valign": "vcenter",
        }
    )
    required = book.add_format(
        {
            "bold": True,
            "bg_color": "#B3261E",
            "font_color": "#FFFFFF",
            "border": 1,
            "text_wrap": True,
            "valign": "vcenter",
        }
    )
    options = book.add_worksheet(OPTION_SHEET)
    ranges = _write_options(options, (*ENTRY_COLUMNS, *ITEM_COLUMNS))
    options.hide()
    entry_rows, item_rows = _rows(entries)
    for name, columns, rows in (
        (ENTRY_SHEET, ENTRY_COLUMNS, entry_rows),
        (ITEM_SHEET, ITEM_COLUMNS, item_rows),
    ):
        sheet = book.add_worksheet(name)
        sheet.freeze_panes(1, 0)
        for index, column in enumerate(columns):
            sheet.write(0, index, column.header, required if column.required else header)
            sheet.set_column(index, index, column.width)
            if column.header in ranges and not column.many:
                sheet.data_validation(
                    1,
                    index,
                    5000,
                    index,
                    {
                        "validate": "list",
                        "source": ranges[column.header],
                        "error_title": "取值无效",
                        "error_message": "请从下拉列表中选择。",
                    },
                )
        for row_number, row in enumerate(rows, start=1):
            for index, value in enumerate(row):
                sheet.write_string(row_number, index, value)
    book.worksheets_objs.sort(key=lambda ws: ws.name == OPTION_SHEET)
    book.close()
    return buffer.getvalue()


def _write_options(sheet: Any, columns: Iterable[Column]) -> dict[str, str]:
    ranges: dict[str, str] = {}
    position = 0
    for column in columns:
        values = _options(column)
        if not values or column.header in ranges:
            continue
        sheet.write(0, position, column.header)
        for row, value in enumerate(values, start=1):
            sheet.write_string(row, position, value)
        letter = xlsxwriter.utility.xl_col_to_name(position)
        ranges[column.header] = f"={OPTION_SHEET}!${letter}$2:${letter}${len(values) + 1}"
        position += 1
    return ranges


def _cell(column: Column, value: Any) -> str:
    if value is None:
        return ""
    if column.many:
        labels = LABELS[column.enum] if column.enum else {}
        return LIST_SEPARATOR.join(labels.get(str(v), str(v)) for v in value)
    if column.enum is not None:
        return LABELS[column.enum].get(str(value), str(value))
    if isinstance(value, bool):
        return "是" if value else "否"
    return str(value)


def _rows(entries: Iterable[RevisionIn]) -> tuple[list[list[str]], list[list[str]]]:
    entry_rows: list[list[str]] = []
    item_rows: list[list[str]] = []
    for key, entry in enumerate(entries, start=1):
        values = entry.model_dump()
        entry_rows.append(
            [str(key) if c.field == "_key" else _cell(c, values[c.field]) for c in ENTRY_COLUMNS]
        )
        for item in values["items"]:
            item_rows.append(
                [str(key) if c.field == "_key" else _cell(c, item[c.field]) for c in ITEM_COLUMNS]
            )
    return entry_rows, item_rows


# Reading ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellError:
    sheet: str
    row: int
    column: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "message": self.message,
        }


def _parse_value(column: Column, raw: Any) -> Any:
    text = "" if raw is None else str(raw).strip()
    if column.many:
        parts = [
            p.strip() for p in text.replace(",", LIST_SEPARATOR).split(LIST_SEPARATOR) if p.strip()
        ]
        if column.enum is None:
            return parts
        reverse = {label: value for value, label in LABELS[column.enum].items()}
        unknown = [p for p in parts if p not in reverse and p not in LABELS[column.enum]]
        if unknown:
            raise ValueError(f"“{'、'.join(unknown)}”不是可选值")
        return [reverse.get(p, p) for p in parts]
    if not text:
        if column.required:
            raise ValueError("必填")
        return None
    if column.enum is not None:
        reverse = {label: value for value, label in LABELS[column.enum].items()}
        if text in reverse:
            return reverse[text]
        if text in LABELS[column.enum]:
            return text
        raise ValueError(f"“{text}”不是可选值")
    if column.choices and text not in column.choices:
        raise ValueError(f"“{text}”不是可选值")
    if column.field == "is_key":
        return text == "是"
    if column.field == "length":
        if not text.isdigit():
            raise ValueError("应为正整数")
        return int(text)
    return text


def _sheet_rows(
    book: Any, name: str, columns: tuple[Column, ...], errors: list[CellError]
) -> Iterator[tuple[int, dict[str, Any]]]:
    if name not in book.sheetnames:
        errors.append(CellError(name, 0, "", f"缺少工作表“{name}”"))
        return
    rows = book[name].iter_rows(values_only=True)
    headers = [str(h).strip() if h is not None else "" for h in next(rows, ())]
    positions = {}
    for column in columns:
        if column.header not in headers:
            errors.append(CellError(name, 1, column.header, "缺少此列"))
        else:
            positions[column.header] = headers.index(column.header)
    if len(positions) != len(columns):
        return
    for number, row in enumerate(rows, start=2):
        if all(v is None or str(v).strip() == "" for v in row):
            continue
        values: dict[str, Any] = {}
        for column in columns:
            raw = row[positions[column.header]] if positions[column.header] < len(row) else None
            try:
                values[column.field] = _parse_value(column, raw)
            except ValueError as exc:
                errors.append(CellError(name, number, column.header, str(exc)))
        yield number, values


def read_workbook(content: bytes) -> list[RevisionIn]:
    """Every entry of the workbook, or :class:`ValidationFailed` listing every error."""
    errors: list[CellError] = []
    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a file that is not XLSX
        raise ValidationFailed("文件不是有效的 XLSX 工作簿。", code="not_a_workbook") from exc
    entries = {
        str(v["_key"]): (n, v) for n, v in _sheet_rows(book, ENTRY_SHEET, ENTRY_COLUMNS, errors)
    }
    items: dict[str, list[dict[str, Any]]] = {}
    for number, values in _sheet_rows(book, ITEM_SHEET, ITEM_COLUMNS, errors):
        if errors and errors[-1].sheet == ITEM_SHEET and errors[-1].row == number:
            continue  # reported already; the entry is not blamed for it again
        key = str(values.pop("_key"))
        if key not in entries:
            errors.append(CellError(ITEM_SHEET, number, "序号", f"目录表中没有序号为 {key} 的条目"))
        values = {k: v for k, v in values.items() if v is not None}
        items.setdefault(key, []).append(values)
    result = [
        _entry(key, number, values, items.get(key, []), errors)
        for key, (number, values) in entries.items()
    ]
    if errors:
        raise ValidationFailed(
            "导入失败：共 {n} 处错误，未导入任何条目。第一处：{sheet}表第 {row} 行“{column}”列，{first}。",
            code="import_failed",
            details=[e.as_dict() for e in errors],
            n=len(errors),
            sheet=errors[0].sheet,
            row=errors[0].row,
            column=errors[0].column,
            first=errors[0].message,
        )
    return [r for r in result if r is not None]


def _entry(
    key: str,
    number: int,
    values: dict[str, Any],
    items: list[dict[str, Any]],
    errors: list[CellError],
) -> RevisionIn | None:
    data = {k: v for k, v in values.items() if k != "_key" and v is not None}
    try:
        entry = RevisionIn.model_validate({**data, "items": items})
    except ValidationError as exc:
        for problem in exc.errors():
            field = str(problem["loc"][0]) if problem["loc"] else ""
            message = gettext_(PROBLEM_MESSAGES.get(problem["type"], "取值无效"))
            errors.append(CellError(ENTRY_SHEET, number, _header(field), message))
        return None
    for broken in rules.write_problems(entry):
        errors.append(
            CellError(ENTRY_SHEET, number, _header(broken.field), broken.as_dict()["message"])
        )
    return entry


def _header(field: str) -> str:
    base = field.split("[", 1)[0]
    return next((c.header for c in ENTRY_COLUMNS if c.field == base), base)


# Flat exports ----------------------------------------------------------------------------------


def write_csv(entries: Iterable[tuple[str, RevisionIn]]) -> bytes:
    """One row per entry (data items as JSON), UTF-8 with BOM for Excel."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["信息资源代码", *[c.header for c in ENTRY_COLUMNS[1:]], "信息项"])
    for code, entry in entries:
        values = entry.model_dump(mode="json")
        row = [
            code,
            *[_cell(c, values[c.field]) for c in ENTRY_COLUMNS[1:]],
            json.dumps(values["items"], ensure_ascii=False),
        ]
        writer.writerow(["'" + v if v[:1] in ("=", "+", "-", "@") else v for v in row])
    return ("\ufeff" + buffer.getvalue()).encode()


def write_json(entries: Iterable[tuple[str, RevisionIn]]) -> bytes:
    return json.dumps(
        [{"code": code, **entry.model_dump(mode="json")} for code, entry in entries],
        ensure_ascii=False,
        indent=1,
    ).encode()
