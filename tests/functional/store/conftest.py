"""A published entry whose data went through the real load pipeline, served by an app bound to
that database. Loads commit (and run DuckDB on files), so each module has its own database and
data folder, built once per backend; the tests only read."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.accounts.roles import Role
from kuaishu.catalog.models import CatalogEntry
from kuaishu.collect.enums import RunStatus
from kuaishu.collect.jobs import InlineRunner
from kuaishu.collect.models import LoadRun
from kuaishu.collect.services import queue_load
from kuaishu.db import make_engine, make_sessionmaker, transaction
from kuaishu.migrate import upgrade
from kuaishu.security.models import AuditEvent
from kuaishu.settings import get_settings
from kuaishu.web.app import create_app
from tests import factories as f
from tests.conftest import fresh_database_url

ITEMS = [
    ("身份证号", "C"),
    ("姓名", "C"),
    ("地区", "C"),
    ("人口", "I"),
    ("收入", "Y"),
    ("比例", "N"),
    ("出生日期", "D"),
    ("登记时间", "T"),
    ("户籍", "L"),
]
REGIONS = ["北京", "上海", "广州", "贵阳"]
FORMULAS = {17: "=1+2", 19: "+86 123", 23: "-5 度", 29: "@SUM(A1)"}


def person(i: int) -> dict[str, Any]:
    """Row ``i`` as the API should return it (typed), with nulls, ties and formula-like text."""
    return {
        "身份证号": f"52010219900101{i:04d}",
        "姓名": FORMULAS.get(i, f"张三{i}"),
        "地区": None if i % 13 == 0 else REGIONS[i % 4],
        "人口": None if i % 11 == 0 else (i * 37) % 50,
        "收入": Decimal(f"{i * 1.25:.2f}"),
        "比例": round(i / 7, 4),
        "出生日期": date(1980, 1, 1) + timedelta(days=i * 37),
        "登记时间": datetime(2024, 1, 1, 8, 0) + timedelta(minutes=i * 91),
        "户籍": i % 3 == 0,
    }


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(list(rows[0]))
        for row in rows:
            writer.writerow([as_text(v) for v in row.values()])
    return path


def load_file(factory: sessionmaker[Session], entry_id: int, path: Path) -> int:
    """Load ``path`` into the entry through the real pipeline; the version number made."""
    with transaction(factory) as session:
        entry = session.get(CatalogEntry, entry_id)
        assert entry is not None
        run = queue_load(session, actor=f.ROOT, entry=entry, upload=path, filename=path.name)
        run_id = run.id
    InlineRunner(factory).submit(run_id)
    with transaction(factory) as session:
        done = session.get(LoadRun, run_id)
        assert done is not None and done.status == RunStatus.SUCCEEDED, done and done.error_message
        return int(done.rows_loaded or 0)


@dataclass
class Served:
    """The served entry, an HTTP client and the keys of who may (and may not) read it."""

    client: TestClient
    factory: sessionmaker[Session]
    code: str
    entry_id: int
    rows: list[dict[str, Any]]
    member: dict[str, str]
    operator: dict[str, str]
    outsider: dict[str, str]
    empty_code: str
    base: str = ""

    def url(self, tail: str, code: str | None = None) -> str:
        return f"/api/v1/data/{code or self.code}/{tail}"

    def get(self, tail: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
        return self.client.get(self.url(tail), params=params, headers=headers or self.member)

    def audit(self, action: str) -> list[AuditEvent]:
        with self.factory() as session:
            return list(
                session.scalars(
                    select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
                )
            )


@pytest.fixture(scope="module")
def load_engine(backend: str, request: pytest.FixtureRequest) -> Iterator[Engine]:
    engine = make_engine(fresh_database_url(backend, request.module.__name__.rsplit(".", 1)[-1]))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def module_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Versions of this module only (entry ids repeat across backends)."""
    folder = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(get_settings(), "data_dir", folder)
        yield folder


def make_served(
    load_engine: Engine,
    data_dir: Path,
    rows: list[dict[str, Any]],
    name: str,
    items: list[tuple[str, str]] = ITEMS,
    sensitive: tuple[str, ...] = (),
) -> Iterator[Served]:
    factory = make_sessionmaker(load_engine)
    with transaction(factory) as db:
        dept = f.department(db, name="省人口统计局")
        other = f.department(db, name="省交通厅")
        entry = f.published_entry(
            db, dept=dept, name=name, items=items, keys=("身份证号",), sensitive=sensitive
        )
        empty = f.published_entry(db, dept=dept, name="尚无数据的资源", items=ITEMS)

        def key(role: Role, where: Any) -> dict[str, str]:
            return {"X-API-Key": f.api_key(db, f.user(db, roles=[role], dept=where))}

        member = key(Role.CATALOGUER, dept)
        operator = key(Role.PLATFORM_OPERATOR, other)
        outsider = key(Role.DATA_OFFICER, other)
        entry_id, code, empty_code = entry.id, entry.code, empty.code
    load_file(factory, entry_id, write_csv(data_dir / "input.csv", rows))
    app = create_app(engine=load_engine)
    with TestClient(app, base_url="http://testserver") as client:
        yield Served(
            client=client,
            factory=factory,
            code=code,
            entry_id=entry_id,
            rows=rows,
            member=member,
            operator=operator,
            outsider=outsider,
            empty_code=empty_code,
        )


@pytest.fixture(scope="module")
def served(load_engine: Engine, module_data_dir: Path) -> Iterator[Served]:
    """240 people, loaded once per module and backend."""
    yield from make_served(
        load_engine, module_data_dir, [person(i) for i in range(1, 241)], "人口登记信息"
    )


Check = Callable[[dict[str, Any]], bool]
