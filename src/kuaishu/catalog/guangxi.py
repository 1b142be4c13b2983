"""The Guangxi open-data portal scrape (a real catalog of 1,118 datasets) as demo entries.

About 3,000 of its 5,411 records lost their 所属行业 value and every key after it slid one place
(``"所属行业": "发布时间", "2020-12-16 20:45:14": "最后更新时间", …``). The slide is undone
when every displaced value is a known field label and the dates parse; anything else is
rejected with its reason — never imported as garbage.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kuaishu.catalog.enums import DOMAINS, ResourceFormat, UpdateCycle

LABELS = (
    "来源部门",
    "数据量",
    "文件数",
    "开放状态",
    "所属行业",
    "发布时间",
    "最后更新时间",
    "更新频率",
    "部门电话",
    "部门邮箱",
    "描述",
)
SHIFT_START = "所属行业"
CYCLES = {
    "实时": UpdateCycle.REALTIME,
    "每天": UpdateCycle.DAILY,
    "每日": UpdateCycle.DAILY,
    "每周": UpdateCycle.WEEKLY,
    "每月": UpdateCycle.MONTHLY,
    "每季度": UpdateCycle.QUARTERLY,
    "每半年": UpdateCycle.HALF_YEARLY,
    "每年": UpdateCycle.YEARLY,
    "不定期": UpdateCycle.IRREGULAR,
}
SPREADSHEETS = {"xls", "xlsx", "csv"}
_SUFFIX = re.compile(r"_\d+$")


@dataclass
class Dataset:
    name: str
    department: str
    summary: str
    domain: str | None
    topic: str
    industry: str | None
    update_cycle: UpdateCycle
    published: datetime | None
    updated: datetime | None
    formats: list[str] = field(default_factory=list)
    volume: str | None = None

    @property
    def resource_format(self) -> ResourceFormat:
        if SPREADSHEETS & set(self.formats):
            return ResourceFormat.SPREADSHEET
        return ResourceFormat.SELF_DESCRIBING


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str
    raw: str


@dataclass
class GuangxiLoad:
    datasets: list[Dataset]
    rejected: list[Rejected]
    records: int
    repaired: int


def unshift(info: dict[str, str]) -> tuple[dict[str, str], bool]:
    """The record's fields with any slide undone; True when a repair was made.

    Raises ValueError naming what makes the record ambiguous.
    """
    if info.get(SHIFT_START) not in LABELS:
        return dict(info), False
    fixed: dict[str, str] = {}
    pending: str | None = None
    for key, value in info.items():
        if pending is None:
            if key == SHIFT_START:
                pending = value
            else:
                fixed[key] = value
            continue
        if value not in LABELS and value != "":
            raise ValueError(f"错位记录中“{value}”不是字段名，无法确定对应关系")
        fixed[pending] = key
        pending = value
    return fixed, True


def _date(value: str | None) -> datetime | None:
    if not value or value == "暂无":
        return None
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S")


def _records(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8") as fh:
        yield from numbered_lines(fh)


def numbered_lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """The non-blank lines with their 1-based line numbers."""
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield number, line


def _parse(record: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    info, repaired = unshift(record["info"])
    department = (info.get("来源部门") or "").strip()
    name = _SUFFIX.sub("", str(record["name"]).rsplit(".", 1)[0]).strip()
    if not department or not name:
        raise ValueError("缺少数据集名称或来源部门")
    if info.get("更新频率") and info["更新频率"] not in CYCLES:
        raise ValueError(f"更新频率“{info['更新频率']}”无法识别")
    published, updated = _date(info.get("发布时间")), _date(info.get("最后更新时间"))
    return {
        "info": info,
        "name": name,
        "department": department,
        "published": published,
        "updated": updated,
    }, repaired


def load_guangxi_catalog(path: Path) -> GuangxiLoad:
    """Distinct datasets (formats merged), the rejected records and why."""
    return load_guangxi_lines(_records(path))


def load_guangxi_lines(lines: Iterable[tuple[int, str]]) -> GuangxiLoad:
    """As :func:`load_guangxi_catalog`, from numbered JSON lines."""
    datasets: dict[tuple[str, str], Dataset] = {}
    rejected: list[Rejected] = []
    records = repaired = 0
    for number, line in lines:
        records += 1
        try:
            record = json.loads(line)
            parsed, was_repaired = _parse(record)
        except (ValueError, KeyError, TypeError) as exc:
            rejected.append(Rejected(number, str(exc), line.strip()[:300]))
            continue
        repaired += was_repaired
        info = parsed["info"]
        key = (parsed["name"], parsed["department"])
        dataset = datasets.get(key)
        if dataset is None:
            topic = str(record.get("topic") or "")
            description = info.get("描述")
            dataset = datasets[key] = Dataset(
                name=parsed["name"],
                department=parsed["department"],
                summary=description if description and description != "暂无" else parsed["name"],
                domain=topic if topic in DOMAINS else None,
                topic=topic,
                industry=info.get("所属行业") if info.get("所属行业") not in LABELS else None,
                update_cycle=CYCLES.get(info.get("更新频率") or "", UpdateCycle.IRREGULAR),
                published=parsed["published"],
                updated=parsed["updated"],
                volume=info.get("数据量") or info.get("文件数"),
            )
        extension = str(record["name"]).rsplit(".", 1)[-1].lower()
        if extension not in dataset.formats:
            dataset.formats.append(extension)
    return GuangxiLoad(list(datasets.values()), rejected, records, repaired)
