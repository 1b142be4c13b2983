"""Search on the demo catalog (the real Guangxi portal catalog), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from kuaishu.catalog.search import SearchQuery, search
from kuaishu.db import make_engine, make_sessionmaker, transaction
from kuaishu.demo import build_catalog, build_demo
from kuaishu.migrate import upgrade
from kuaishu.pagination import PageRequest
from tests.conftest import fresh_database_url
from tests.samples import sample, uses

pytestmark = [pytest.mark.xdist_group("demo-catalog"), uses(sample("guangxi_portal_catalog.jsonl"))]


@pytest.fixture(scope="module")
def demo(backend: str) -> Iterator[Engine]:
    engine = make_engine(fresh_database_url(backend, "democat"))
    upgrade(engine)
    with transaction(make_sessionmaker(engine)) as session:
        build_demo(session)
        report = build_catalog(session)
        assert report.published > 1100 and report.rejected == 0
    yield engine
    engine.dispose()


def find(engine: Engine, q: str, **filters: str) -> tuple[int, list[str], dict[str, int]]:
    with Session(engine) as session:
        result = search(session, SearchQuery(q=q, filters=filters), PageRequest(1, 10))
        domains = {f["label"]: f["count"] for f in result.facets["domain"]}
        return result.page.total, [e.name for e in result.page.items], domains


def test_population(demo: Engine) -> None:
    total, names, _ = find(demo, "人口")
    assert total >= 3
    assert names[0] == "贵州省常住人口统计表"  # the title holds the query: it ranks first
    assert all("人口" in n for n in names[:3])


def test_environment(demo: Engine) -> None:
    total, names, domains = find(demo, "环境")
    assert total > 50
    assert all("环境" in n for n in names[:5])
    assert max(domains, key=lambda d: domains[d]) == "生态环境"


def test_schools(demo: Engine) -> None:
    total, names, domains = find(demo, "学校")
    assert total > 10 and "特殊教育学校名录" in names
    assert max(domains, key=lambda d: domains[d]) == "教育文化"


def test_enterprises_with_a_facet(demo: Engine) -> None:
    total, names, domains = find(demo, "企业")
    assert total > 100 and all("企业" in n for n in names[:5])
    narrowed, _names, only = find(demo, "企业", domain="市场监管")
    assert narrowed == domains["市场监管"] < total and set(only) == {"市场监管"}


def test_exact_title_ranks_first(demo: Engine) -> None:
    _total, names, _ = find(demo, "特殊教育学校名录")
    assert names[0] == "特殊教育学校名录"


def test_withdrawn_and_unpublished_are_not_found(demo: Engine) -> None:
    total, _names, _ = find(demo, "规模以上工业企业产值月报")  # a draft in the demo
    assert total == 0
