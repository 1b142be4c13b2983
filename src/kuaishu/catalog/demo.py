"""The demo catalog: the real Guangxi portal catalog, plus entries showing every workflow state."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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


def samples_dir() -> Path:
    """Where the sample files live: KUAISHU_SAMPLES_DIR, else ../shared/data/samples."""
    configured = os.environ.get("KUAISHU_SAMPLES_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / "samples"


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


def build_catalog_demo(session: Session, actor: Actor) -> CatalogDemoReport | None:
    """The data elements registry, then the Guangxi catalog when its file is at hand."""
    elements.seed_elements(session)
    path = samples_dir() / "guangxi_portal_catalog.jsonl"
    if not path.exists():
        return None
    return load_guangxi(session, actor, path)
