"""Issue 10, class 1 acceptance: every parameter of every masking method, cleaning rule, row
filter and connector option, driven with SQL and file-path payloads.

The lists of methods, rule kinds, operators, source kinds and their parameters come from the
code's own schemas (``masking.PARAMS``, ``schemas.RULE_PARAMS``, ``query.OPERATORS``,
``collect.schemas.SOURCE_SETTINGS``), so a new parameter is fuzzed without touching this file; a
new method, kind or source kind fails ``test_every_*_has_a_baseline`` until it is given one.

Each payload is either refused with a clear 422 (a stable code, a Chinese message, the parameter
named, nothing stored) or — a free text the code binds or quotes — accepted and then treated as
the text it is: reads and loads succeed and show it literally. Either way no file appears outside
the version (the canaries in /tmp, anything new in the data folder) and nothing of /etc/passwd
comes back.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import OperationalError

from kuaishu.accounts.models import Department
from kuaishu.accounts.roles import Role
from kuaishu.catalog.models import CatalogEntry
from kuaishu.clean import keyed
from kuaishu.clean.masking import PARAMS, MaskMethod, parse_params
from kuaishu.clean.schemas import RULE_PARAMS
from kuaishu.collect.connectors.database import DatabaseConfig, statement
from kuaishu.collect.enums import SourceKind
from kuaishu.collect.schemas import SOURCE_SETTINGS, PagingSettings
from kuaishu.db import transaction
from kuaishu.store.query import OPERATORS
from tests import factories as f
from tests.functional.store.conftest import (
    Served,
    load_engine,
    load_file,
    make_served,
    module_data_dir,
    write_csv,
)

__all__ = ["load_engine", "module_data_dir"]

CANARIES = [Path("/tmp/pwned.csv"), Path("/tmp/pwned"), Path("/tmp/pwned.duckdb")]  # noqa: S108
PASSWD = "root:x:0:0"
CJK = re.compile(r"[\u4e00-\u9fff]")
TEXTS: list[str] = [
    "x') ; COPY (select 1) TO '/tmp/pwned.csv' --",
    "rowid; COPY (SELECT 1) TO '/tmp/pwned.csv'",
    "read_csv('/etc/passwd')",
    "(SELECT content FROM read_text('/etc/passwd'))",
    "../../secret.key",
    "/etc/passwd",
    '"; DROP TABLE data; --',
    "getenv('HOME')",
    "‘’“”＇＂′″",  # unicode quotes
    "{t}",  # the placeholder text rules were once substituted into
    "ATTACH '/tmp/pwned.duckdb' AS p",
    "x" * 5000,
]
OTHERS: list[Any] = [-1, 10**30, 1.5, True, None, [], {"a": "b"}]
PAYLOADS: list[Any] = [*TEXTS, *OTHERS]
NOTE = "备注'\"--"  # a data item whose name holds both quote characters

ITEMS = [("身份证号", "C"), ("姓名", "C"), (NOTE, "C"), ("人口", "I"), ("出生日期", "D")]
ROWS: list[dict[str, Any]] = [
    {
        "身份证号": f"52010219900101{i:04d}",
        "姓名": f"张{i}",
        NOTE: TEXTS[i % len(TEXTS)][:100],
        "人口": i * 7,
        "出生日期": date(1980, 1, 1 + i),
    }
    for i in range(1, 21)
]


@dataclass
class Target:
    served: Served
    data_dir: Path
    consumer: dict[str, str]
    provider_officer: dict[str, str]

    @property
    def client(self) -> TestClient:
        return self.served.client


@pytest.fixture(scope="module")
def target(load_engine: Engine, module_data_dir: Path) -> Iterator[Target]:
    for served in make_served(
        load_engine, module_data_dir, ROWS, "参数模糊测试", ITEMS, sensitive=("姓名",)
    ):
        with transaction(served.factory) as db:
            entry = db.get(CatalogEntry, served.entry_id)
            assert entry is not None
            provider = db.get(Department, entry.department_id)
            dept = f.department(db, name="省人社厅")
            consumer = {"X-API-Key": f.api_key(db, f.user(db, roles=[Role.CONSUMER], dept=dept))}
            officer = f.user(db, roles=[Role.DATA_OFFICER], dept=provider)
            provider_officer = {"X-API-Key": f.api_key(db, officer)}
        keyed.seed("fuzz")  # the master key exists before any case looks for new files
        yield Target(served, module_data_dir, consumer, provider_officer)


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def contained(target: Target) -> Iterator[None]:
    """No canary outside the data folder, nothing new inside it but the versions that loads
    make and the pseudonym map."""
    for canary in CANARIES:
        canary.unlink(missing_ok=True)
    before = _files(target.data_dir)
    yield
    for canary in CANARIES:
        assert not canary.exists(), f"{canary} was written"
    made = _files(target.data_dir) - before
    expected = ("versions", "changes", "keys", "runs", "tmp")
    strays = [p for p in made if p.relative_to(target.data_dir).parts[0] not in expected]
    assert not strays, strays
    assert not [p for p in made if "pwned" in p.name or p.name == "secret.key"]


def _label(payload: Any) -> str:
    text = repr(payload)
    return text if len(text) < 30 else text[:27] + "…"


def _refusal(response: Any, code: str, field_prefix: str) -> None:
    """A clear 422: the stable code, every problem on the parameter under test, in Chinese."""
    assert response.status_code == 422, response.text[:500]
    error = response.json()["error"]
    assert error["code"] == code, error
    assert CJK.search(error["message"]), error
    details = error["details"]
    assert details and all(d["field"].startswith(field_prefix) for d in details), details
    assert all(CJK.search(d["message"]) for d in details), details


# Masking methods ---------------------------------------------------------------------------------

MASK_BASE: dict[MaskMethod, dict[str, Any]] = {
    MaskMethod.MASK: {"first": 1},
    MaskMethod.TRUNCATE: {"keep": 1},
    MaskMethod.GENERALISE: {"to": "range", "width": 10},
    MaskMethod.NULL: {},
    MaskMethod.SUBSTITUTE: {"value": "某"},
    MaskMethod.SHUFFLE: {},
    MaskMethod.NOISE: {"percent": 5},
    MaskMethod.DATE_SHIFT: {"days": 3},
    MaskMethod.HASH: {},
    MaskMethod.PSEUDONYM: {},
    MaskMethod.ENCRYPT: {},
}
UNKNOWN = "unknown_parameter"
MASK_CASES = [(m, name) for m in MaskMethod for name in [*PARAMS[m].model_fields, UNKNOWN]]


def _names_item(model: type[BaseModel], name: str) -> bool:
    """The parameter names a data item (``ITEM_NAME`` in its schema): quoted, never bound."""
    extra = model.model_fields[name].json_schema_extra if name in model.model_fields else None
    return isinstance(extra, dict) and extra.get("names") == "item"


def _is_text(method: MaskMethod, name: str) -> bool:
    return "str" in str(PARAMS[method].model_fields[name].annotation)


def test_every_masking_method_has_a_baseline() -> None:
    assert set(MASK_BASE) == set(MaskMethod)
    for method, params in MASK_BASE.items():
        parse_params(method, params)


@pytest.mark.usefixtures("contained")
@pytest.mark.parametrize(("method", "name"), MASK_CASES, ids=[f"{m}.{n}" for m, n in MASK_CASES])
def test_masking_parameters(target: Target, method: MaskMethod, name: str) -> None:
    served = target.served
    url = f"/api/v1/clean/entries/{served.entry_id}/masking"
    for payload in PAYLOADS:
        before = served.client.get(url, headers=served.member).json()
        rule = {"item": "人口", "channel": "share", "method": str(method)}
        response = served.client.put(
            url,
            json={"rules": [{**rule, "params": {**MASK_BASE[method], name: payload}}]},
            headers=served.member,
        )
        if response.status_code != 200:
            _refusal(response, "bad_masking_policy", "rules[0].params")
            assert served.client.get(url, headers=served.member).json() == before, payload
            continue
        # Accepted: a number in bounds, or a text for a text parameter (bound as a literal); a
        # parameter naming a data item takes none of these.
        assert name != UNKNOWN and (not isinstance(payload, str) or _is_text(method, name))
        assert not _names_item(PARAMS[method], name), (name, _label(payload))
        read = served.client.get(
            served.url("query"),
            params={"channel": "share", "shape": "objects", "limit": 5},
            headers=served.member,
        )
        assert read.status_code == 200, read.text[:500]
        assert PASSWD not in read.text
        if method == MaskMethod.SUBSTITUTE:
            assert {row["人口"] for row in read.json()["rows"]} == {payload}


def test_none_shows_as_stored_and_takes_no_parameters(target: Target) -> None:
    served = target.served
    url = f"/api/v1/clean/entries/{served.entry_id}/masking"
    rule = {"item": "人口", "channel": "share", "method": "none"}
    for payload in TEXTS:
        response = served.client.put(
            url, json={"rules": [{**rule, "params": {"row_key": payload}}]}, headers=served.member
        )
        _refusal(response, "bad_masking_policy", "rules[0].params")


# Cleaning rules ----------------------------------------------------------------------------------

RULE_BASE: dict[str, dict[str, Any]] = {
    "normalise": {"item": "*"},
    "null_tokens": {"item": NOTE, "tokens": ["无"]},
    "map": {"item": NOTE, "values": {"甲": "乙"}},
    "regex": {"item": "姓名", "pattern": ".+"},
    "range": {"item": "人口", "min": 0},
    "enum": {"item": "姓名", "values": ["张1"]},
    "identifier": {"item": "身份证号", "identifier": "citizen_id"},
    "reference": {"item": "姓名", "entry": "-", "column": "姓名"},
    "id_consistency": {"id_item": "身份证号"},
    "dedupe": {"by": ["身份证号"]},
}
RULE_CASES = [
    (kind, name)
    for kind, model in RULE_PARAMS.items()
    for name in [*(n for n in model.model_fields if n != "kind"), UNKNOWN]
]


def test_every_rule_kind_has_a_baseline() -> None:
    assert set(RULE_BASE) == set(RULE_PARAMS)


def _shapes(payload: Any) -> list[Any]:
    """The payload as given, inside a list and as a mapping (for list and map parameters)."""
    if isinstance(payload, str):
        return [payload, [payload], {payload: payload}]
    return [payload]


@pytest.mark.usefixtures("contained")
@pytest.mark.parametrize(("kind", "name"), RULE_CASES, ids=[f"{k}.{n}" for k, n in RULE_CASES])
def test_cleaning_rule_parameters(target: Target, kind: str, name: str) -> None:
    served = target.served
    url = f"/api/v1/clean/entries/{served.entry_id}/rules"
    accepted: list[dict[str, Any]] = []
    for payload in [p for given in PAYLOADS for p in _shapes(given)]:
        before = served.client.get(url, headers=served.member).json()
        rule = {"kind": kind, **RULE_BASE[kind], name: payload}
        response = served.client.put(url, json={"rules": [rule]}, headers=served.member)
        if response.status_code != 200:
            _refusal(response, "bad_cleaning_rules", "rules[0]")
            assert served.client.get(url, headers=served.member).json() == before
            continue
        assert name != UNKNOWN and not _names_item(RULE_PARAMS[kind], name), _label(payload)
        accepted.append(rule)
    if not accepted:
        return
    # What was accepted is text the rules quote: one load with all of it succeeds, and the rules
    # did what their text says (a row is a value, never code).
    served.client.put(url, json={"rules": accepted}, headers=served.member).raise_for_status()
    try:
        rows = load_file(
            served.factory, served.entry_id, write_csv(target.data_dir / "in.csv", ROWS)
        )
        assert rows <= len(ROWS)
    finally:
        served.client.put(url, json={"rules": []}, headers=served.member).raise_for_status()
        load_file(served.factory, served.entry_id, write_csv(target.data_dir / "in.csv", ROWS))


def test_text_rules_treat_their_values_as_text(target: Target) -> None:
    """A value map and placeholders on an item whose name holds quotes: every hostile text is
    matched and replaced as the text it is."""
    served = target.served
    url = f"/api/v1/clean/entries/{served.entry_id}/rules"
    short = [t[:100] for t in TEXTS]
    rules = [
        {"kind": "map", "item": NOTE, "values": {t: f"映射{i}" for i, t in enumerate(short[:6])}},
        {"kind": "null_tokens", "item": NOTE, "tokens": short[6:]},
    ]
    served.client.put(url, json={"rules": rules}, headers=served.member).raise_for_status()
    try:
        load_file(served.factory, served.entry_id, write_csv(target.data_dir / "in.csv", ROWS))
        got = served.client.get(
            served.url("query"), params={"shape": "objects", "limit": 100}, headers=served.member
        ).json()["rows"]
        expected = {t: f"映射{i}" for i, t in enumerate(short[:6])} | dict.fromkeys(short[6:])
        assert {r["身份证号"]: r[NOTE] for r in got} == {
            r["身份证号"]: expected[r[NOTE]] for r in ROWS
        }
    finally:
        served.client.put(url, json={"rules": []}, headers=served.member).raise_for_status()
        load_file(served.factory, served.entry_id, write_csv(target.data_dir / "in.csv", ROWS))


# Row filters ---------------------------------------------------------------------------------------


@pytest.mark.usefixtures("contained")
@pytest.mark.parametrize("op", [*OPERATORS, "bogus"])
def test_data_api_filters(target: Target, op: str) -> None:
    served = target.served
    for payload in TEXTS:
        for column in ("身份证号", "人口", "出生日期", NOTE, payload):
            read = served.client.get(
                served.url("query"),
                params={f"{column}__{op}": payload, "shape": "objects"},
                headers=served.member,
            )
            assert PASSWD not in read.text
            if read.status_code == 422:
                error = read.json()["error"]
                assert error["code"] in ("bad_value", "unknown_column", "bad_operator"), error
                assert CJK.search(error["message"])
                continue
            assert read.status_code == 200, read.text[:500]
            rows = read.json()["rows"]
            if op == "eq" and column == NOTE:  # bound, so matched as the text it is
                assert [r[NOTE] for r in rows] == [r[NOTE] for r in ROWS if r[NOTE] == payload]


@pytest.mark.usefixtures("contained")
@pytest.mark.parametrize("position", ["field", "op", "value"])
def test_grant_row_filters(target: Target, position: str) -> None:
    served = target.served
    for payload in PAYLOADS:
        pair: Any = {
            "field": [f"{payload}__eq", "1"],
            "op": [f"人口__{payload}", "1"],
            "value": [f"{NOTE}__eq", payload],
        }[position]
        response = served.client.post(
            f"/api/v1/share/entries/{served.entry_id}/applications",
            json={"purpose": "资格核验", "methods": ["query"], "row_filter": [pair]},
            headers=target.consumer,
        )
        if response.status_code != 201:
            assert response.status_code == 422, response.text[:500]
            error = response.json()["error"]
            assert error["code"] in ("bad_share_request", "validation_failed"), error
            assert CJK.search(error["message"])
            continue
        assert position == "value" and isinstance(payload, str), (position, _label(payload))
        grant = response.json()["grant"]["id"]
        read = served.client.get(
            f"/api/v1/share/grants/{grant}/query",
            params={"limit": 100, "shape": "objects"},
            headers={**target.consumer, "X-Purpose": "%E6%A0%B8%E9%AA%8C"},
        )
        assert read.status_code == 200, read.text[:500]
        assert PASSWD not in read.text
        wanted = sorted(r["身份证号"] for r in ROWS if r[NOTE] == payload)
        assert sorted(r["身份证号"] for r in read.json()["rows"]) == wanted
        revoked = served.client.post(
            f"/api/v1/share/grants/{grant}/revoke",
            json={"reason": "测试结束"},
            headers=target.provider_officer,
        )
        assert revoked.status_code == 200, revoked.text[:300]


# Connector options ---------------------------------------------------------------------------------

SOURCE_BASE: dict[SourceKind, dict[str, Any]] = {
    SourceKind.FILE: {},
    SourceKind.PUSH: {},
    SourceKind.DATABASE: {"url": "postgresql://reader@db.example.gov.cn/stats", "table": "people"},
    SourceKind.HTTP_API: {"url": "https://api.example.gov.cn/people"},
    SourceKind.WEB: {"url": "https://www.example.gov.cn/table.html"},
}


def _setting_names(model: type[BaseModel]) -> list[str]:
    return [*model.model_fields, UNKNOWN]


SOURCE_CASES = [
    (kind, name) for kind in SourceKind for name in _setting_names(SOURCE_SETTINGS[kind])
]
SOURCE_CASES += [(SourceKind.HTTP_API, f"paging.{n}") for n in _setting_names(PagingSettings)]
SOURCE_CODES = {
    "source_config_invalid",
    "source_config_missing",
    "source_url_invalid",
    "source_table_or_query",
    "source_query_not_select",
    "source_forbidden",
    "validation_failed",
}


def _fits(model: type[BaseModel], name: str, payload: Any) -> bool:
    """Whether the setting is of a type the payload could be (accepted only then)."""
    if name not in model.model_fields:
        return False
    annotation = str(model.model_fields[name].annotation)
    kinds = {str: "str", dict: "dict", list: "list", bool: "bool", int: "int", float: "float"}
    return payload is None or kinds[type(payload)] in annotation or "Any" in annotation


def test_every_source_kind_has_a_baseline() -> None:
    assert set(SOURCE_BASE) == set(SourceKind)


@pytest.mark.usefixtures("contained")
@pytest.mark.parametrize(("kind", "name"), SOURCE_CASES, ids=[f"{k}.{n}" for k, n in SOURCE_CASES])
def test_connector_options(target: Target, kind: SourceKind, name: str) -> None:
    served = target.served
    url = f"/api/v1/collect/entries/{served.entry_id}/sources"
    sources = len(served.client.get(url, headers=served.member).json())
    for payload in PAYLOADS:
        config = dict(SOURCE_BASE[kind])
        if name.startswith("paging."):
            config["paging"] = {"type": "page", name.removeprefix("paging."): payload}
        else:
            config[name] = payload
        if kind == SourceKind.DATABASE and name == "table":
            config.pop("query", None)
        if kind == SourceKind.DATABASE and name == "query":
            config.pop("table")
        body = {"kind": str(kind), "name": "模糊测试来源", "config": config}
        response = served.client.post(url, json=body, headers=served.member)
        if response.status_code == 201:
            sources += 1
            model = PagingSettings if name.startswith("paging.") else SOURCE_SETTINGS[kind]
            assert _fits(model, name.removeprefix("paging."), payload), _label(payload)
            continue
        assert response.status_code == 422, response.text[:500]
        error = response.json()["error"]
        assert error["code"] in SOURCE_CODES, error
        assert CJK.search(error["message"])
        assert len(served.client.get(url, headers=served.member).json()) == sources


@pytest.mark.parametrize("name", ["table", "incremental_column"])
def test_database_names_reach_the_source_quoted(tmp_path: Path, name: str) -> None:
    """A table or column name is quoted by the source database's own quoting: a hostile one is
    looked up as a name and not found; the department's database is untouched."""
    path = tmp_path / "dept.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE people (id INTEGER)")
        db.execute("INSERT INTO people VALUES (1)")
    engine = create_engine(f"sqlite:///{path}")
    try:
        for payload in TEXTS:
            cfg = DatabaseConfig(
                url=f"sqlite:///{path}",
                table=payload if name == "table" else "people",
                query=None,
                incremental_column=payload if name == "incremental_column" else None,
                batch_rows=100,
            )
            with engine.connect() as conn:
                try:
                    conn.execute(statement(engine, cfg, "0")).fetchall()
                except OperationalError as error:
                    assert "no such" in str(error)
                # (SQLite reads an unknown double-quoted name as a string: still no code.)
    finally:
        engine.dispose()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM people").fetchone() == (1,)
        tables = db.execute("SELECT name FROM sqlite_master").fetchall()
        assert tables == [("people",)]
    assert not any(canary.exists() for canary in CANARIES)
