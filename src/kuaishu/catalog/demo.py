"""The demo catalog: the real Guangxi portal catalog, plus entries showing every workflow state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.cn import uscc

from kuaishu.accounts import services as accounts
from kuaishu.accounts.actor import Actor
from kuaishu.accounts.models import Department, Region
from kuaishu.accounts.roles import LevelKind
from kuaishu.catalog import elements, services
from kuaishu.catalog.enums import OpenType, ResourceClass, ShareMethod, ShareType
from kuaishu.catalog.guangxi import Dataset, load_guangxi_catalog
from kuaishu.catalog.schemas import RevisionIn
from kuaishu.demo_data import sample

GUANGXI = ("450000", "广西壮族自治区")
CITIES = {
    "南宁市": "450100",
    "柳州市": "450200",
    "桂林市": "450300",
    "梧州市": "450400",
    "北海市": "450500",
    "防城港市": "450600",
    "钦州市": "450700",
    "贵港市": "450800",
    "玉林市": "450900",
    "百色市": "451000",
    "贺州市": "451100",
    "河池市": "451200",
    "来宾市": "451300",
    "崇左市": "451400",
}
CITY_CHARS = "123456789ABCDE"  # the 14 cities, in code order
FOURTH_CHARS = "0123456789QRSTUVWXYZ"  # any level
CITY_LEVEL_CHARS = "0QRSTUVWXYZ"  # the 4th character of a city-level department
LAST_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass
class CatalogDemoReport:
    published: int
    rejected: int
    repaired: int
    departments: int


class _Codes:
    """Hands out department codes per region, and matching credit codes."""

    def __init__(self) -> None:
        self.used: dict[str, int] = {}
        self.serial = 0

    def department(self, region_code: str, city_char: str) -> str:
        n = self.used.get(region_code, 0)
        self.used[region_code] = n + 1
        fourth = FOURTH_CHARS if city_char == "0" else CITY_LEVEL_CHARS
        return f"45{city_char}{fourth[n // 36]}{LAST_CHARS[n % 36]}"

    def credit(self, region_code: str) -> str:
        self.serial += 1
        body = f"11{region_code}MB{self.serial:07d}"
        return body + uscc.calc_check_digit(body)


def _regions(session: Session, actor: Actor) -> dict[str, Region]:
    found = {r.code: r for r in session.scalars(select(Region).where(Region.code.like("45%")))}
    if GUANGXI[0] not in found:
        found[GUANGXI[0]] = accounts.create_region(
            session, actor=actor, code=GUANGXI[0], name=GUANGXI[1], level=LevelKind.PROVINCE
        )
    for name, code in CITIES.items():
        if code not in found:
            found[code] = accounts.create_region(
                session,
                actor=actor,
                code=code,
                name=name,
                level=LevelKind.CITY,
                parent_id=found[GUANGXI[0]].id,
            )
    return found


def _department_for(
    session: Session,
    actor: Actor,
    name: str,
    regions: dict[str, Region],
    codes: _Codes,
    cache: dict[str, Department],
) -> Department:
    if name in cache:
        return cache[name]
    city = next((c for c in CITIES if name.startswith(c)), None)
    region = regions[CITIES[city]] if city else regions[GUANGXI[0]]
    city_char = CITY_CHARS[list(CITIES).index(city)] if city else "0"
    cache[name] = accounts.create_department(
        session,
        actor=actor,
        code=codes.department(region.code, city_char),
        name=name,
        credit_code=codes.credit(region.code),
        region_id=region.id,
    )
    return cache[name]


def _revision(dataset: Dataset) -> RevisionIn:
    return RevisionIn(
        name=dataset.name[:200],
        summary=dataset.summary[:4000],
        resource_class=ResourceClass.DEPARTMENT,
        resource_format=dataset.resource_format,
        share_type=ShareType.UNCONDITIONAL,
        share_methods=[ShareMethod.API, ShareMethod.FILE],
        open_type=OpenType.UNCONDITIONAL,
        update_cycle=dataset.update_cycle,
        domain=dataset.domain,
        keywords=[k for k in (dataset.topic, dataset.industry) if k],
        licence="CC BY 4.0",
        source_systems=["广西公共数据开放平台"],
    )


def load_guangxi(session: Session, actor: Actor, path: Path) -> CatalogDemoReport:
    """Publish every repairable Guangxi dataset under a department of its own."""
    load = load_guangxi_catalog(path)
    regions = _regions(session, actor)
    codes, cache = _Codes(), dict[str, Department]()
    for dataset in load.datasets:
        department = _department_for(session, actor, dataset.department, regions, codes, cache)
        services.import_published(
            session,
            actor=actor,
            department_id=department.id,
            data=_revision(dataset),
            published=dataset.published,
            updated=dataset.updated,
        )
    return CatalogDemoReport(len(load.datasets), len(load.rejected), load.repaired, len(cache))


def build_catalog_demo(session: Session, actor: Actor) -> CatalogDemoReport:
    """The data elements registry, the workflow examples, then the shipped Guangxi catalog."""
    elements.seed_elements(session)
    build_workflow_examples(session)
    return load_guangxi(session, actor, sample("guangxi_portal_catalog.jsonl"))


def _people(session: Session) -> dict[str, Actor]:
    from kuaishu.accounts.auth import actor_for
    from kuaishu.accounts.services import get_user_by_username

    found = {}
    for username in ("cataloguer", "reviewer", "officer"):
        user = get_user_by_username(session, username)
        if user is not None:
            found[username] = actor_for(user, auth_method="cli")
    return found


def _item(name: str, code: str, length: int | None = None, key: bool = False) -> dict[str, Any]:
    return {"name": name, "type_code": code, "length": length, "is_key": key}


def build_workflow_examples(session: Session) -> int:
    """Entries of the statistics bureau in every state, made by the demo users themselves."""
    people = _people(session)
    department = session.scalar(select(Department).where(Department.code == "52006"))
    if len(people) < 3 or department is None:
        return 0
    writer, reviewer = people["cataloguer"], people["reviewer"]
    base = {
        "resource_format": "spreadsheet",
        "share_methods": ["api", "file"],
        "update_cycle": "yearly",
        "contact": "0851-86990000",
        "licence": "CC BY 4.0",
    }
    examples: list[tuple[str, dict[str, Any]]] = [
        (
            "published",
            {
                **base,
                "name": "贵州省常住人口统计表",
                "summary": "全省及各市州年末常住人口、城镇化率",
                "resource_class": "1",
                "subject_code": "01",
                "category_code": "001",
                "share_type": "unconditional",
                "open_type": "unconditional",
                "domain": "社保就业",
                "keywords": ["人口", "城镇化"],
                "items": [
                    _item("行政区划代码", "C", 12, True),
                    _item("地区", "C", 50),
                    _item("年末常住人口", "N"),
                    _item("城镇化率", "F"),
                ],
            },
        ),
        (
            "published",
            {
                **base,
                "name": "统计名录库企业基本信息",
                "summary": "统计调查单位名录中的企业基本情况",
                "resource_class": "3",
                "share_type": "conditional",
                "share_conditions": "用于统计调查和经济分析",
                "share_basis": "《统计法》第二十五条",
                "open_type": "on_application",
                "open_basis": "《统计法实施条例》第三十条",
                "open_conditions": "仅开放汇总后的行业分布",
                "domain": "市场监管",
                "keywords": ["企业", "名录"],
                "items": [
                    _item("统一社会信用代码", "C", 18, True),
                    _item("单位名称", "C", 200),
                    _item("行业代码", "C", 4),
                    _item("从业人员数", "I"),
                ],
            },
        ),
        (
            "submitted",
            {
                **base,
                "name": "就业人员身份核验表",
                "summary": "劳动力调查样本人员的身份核验信息",
                "resource_class": "3",
                "share_type": "conditional",
                "share_conditions": "仅限人社部门核验就业状态",
                "share_basis": "《就业促进法》第十九条",
                "open_type": "not_open",
                "open_basis": "《个人信息保护法》第十三条",
                "domain": "社保就业",
                "update_cycle": "monthly",
                "items": [
                    _item("身份证号", "C", 18, True),
                    _item("姓名", "C", 50),
                    _item("就业状态", "C", 10),
                ],
            },
        ),
        (
            "draft",
            {
                **base,
                "name": "规模以上工业企业产值月报",
                "summary": "",
                "resource_class": "3",
                "domain": "工业农业",
                "update_cycle": "monthly",
                "items": [],
            },
        ),
    ]
    for state, body in examples:
        entry = services.create_entry(
            session, actor=writer, department_id=department.id, data=RevisionIn.model_validate(body)
        )
        if state == "draft":
            continue
        services.submit(session, entry.id, actor=writer)
        if state == "published":
            services.approve(
                session,
                entry.id,
                actor=reviewer,
                flag_decision="引用键，登记信息以权威部门共享数据为准",
            )
            services.publish(session, entry.id, actor=reviewer)
    return len(examples)
