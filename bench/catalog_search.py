"""Catalog search benchmark: 100,000 published entries, 20 Chinese queries with facets.

    .venv/bin/python bench/catalog_search.py [--entries 100000] [--postgres URL] [--per-query]

Builds the entries straight into the tables (their search terms and weights computed by the
functions the platform indexes with), then times each query (results page + total + all seven
facets) 10 times and prints p50 and p95 per backend, and per query with ``--per-query``. Target:
p95 ≤ 50 ms on both.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from kuaishu.accounts.models import Department, Region
from kuaishu.catalog.enums import (
    DOMAINS,
    EntryStatus,
    OpenType,
    ResourceClass,
    ResourceFormat,
    ShareType,
    UpdateCycle,
)
from kuaishu.catalog.models import CatalogEntry, SearchTerm
from kuaishu.catalog.search import SearchQuery, entry_fields, search, weighted_terms
from kuaishu.db import make_engine, make_sessionmaker, utcnow
from kuaishu.migrate import upgrade
from kuaishu.pagination import PageRequest

SUBJECTS = [
    "常住人口",
    "户籍人口",
    "企业登记",
    "个体工商户",
    "学校名录",
    "幼儿园",
    "医疗机构",
    "药品零售",
    "空气质量",
    "水质监测",
    "环境影响评价",
    "道路运输",
    "公交线路",
    "社会保险",
    "就业登记",
    "最低生活保障",
    "不动产登记",
    "建设工程",
    "行政许可",
    "行政处罚",
    "气象观测",
    "地质灾害",
    "农业补贴",
    "税务信用",
    "科技项目",
    "专利",
    "文物保护",
    "图书馆",
    "体育场馆",
    "养老机构",
]
FORMS = ["统计表", "名录", "信息", "明细", "汇总表", "登记信息", "公示", "年报", "台账", "清单"]
PLACES = [
    "全省",
    "贵阳市",
    "遵义市",
    "六盘水市",
    "安顺市",
    "毕节市",
    "铜仁市",
    "黔东南州",
    "黔南州",
    "黔西南州",
]
QUERIES = [
    "人口",
    "常住人口",
    "企业",
    "企业登记信息",
    "学校",
    "环境",
    "空气质量",
    "医疗",
    "社会保险",
    "就业",
    "贵阳市",
    "不动产",
    "行政处罚",
    "气象",
    "农业",
    "税务信用",
    "养老",
    "道路运输",
    "专利",
    "文物",
]


def build(session: Session, count: int) -> None:
    rng = random.Random(7)
    region = Region(code="520000", name="贵州省", level="province")
    session.add(region)
    session.flush()
    departments = []
    for n in range(60):
        department = Department(
            code=f"520{n // 10}{n % 10}",
            name=f"贵州省第{n}厅局",
            credit_code=f"BENCH{n:013d}",
            region_id=region.id,
        )
        session.add(department)
        departments.append(department)
    session.flush()
    batch_entries, batch_terms = [], []
    now = utcnow()
    for n in range(1, count + 1):
        name = f"{rng.choice(PLACES)}{rng.choice(SUBJECTS)}{rng.choice(FORMS)}"
        summary = f"{name}，含{rng.choice(SUBJECTS)}与{rng.choice(SUBJECTS)}相关数据"
        department = departments[n % len(departments)]
        batch_entries.append(
            {
                "id": n,
                "code": f"3000000/{department.code}{n:07d}",
                "department_id": department.id,
                "status": EntryStatus.PUBLISHED,
                "name": name,
                "summary": summary,
                "resource_class": rng.choice(list(ResourceClass)),
                "domain": rng.choice(DOMAINS),
                "share_type": rng.choice(list(ShareType)),
                "open_type": rng.choice(list(OpenType)),
                "resource_format": rng.choice(list(ResourceFormat)),
                "update_cycle": rng.choice(list(UpdateCycle)),
                "keywords_text": "",
                "published_at": now,
                "updated_at": now,
                "created_at": now,
            }
        )
        found = weighted_terms(entry_fields(name, summary, [department.name]))
        batch_terms += [{"entry_id": n, "term": t, "weight": w} for t, w in found.items()]
        if n % 5000 == 0:
            session.execute(insert(CatalogEntry), batch_entries)
            session.execute(insert(SearchTerm), batch_terms)
            batch_entries, batch_terms = [], []
    session.commit()


def percentile(timings: list[float], share: float) -> float:
    ordered = sorted(timings)
    return ordered[max(0, int(len(ordered) * share) - 1)]


def measure(
    url: str, count: int, *, reuse: bool = False
) -> tuple[float, float, dict[str, int], dict[str, list[float]]]:
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    if not reuse:
        upgrade(engine)
        with factory() as session:
            build(session, count)
    with factory() as session:
        session.execute(text("ANALYZE"))
        session.commit()
    per_query: dict[str, list[float]] = {query: [] for query in QUERIES}
    totals: dict[str, int] = {}
    with factory() as session:
        for query in QUERIES:  # warm up
            search(session, SearchQuery(q=query), PageRequest(1, 20))
        for _ in range(10):
            for query in QUERIES:
                start = time.perf_counter()
                result = search(session, SearchQuery(q=query), PageRequest(1, 20))
                per_query[query].append((time.perf_counter() - start) * 1000)
                totals[query] = result.page.total
    engine.dispose()
    timings = [t for ts in per_query.values() for t in ts]
    return statistics.median(timings), percentile(timings, 0.95), totals, per_query


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--postgres", default="", help="an empty PostgreSQL database URL")
    parser.add_argument("--sqlite", default="", help="SQLite file to build (or reuse)")
    parser.add_argument("--reuse", action="store_true", help="query databases built before")
    parser.add_argument("--per-query", action="store_true", help="also p50/p95 of each query")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        urls = {"sqlite": f"sqlite:///{args.sqlite or Path(folder) / 'bench.db'}"}
        if args.postgres:
            urls["postgresql"] = args.postgres
        for backend, url in urls.items():
            p50, p95, totals, per_query = measure(url, args.entries, reuse=args.reuse)
            print(
                f"{backend}: {args.entries} entries, 20 queries x10 with 7 facets: "
                f"p50 {p50:.1f} ms, p95 {p95:.1f} ms; matches for 人口={totals['人口']}, "
                f"企业={totals['企业']}, 学校={totals['学校']}"
            )
            if args.per_query:
                for query, timings in per_query.items():
                    print(
                        f"  {query}\t{totals[query]} matches\t"
                        f"p50 {statistics.median(timings):.1f} ms\t"
                        f"p95 {percentile(timings, 0.95):.1f} ms"
                    )


if __name__ == "__main__":
    main()
