"""Catalog search finds what a person means: synonyms, segmented queries, English fields, and
the best match first (title, then description, then keywords and domain) — on both backends."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kuaishu.catalog.models import SearchTerm
from kuaishu.catalog.search import SearchQuery, search
from kuaishu.db import make_engine, make_sessionmaker, transaction
from kuaishu.migrate import alembic_config, upgrade
from kuaishu.pagination import PageRequest
from tests import factories as f
from tests.conftest import fresh_database_url


def found(db: Session, q: str) -> list[str]:
    return [e.name for e in search(db, SearchQuery(q=q), PageRequest(1, 20)).page.items]


def publish(db: Session, *names: str) -> None:
    dept = f.department(db)
    for name in names:
        f.published_entry(db, dept=dept, name=name)


def test_hospital_and_medical_institution_find_each_other(db: Session) -> None:
    publish(db, "医疗机构名录", "医院床位统计", "常住人口统计表")
    assert set(found(db, "医院")) == {"医疗机构名录", "医院床位统计"}
    assert set(found(db, "医疗机构")) == {"医疗机构名录", "医院床位统计"}


def test_school_finds_primary_schools_and_kindergartens_but_not_the_reverse(db: Session) -> None:
    publish(db, "中小学名录", "民办幼儿园名录", "特殊教育学校名录", "公交站牌信息")
    assert set(found(db, "学校")) == {"中小学名录", "民办幼儿园名录", "特殊教育学校名录"}
    assert found(db, "幼儿园") == ["民办幼儿园名录"]


def test_covid_names_find_each_other(db: Session) -> None:
    publish(db, "新冠肺炎疫情每日统计", "新冠疫情防控物资储备", "流感监测周报")
    assert set(found(db, "新冠疫情")) == {"新冠肺炎疫情每日统计", "新冠疫情防控物资储备"}
    assert set(found(db, "新冠肺炎疫情")) == {"新冠肺炎疫情每日统计", "新冠疫情防控物资储备"}


def test_a_query_is_cut_into_words(db: Session) -> None:
    publish(db, "医疗机构床位数统计", "中小学名录", "医疗器械经营许可")
    # 院床 straddles two words: it is not asked for, and 医院 finds 医疗机构.
    assert found(db, "医院床位") == ["医疗机构床位数统计"]
    # 的 is a stop word; 学校 finds 中小学.
    assert found(db, "学校的名录") == ["中小学名录"]


def test_title_outranks_description_outranks_keywords(db: Session) -> None:
    dept = f.department(db)
    # Published first to last: the order of import is the reverse of the order of relevance.
    f.published_entry(db, dept=dept, name="三级医院名单", summary="全市三级医疗单位")
    f.published_entry(db, dept=dept, name="公共场所卫生许可", summary="含医院在内的许可信息")
    f.published_entry(db, dept=dept, name="放射诊疗许可", summary="许可信息", keywords=["医院"])
    assert found(db, "医院") == ["三级医院名单", "公共场所卫生许可", "放射诊疗许可"]


def test_a_synonym_in_the_title_outranks_the_word_in_a_description(db: Session) -> None:
    dept = f.department(db)
    f.published_entry(db, dept=dept, name="医疗机构名录", summary="名录")
    f.published_entry(db, dept=dept, name="公共场所卫生许可", summary="含医院在内的许可信息")
    assert found(db, "医院") == ["医疗机构名录", "公共场所卫生许可"]


def test_english_fields_are_searchable(db: Session) -> None:
    dept = f.department(db)
    f.published_entry(
        db,
        dept=dept,
        name="Purchase Card Transactions",
        summary="Birmingham City Council spending by purchase card",
        keywords=["procurement"],
    )
    f.published_entry(db, dept=dept, name="采购卡交易明细", summary="Monthly card statements")
    assert found(db, "transactions") == ["Purchase Card Transactions"]
    assert found(db, "Birmingham council") == ["Purchase Card Transactions"]
    assert found(db, "procurement") == ["Purchase Card Transactions"]
    assert found(db, "card") == ["Purchase Card Transactions", "采购卡交易明细"]


def test_upgrading_rebuilds_an_existing_index_with_synonyms(backend: str) -> None:
    """A catalog indexed before the synonym list is found by synonyms once migrated."""
    engine = make_engine(fresh_database_url(backend, "searchterms"))
    upgrade(engine)
    config = alembic_config()
    script = ScriptDirectory.from_config(config)
    ours = next(r for r in script.walk_revisions() if r.path.endswith("search_terms_reweighted.py"))
    factory = make_sessionmaker(engine)
    with transaction(factory) as session:
        publish(session, "医疗机构名录", "常住人口统计表")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, str(ours.down_revision))
    with transaction(factory) as session:
        session.execute(delete(SearchTerm).where(SearchTerm.term == "医院"))  # as indexed before
        assert found(session, "医院") == []
    upgrade(engine)
    with factory() as session:
        assert found(session, "医院") == ["医疗机构名录"]
        assert session.scalar(select(func.max(SearchTerm.weight))) == 4
    engine.dispose()
