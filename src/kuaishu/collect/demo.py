"""Demo data: the sample files shipped in ``kuaishu.demo_data``, each behind a published catalog entry,
loaded as versions.

The files are messy on purpose (GBK, preambles, footnotes, merged titles, sub-headings, a ``前50名``
in a number column): the demo shows them loaded, with the rows that do not fit quarantined.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.accounts.actor import Actor
from kuaishu.accounts.models import Department
from kuaishu.catalog.models import CatalogEntry
from kuaishu.catalog.schemas import DataItemIn, RevisionIn
from kuaishu.catalog.services import import_published
from kuaishu.collect import services
from kuaishu.collect.enums import SourceKind
from kuaishu.collect.jobs import InlineRunner
from kuaishu.collect.models import LoadRun
from kuaishu.db import transaction
from kuaishu.demo_data import sample

YEARS = [f"{year}年" for year in range(2025, 2005, -1)]


@dataclass(frozen=True)
class DemoDataset:
    file: str
    department: str
    name: str
    summary: str
    domain: str
    cycle: str
    items: tuple[tuple[str, str, bool], ...]  # name, type code, key
    mapping: tuple[tuple[str, str], ...] = ()  # item → source column, where names differ
    keywords: tuple[str, ...] = ()
    share: tuple[str, str, str] = ("unconditional", "", "")  # share type, conditions, basis


DATASETS = (
    DemoDataset(
        "nbs_province_population_gbk.csv",
        "52006",
        "分省年度人口抽样调查数据",
        "国家统计局分省年度数据：人口数（人口抽样调查），最近 20 年。",
        "社保就业",
        "yearly",
        (("地区", "C", True), *((year, "I", False) for year in YEARS)),
        keywords=("人口", "抽样调查", "统计年鉴"),
        share=(
            "conditional",
            "仅用于社会保障、就业政策的测算与资格核验，不得向第三方提供",
            "《贵州省政务数据资源管理暂行办法》第二十二条",
        ),
    ),
    DemoDataset(
        "cnemc_stations_gbk.csv",
        "52008",
        "全国空气质量监测点位",
        "国家空气质量监测网监测点位：编码、名称、城市、经纬度、是否对照点。",
        "生态环境",
        "irregular",
        (
            ("监测点编码", "C", True),
            ("监测点名称", "C", False),
            ("城市", "C", False),
            ("经度", "N", False),
            ("纬度", "N", False),
            ("对照点", "C", False),
            ("省级行政区", "C", False),
            ("地级行政区", "C", False),
        ),
        keywords=("空气质量", "监测点", "环境"),
    ),
    DemoDataset(
        "moe_universities_2017.xls",
        "52102",
        "全国普通高等学校名单",
        "教育部公布的全国普通高等学校名单（2017 年），按省份分组。",
        "教育文化",
        "yearly",
        (
            ("学校标识码", "C", True),
            ("学校名称", "C", False),
            ("主管部门", "C", False),
            ("所在地", "C", False),
            ("办学层次", "C", False),
            ("备注", "C", False),
            ("所在省份", "C", False),
        ),
        mapping=(("所在省份", "分组"),),
        keywords=("学校", "高校", "教育"),
    ),
    DemoDataset(
        "shandong_admission_2021.xlsx",
        "52102",
        "山东省普通类一批投档情况（2021）",
        "2021 年山东省普通类常规批第一次志愿投档情况：专业、院校、计划数、最低位次。",
        "教育文化",
        "yearly",
        (
            ("专业代号及名称", "C", False),
            ("院校代号及名称", "C", False),
            ("投档计划数", "I", False),
            ("投档最低位次", "I", False),
        ),
        keywords=("高考", "投档", "学校"),
    ),
    DemoDataset(
        "covid_daily_24k.csv",
        "52007",
        "新冠肺炎疫情每日统计",
        "各地卫生健康委员会公布的每日确诊、疑似、治愈、死亡人数（2019-12-01 至 2020-03-09）。",
        "医疗卫生",
        "daily",
        (
            ("日期", "D", False),
            ("国家或地区", "C", False),
            ("国家代码", "C", False),
            ("省份", "C", False),
            ("省份代码", "C", False),
            ("城市", "C", False),
            ("城市代码", "C", False),
            ("确诊", "I", False),
            ("疑似", "I", False),
            ("治愈", "I", False),
            ("死亡", "I", False),
        ),
        mapping=(
            ("日期", "date"),
            ("国家或地区", "country"),
            ("国家代码", "countryCode"),
            ("省份", "province"),
            ("省份代码", "provinceCode"),
            ("城市", "city"),
            ("城市代码", "cityCode"),
            ("确诊", "confirmed"),
            ("疑似", "suspected"),
            ("治愈", "cured"),
            ("死亡", "dead"),
        ),
        keywords=("疫情", "卫生", "统计"),
    ),
)


@dataclass
class DataDemoReport:
    loaded: list[tuple[str, int, int]]  # entry name, rows kept, rows quarantined
    failed: list[tuple[str, str]]  # entry name, error


def _revision(dataset: DemoDataset) -> RevisionIn:
    return RevisionIn.model_validate(
        {
            "name": dataset.name,
            "summary": dataset.summary,
            "resource_class": "3",
            "resource_format": "spreadsheet",
            "share_type": dataset.share[0],
            "share_conditions": dataset.share[1],
            "share_basis": dataset.share[2],
            "share_methods": ["api", "file"],
            "open_type": "unconditional",
            "update_cycle": dataset.cycle,
            "domain": dataset.domain,
            "keywords": list(dataset.keywords),
            "contact": "0851-8699XXXX",
            "items": [
                DataItemIn.model_validate({"name": n, "type_code": t, "is_key": k})
                for n, t, k in dataset.items
            ],
        }
    )


def _queue(session: Session, actor: Actor, dataset: DemoDataset) -> int | None:
    source_file = sample(dataset.file)
    department = session.scalar(select(Department).where(Department.code == dataset.department))
    if department is None:
        return None
    if session.scalar(select(CatalogEntry.id).where(CatalogEntry.name == dataset.name)):
        return None
    entry = import_published(
        session, actor=actor, department_id=department.id, data=_revision(dataset)
    )
    source = services.create_source(
        session,
        actor=actor,
        entry=entry,
        name=f"样例文件 {dataset.file}",
        kind=SourceKind.FILE,
        config={},
        mapping=dict(dataset.mapping),
    )
    copy = Path(tempfile.mkdtemp(prefix="kuaishu-demo-")) / dataset.file
    shutil.copyfile(source_file, copy)
    run = services.queue_load(
        session, actor=actor, entry=entry, source=source, upload=copy, filename=dataset.file
    )
    shutil.rmtree(copy.parent, ignore_errors=True)
    return run.id


def build_data_demo(factory: sessionmaker[Session], actor: Actor) -> DataDemoReport:
    """Publish an entry per sample file and load it; a file that fails is reported, not fatal."""
    report = DataDemoReport(loaded=[], failed=[])
    runner = InlineRunner(factory)
    for dataset in DATASETS:
        with transaction(factory) as session:
            run_id = _queue(session, actor, dataset)
        if run_id is None:
            continue
        runner.submit(run_id)
        with transaction(factory) as session:
            run = session.get(LoadRun, run_id)
            assert run is not None
            if run.version_id:
                report.loaded.append((dataset.name, run.rows_loaded, run.rows_quarantined))
            else:
                report.failed.append((dataset.name, run.error_message or ""))
    return report
