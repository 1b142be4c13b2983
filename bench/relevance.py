"""Catalog search relevance on the demo catalog: precision@5 and nDCG@10 on judged queries.

    .venv/bin/python bench/relevance.py [--postgres URL] [--per-query]

Builds the catalog `kuaishu demo` shows (the Guangxi portal's 1,149 datasets, the workflow
examples, and the entries of the demo's sample files, published without loading their data),
runs each query below through `catalog.search.search` and scores its first ten results against
the titles judged relevant. The judgements were written by reading the catalog's titles, not by
running the engine: an entry is relevant when a person typing the query would want it (a list of
hospitals for 医院, any list of schools or kindergartens for 学校). Relevance is binary; an entry
counts as relevant when its title is judged so (some titles are published by several
departments, and each of them counts). The ideal ranking for nDCG holds every published entry
whose title is judged relevant.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
from collections import Counter
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuaishu.accounts.models import Department
from kuaishu.catalog.models import CatalogEntry
from kuaishu.catalog.search import SearchQuery, search
from kuaishu.catalog.services import import_published
from kuaishu.collect import demo as data_demo
from kuaishu.db import make_engine, make_sessionmaker, transaction
from kuaishu.demo import CLI, build_catalog, build_demo
from kuaishu.migrate import upgrade
from kuaishu.pagination import PageRequest
from kuaishu.web.app import load_domains

HOSPITALS = {
    "三级医院信息",
    "医疗机构信息",
    "田东县医疗机构信息",
    "岑溪市辖区内非公立医院信息",
    "玉林市市本级医保定点医院名单",
    "玉林市市本级医保定点医院名单（2020年10月）",
    "田阳区医保定点医疗机构名单",
    "百色市田阳区医保定点医疗机构名册（2020年）",
    "田阳区2020年医疗机构信息表（脱敏）",
    "医疗机构执业登记信息",
    "医疗机构执业登记（人体器官移植除外）信息",
    "医疗机构执业登记（人体器官移植除外）",
    "医疗机构注册登记（人体器官移植除外）",
    "田东县医疗机构注册登记（人体器官移植除外）",
    "田阳区医疗机构注册登记（人体器官移植除外）",
}
KINDERGARTENS = {
    "乐业县民办幼儿园名录",
    "多元普惠幼儿园名单",
    "示范性幼儿园名单",
    "自治区示范幼儿园",
    "西林县民族幼儿园新生花名册",
}
JUDGED: dict[str, set[str]] = {
    "医院": HOSPITALS,
    "学校": {
        "中职学校信息",
        "乐业县公办学校名录",
        "全市学校基本信息_基教分校一览表",
        "普通高中学校名录",
        "特殊教育学校名录",
        "田阳区2019年中小学学校名录信息",
        "田阳区学校名录",
        "藤县中小学学校机构信息",
        "示范特色中职学校、星级中职学校名录",
        "全国普通高等学校名单",
        "教育机构登记信息",
        "学校收费标准收取范围",
        *KINDERGARTENS,
    },
    "幼儿园": KINDERGARTENS,
    "新冠疫情": {"新冠肺炎疫情每日统计"},
    "人口": {"贵州省常住人口统计表", "分省年度人口抽样调查数据"},
    "空气质量": {
        "县级空气站点信息",
        "县级空气站点实时数据",
        "广西空气质量预报之城市预报信息",
        "百色市空气站点数据",
        "空气质量（空气城市小时值）",
        "全国空气质量监测点位",
    },
    "养老机构": {"德保养老机构名单", "藤县养老机构名单"},
    "药店": {
        "乐业县各药店基本信息",
        "玉州区定点药店清单",
        "玉林市基本医疗保险特药购药定点零售药店名单",
        "玉林市基本医疗保险特药购药定点零售药店名单（2020年9月）",
        "田阳区医保定点药店名单",
        "百色市田阳区医保定点药店名册（2020年）",
        "药品零售企业许可",
    },
    "公交": {"公交企业名录", "公交站牌信息"},
    "旅游景区": {"贵港市A级旅游景区名录表", "贵港市星级乡村旅游区一览表"},
    "企业基本信息": {
        "企业基本信息",
        "灵川县市场监督管理局企业基本信息",
        "荔浦市市场监督管理局企业基本信息",
        "阳朔县市场监督管理局企业基本信息",
        "隆林县企业基本信息",
        "统计名录库企业基本信息",
    },
    "低保": {
        "乐业县低保人员信息",
        "百色市田阳区2020年9月享受低保待遇花名册（脱敏）",
        "田阳区最低生活保障救助资金给付",
    },
    "就业": {
        "2019年城镇新增就业人员信息",
        "2019年田东县失业人员实现再就业",
        "城镇新增就业人员信息",
        "失业人员实现再就业信息",
        "应届毕业生初次就业总体信息数据1",
        "田东失业人员实现再就业信息",
    },
}


def build(session: Session) -> None:
    build_demo(session)
    build_catalog(session)
    for dataset in data_demo.DATASETS:
        department = session.scalar(select(Department).where(Department.code == dataset.department))
        if department is not None:
            import_published(
                session,
                actor=CLI,
                department_id=department.id,
                data=data_demo._revision(dataset),
            )


def dcg(gains: list[int]) -> float:
    return sum(g / math.log2(rank + 2) for rank, g in enumerate(gains))


def score(session: Session, published: Counter[str]) -> dict[str, tuple[float, float, list[str]]]:
    """Per query: precision@5, nDCG@10 and the first five titles."""
    scores = {}
    for query, relevant in JUDGED.items():
        result = search(session, SearchQuery(q=query), PageRequest(1, 10))
        names = [e.name for e in result.page.items]
        gains = [1 if n in relevant else 0 for n in names]
        ideal = dcg([1] * min(10, sum(published[t] for t in relevant)))
        scores[query] = (sum(gains[:5]) / 5, dcg(gains) / ideal if ideal else 0.0, names[:5])
    return scores


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default="", help="an empty PostgreSQL database URL")
    parser.add_argument("--per-query", action="store_true", help="also each query's top five")
    args = parser.parse_args()
    load_domains()  # every domain's policies, as the command line registers them
    with tempfile.TemporaryDirectory() as folder:
        urls = {"sqlite": f"sqlite:///{Path(folder) / 'relevance.db'}"}
        if args.postgres:
            urls["postgresql"] = args.postgres
        for backend, url in urls.items():
            engine = make_engine(url)
            upgrade(engine)
            factory = make_sessionmaker(engine)
            with transaction(factory) as session:
                build(session)
            with factory() as session:
                published = Counter(session.scalars(select(CatalogEntry.name)))
                scores = score(session, published)
            engine.dispose()
            p5 = statistics.mean(s[0] for s in scores.values())
            ndcg = statistics.mean(s[1] for s in scores.values())
            best = statistics.mean(
                min(5, sum(published[t] for t in relevant)) / 5 for relevant in JUDGED.values()
            )
            print(
                f"{backend}: {len(JUDGED)} queries: P@5 {p5:.2f} (at most {best:.2f}: some queries "
                f"have fewer than five relevant entries), nDCG@10 {ndcg:.2f}"
            )
            if args.per_query:
                for query, (p, n, top) in scores.items():
                    print(f"  {query}\tP@5 {p:.2f}\tnDCG@10 {n:.2f}\t{' | '.join(top)}")


if __name__ == "__main__":
    main()
