"""Chinese full-text search over published entries, portable across SQLite and PostgreSQL.

Text is cut into character unigrams and bigrams (and whole ASCII words), with the words of the
synonym list (synonyms.txt) it holds adding their synonyms' terms; each term is stored with the
weight of the field it came from (title 4, description 2, the rest 1). A query is segmented into
words (jieba, the synonym words added to its dictionary) and an entry matches when it holds every
term of the words. Exact titles rank first, then titles containing the query, then the sum of the
weights of the query's terms, then shorter titles. See docs/decisions/0008-catalog-search.md.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import jieba
from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    any_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from kuaishu.accounts.models import Department
from kuaishu.catalog.enums import LABELS, EntryStatus, OpenType, ShareType
from kuaishu.catalog.models import CatalogEntry, CatalogRevision, SearchTerm
from kuaishu.pagination import Paged, PageRequest

_RUNS = re.compile(r"[\u3400-\u9fff]+|[A-Za-z0-9]+")
PAGE = -1  # the facet number that marks the page's own rows in the search statement
FACETS = (
    "domain",
    "department_id",
    "resource_class",
    "share_type",
    "open_type",
    "resource_format",
    "update_cycle",
)
TITLE, DESCRIPTION, OTHER = 4, 2, 1  # stored weights: where in the entry a term was found
# Words that carry no subject in a query (关于学校的数据 asks for 学校), kept as data beside the
# synonym list (stopwords.txt); a query of nothing else is taken as typed.
STOP_WORDS = frozenset(
    resources.files("kuaishu.catalog").joinpath("stopwords.txt").read_text("utf-8").split()
)


@dataclass(frozen=True)
class Synonyms:
    """What each word of the list brings with it: the words an entry holding it is found by."""

    implied: dict[str, frozenset[str]]

    @property
    def words(self) -> frozenset[str]:
        return frozenset(self.implied) | frozenset(w for ws in self.implied.values() for w in ws)


def parse_synonyms(text: str) -> Synonyms:
    """``A = B = C`` (each finds the others) and ``A > B C`` (B or C is also found by A)."""
    implied: dict[str, set[str]] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if ">" in line:
            broader, narrower = line.split(">", 1)
            for word in narrower.split():
                implied.setdefault(word, set()).update(broader.split())
        elif "=" in line:
            group = [w.strip() for w in line.split("=") if w.strip()]
            for word in group:
                implied.setdefault(word, set()).update(w for w in group if w != word)
    return Synonyms({word: frozenset(others) for word, others in implied.items()})


@cache
def synonyms() -> Synonyms:
    """The list shipped with the package (kuaishu/catalog/synonyms.txt)."""
    return parse_synonyms(
        resources.files("kuaishu.catalog").joinpath("synonyms.txt").read_text("utf-8")
    )


@cache
def _segmenter() -> jieba.Tokenizer:
    """jieba's dictionary, with every word of the synonym list kept whole."""
    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    for word in sorted(synonyms().words):
        tokenizer.add_word(word, freq=100_000)
    return tokenizer


def terms(text: str) -> set[str]:
    """Unigrams and bigrams of Chinese runs, lower-cased ASCII words."""
    found: set[str] = set()
    for run in _RUNS.findall(text):
        if run.isascii():
            found.add(run.lower()[:16])
            continue
        found.update(run)
        found.update(run[i : i + 2] for i in range(len(run) - 1))
    return found


def synonym_terms(text: str) -> set[str]:
    """The terms of the synonyms of the list's words found in ``text`` (segmented, so a word is
    found inside a longer one: 医院 in 人民医院, 中小学 in 中小学校)."""
    if not _RUNS.search(text):
        return set()
    implied = synonyms().implied
    found: set[str] = set()
    for word in set(_segmenter().lcut_for_search(text)) & implied.keys():
        for other in implied[word]:
            found |= terms(other)
    return found


def weighted_terms(fields: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Each term of the fields (and of their words' synonyms) with the weight of the heaviest
    field holding it."""
    found: dict[str, int] = {}
    for text, weight in fields:
        for term in terms(text) | synonym_terms(text):
            if found.get(term, 0) < weight:
                found[term] = weight
    return found


def entry_fields(name: str, summary: str, rest: Sequence[str]) -> list[tuple[str, int]]:
    """The searchable text of an entry and the weight of each part."""
    return [(name, TITLE), (summary, DESCRIPTION), (" ".join(rest), OTHER)]


def query_terms(text: str) -> set[str]:
    """The fewest terms that pin a query down: the query cut into words, and each Chinese word's
    bigrams (the character itself for a one-character word) and each ASCII word; pairs that
    straddle two words are not asked for (医院床位 finds 医疗机构床位), nor are stop words."""
    words = [w for w in _segmenter().lcut(text) if w.strip() and w not in STOP_WORDS]
    found: set[str] = set()
    for run in (run for word in words or [text] for run in _RUNS.findall(word)):
        if run.isascii():
            found.add(run.lower()[:16])
        elif len(run) == 1:
            found.add(run)
        else:
            found.update(run[i : i + 2] for i in range(len(run) - 1))
    return found


def index_entry(session: Session, entry: CatalogEntry, revision: CatalogRevision) -> None:
    """Replace the entry's terms with those of ``revision`` (the one now in force)."""
    unindex_entry(session, entry)
    department = session.get(Department, entry.department_id)
    rest = [
        *revision.keywords,
        *(i.name for i in revision.items),
        *(i.description for i in revision.items),
        department.name if department else "",
        revision.domain or "",
    ]
    found = weighted_terms(entry_fields(revision.name, revision.summary, rest))
    rows = [{"entry_id": entry.id, "term": t, "weight": w} for t, w in found.items()]
    if rows:
        session.execute(insert(SearchTerm), rows)


def unindex_entry(session: Session, entry: CatalogEntry) -> None:
    session.execute(delete(SearchTerm).where(SearchTerm.entry_id == entry.id))


@dataclass(frozen=True)
class SearchQuery:
    q: str = ""
    view: str = "all"  # all | share | open
    filters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchResult:
    page: Paged[CatalogEntry]
    facets: dict[str, list[dict[str, Any]]]


def _conditions(query: SearchQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [CatalogEntry.status == EntryStatus.PUBLISHED]
    if query.view == "share":
        conditions.append(CatalogEntry.share_type != ShareType.NOT_SHARED)
    elif query.view == "open":
        conditions.append(CatalogEntry.open_type != OpenType.NOT_OPEN)
    for name, value in query.filters.items():
        if name in FACETS and value:
            column = getattr(CatalogEntry, name)
            conditions.append(column == (int(value) if name == "department_id" else value))
    return conditions


def _hits(wanted: set[str]) -> Select[int, int]:
    """Entries holding every term, each with the summed weight of the terms it holds."""
    if len(wanted) == 1:
        return select(SearchTerm.entry_id, SearchTerm.weight.label("score")).where(
            SearchTerm.term == next(iter(wanted))
        )
    return (
        select(SearchTerm.entry_id, func.sum(SearchTerm.weight).label("score"))
        .where(SearchTerm.term.in_(sorted(wanted)))
        .group_by(SearchTerm.entry_id)
        .having(func.count() == len(wanted))
    )


def _closeness(matches: Any, q: str) -> ColumnElement[int]:
    """0 for the exact title, 1 for a title containing the query, 2 for the rest."""
    name = func.lower(matches.c.name)
    title = q.lower()
    closeness: ColumnElement[int] = (
        case((name == title, 0), (name.contains(title, autoescape=True), 1), else_=2)
        if title
        else literal(2)
    )
    return closeness.label("closeness")


def _order(closeness: Any, score: Any, length: Any, updated_at: Any, entry_id: Any) -> list[Any]:
    """Exact title, title containing the query, heaviest match, shortest title, newest."""
    return [closeness, score.desc(), length, updated_at.desc().nulls_last(), entry_id]


def search(session: Session, query: SearchQuery, page: PageRequest) -> SearchResult:
    """One page of matching published entries, best first, with facet counts.

    One statement finds the matches once (a materialised CTE) and returns from them the seven
    facet counts and the page's ids with their positions: about 150 small rows leave the
    database however many entries match. The total is the sum of one facet's counts.
    """
    q = query.q.strip()
    wanted = query_terms(q)
    columns = [
        CatalogEntry.id,
        CatalogEntry.name,
        CatalogEntry.updated_at,
        *(getattr(CatalogEntry, name) for name in FACETS),
    ]
    if wanted:
        hits = _hits(wanted).cte("hits").prefix_with("MATERIALIZED")
        stmt = (
            select(*columns, hits.c.score)
            .join(hits, hits.c.entry_id == CatalogEntry.id)
            .where(*_conditions(query))
        )
        if session.get_bind().dialect.name == "postgresql":
            # Handed the ids as one array, PostgreSQL probes the entries' primary key instead of
            # hashing the whole table: ~10 ms sooner at 10,000 hits.
            stmt = stmt.where(
                CatalogEntry.id == any_(func.array(select(hits.c.entry_id).scalar_subquery()))
            )
    else:
        stmt = select(*columns, literal(0).label("score")).where(*_conditions(query))
    matches = stmt.cte("matches").prefix_with("MATERIALIZED")
    counts = [
        select(
            literal(n).label("facet"),
            cast(matches.c[name], String).label("value"),
            func.count().label("n"),
        ).group_by(matches.c[name])
        for n, name in enumerate(FACETS)
    ]
    closeness = _closeness(matches, q)
    length = func.length(matches.c.name).label("length")
    window = (
        select(matches.c.id, matches.c.updated_at, matches.c.score, closeness, length)
        .order_by(*_order(closeness, matches.c.score, length, matches.c.updated_at, matches.c.id))
        .offset(page.offset)
        .limit(page.page_size)
        .subquery("window")
    )
    # UNION ALL keeps no order: each of the page's rows carries its position instead.
    w = window.c
    position = func.row_number().over(
        order_by=_order(w.closeness, w.score, w.length, w.updated_at, w.id)
    )
    ranked = select(literal(PAGE), cast(window.c.id, String), position)
    rows = session.execute(union_all(*counts, ranked)).all()
    ids = [
        int(value)
        for _f, value, _n in sorted((r for r in rows if r[0] == PAGE), key=lambda r: r[2])
    ]
    found = {e.id: e for e in session.scalars(select(CatalogEntry).where(CatalogEntry.id.in_(ids)))}
    counted: dict[str, list[tuple[str | None, int]]] = {
        name: [(value, n) for facet, value, n in rows if facet == index]
        for index, name in enumerate(FACETS)
    }
    total = sum(n for _value, n in counted[FACETS[0]])
    return SearchResult(
        Paged([found[i] for i in ids], total, page.page, page.page_size),
        _facets(session, counted),
    )


def _facets(
    session: Session, counted: dict[str, list[tuple[str | None, int]]]
) -> dict[str, list[dict[str, Any]]]:
    top = {
        name: sorted(((v, c) for v, c in values if v is not None), key=lambda vc: (-vc[1], vc[0]))
        for name, values in counted.items()
    }
    top = {name: values[:30] for name, values in top.items()}
    ids = [int(v) for v, _c in top["department_id"]]
    names = (
        dict(
            session.execute(
                select(Department.id, Department.name).where(Department.id.in_(ids))
            ).all()
        )
        if ids
        else {}
    )
    return {
        name: [{"value": v, "label": _facet_label(name, v, names), "count": c} for v, c in values]
        for name, values in top.items()
    }


def _facet_label(name: str, value: Any, departments: dict[int, str]) -> str:
    if name == "department_id":
        return departments.get(int(value), str(value))
    table = {
        "resource_class": "ResourceClass",
        "share_type": "ShareType",
        "open_type": "OpenType",
        "resource_format": "ResourceFormat",
        "update_cycle": "UpdateCycle",
    }
    for enum_type, labels in LABELS.items():
        if enum_type.__name__ == table.get(name):
            return labels.get(str(value), str(value))
    return str(value)
