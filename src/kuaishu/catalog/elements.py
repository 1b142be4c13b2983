"""One source per datum (一数一源): data elements and the departments that are their source."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuaishu.accounts.models import Department
from kuaishu.catalog.models import DataElement
from kuaishu.catalog.schemas import DataItemIn

# The registry a new platform starts with: (element, usual variants, authority department name
# fragment). Operators adjust it; the demo maps the fragments onto its departments.
DEFAULT_ELEMENTS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "公民身份号码",
        (
            "身份证号",
            "身份证号码",
            "公民身份证号",
            "公民身份证号码",
            "身份证",
            "居民身份证号码",
            "证件号码",
        ),
        "公安",
    ),
    ("姓名", ("人员姓名", "名字"), "公安"),
    ("统一社会信用代码", ("社会信用代码", "信用代码", "统一信用代码"), "市场监督"),
    ("企业名称", ("单位名称", "公司名称", "企业全称"), "市场监督"),
    ("法定代表人", ("法人代表", "法人", "法定代表人姓名"), "市场监督"),
    ("行政区划代码", ("区划代码", "行政区代码"), "统计"),
)

_NOISE = re.compile(r"[\s（）()【】\[\]：:·\-_/]")


def normalize(name: str) -> str:
    return _NOISE.sub("", name).strip()


def element_index(session: Session) -> dict[str, DataElement]:
    """Every name and variant, normalised, to its element."""
    index: dict[str, DataElement] = {}
    for element in session.scalars(select(DataElement)):
        for name in (element.name, *element.variants):
            index[normalize(name)] = element
    return index


def flags_for(
    session: Session, department: Department, items: Sequence[DataItemIn]
) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """Items that are another department's element, and item position → element id."""
    index = element_index(session)
    flags: list[dict[str, Any]] = []
    links: dict[int, int] = {}
    for position, item in enumerate(items, start=1):
        element = index.get(normalize(item.name))
        if element is None:
            continue
        links[position] = element.id
        if element.authority_department_id != department.id:
            flags.append(
                {
                    "item": item.name,
                    "position": position,
                    "element": element.name,
                    "authority_department_id": element.authority_department_id,
                    "authority": element.authority.name,
                    "message": f"“{item.name}”是{element.authority.name}的权威数据元“{element.name}”，应通过共享从{element.authority.name}获取。",
                }
            )
    return flags, links


def seed_elements(session: Session) -> int:
    """Register the default elements with the first department whose name fits; returns count."""
    made = 0
    for name, variants, fragment in DEFAULT_ELEMENTS:
        if session.scalar(select(DataElement.id).where(DataElement.name == name)):
            continue
        authority = session.scalar(
            select(Department).where(Department.name.contains(fragment)).order_by(Department.code)
        )
        if authority is None:
            continue
        session.add(
            DataElement(name=name, variants=list(variants), authority_department_id=authority.id)
        )
        made += 1
    session.flush()
    return made
