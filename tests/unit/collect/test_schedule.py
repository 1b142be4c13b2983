"""Scheduled loads: a due source is loaded once however many processes tick, its next time moves
on, and a creator who may no longer load leaves a failed run saying so instead of a load."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.accounts.models import RoleAssignment, User
from kuaishu.collect import schedule
from kuaishu.collect.enums import RunStatus, SourceKind
from kuaishu.collect.jobs import InlineRunner
from kuaishu.collect.models import LoadRun, Source
from kuaishu.collect.scheduler import claim, due_sources, run_forever, tick
from kuaishu.db import transaction, utcnow
from kuaishu.errors import ValidationFailed
from kuaishu.security.models import AuditEvent
from kuaishu.store.models import DatasetVersion
from tests.unit.collect.sources_support import Setup, add_source, get_source, make_entry

ITEMS = [("编号", "I"), ("名称", "C")]


@pytest.fixture
def department_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'department.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER, name TEXT)"))
        conn.execute(text("INSERT INTO t VALUES (1, '甲'), (2, '乙')"))
    engine.dispose()
    return url


def _scheduled(factory: sessionmaker[Session], url: str, *, due: datetime) -> tuple[Setup, int]:
    setup = make_entry(factory, ITEMS)
    source_id = add_source(
        factory,
        setup,
        SourceKind.DATABASE,
        {"url": url, "table": "t"},
        schedule="* * * * *",
        mapping={"编号": "id", "名称": "name"},
    )
    with transaction(factory) as session:
        session.execute(update(Source).where(Source.id == source_id).values(next_run_at=due))
    return setup, source_id


def _runs(factory: sessionmaker[Session], source_id: int) -> list[LoadRun]:
    with transaction(factory) as session:
        return list(session.scalars(select(LoadRun).where(LoadRun.source_id == source_id)))


def test_a_due_source_is_loaded_once_when_two_processes_tick(
    factory: sessionmaker[Session], data_dir: Path, department_db: str
) -> None:
    now = utcnow()
    setup, source_id = _scheduled(factory, department_db, due=now - timedelta(minutes=5))
    start = threading.Barrier(2)
    queued: list[list[int]] = []

    def ticker() -> None:
        start.wait()
        queued.append(tick(factory, InlineRunner(factory), now))

    threads = [threading.Thread(target=ticker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    runs = _runs(factory, source_id)
    assert sorted(len(ids) for ids in queued) == [0, 1]
    assert [(r.trigger, r.status, r.requested_by) for r in runs] == [
        ("schedule", RunStatus.SUCCEEDED, setup.user_id)
    ]
    with transaction(factory) as session:
        versions = session.scalars(
            select(DatasetVersion).where(DatasetVersion.entry_id == setup.entry_id)
        ).all()
        assert [v.row_count for v in versions] == [2]
    following = get_source(factory, source_id).next_run_at
    assert following is not None and now < following <= now + timedelta(minutes=1)
    assert tick(factory, InlineRunner(factory), now) == []  # nothing due until that time


def test_of_two_processes_that_saw_the_same_due_time_one_queues(
    factory: sessionmaker[Session], data_dir: Path, department_db: str
) -> None:
    now = utcnow()
    due = now - timedelta(minutes=5)
    _setup, source_id = _scheduled(factory, department_db, due=due)
    with transaction(factory) as session:  # both read the due list before either claims
        seen_by_both = [(s.id, s.next_run_at) for s in due_sources(session, now)]
    assert (source_id, due) in seen_by_both
    first = claim(factory, source_id, due, now)
    second = claim(factory, source_id, due, now)
    assert first is not None and second is None
    assert [r.id for r in _runs(factory, source_id)] == [first]


def test_a_disabled_creator_stops_the_schedule_with_a_reason(
    factory: sessionmaker[Session], data_dir: Path, department_db: str
) -> None:
    now = utcnow()
    setup, source_id = _scheduled(factory, department_db, due=now - timedelta(seconds=1))
    with transaction(factory) as session:
        session.execute(update(User).where(User.id == setup.user_id).values(is_active=False))
    # Sources of earlier tests ("* * * * *") may fall due again if a minute turned meanwhile.
    queued = tick(factory, InlineRunner(factory), now)
    [run] = _runs(factory, source_id)
    assert run.id not in queued
    assert (run.status, run.error_code) == (RunStatus.FAILED, "schedule_owner_inactive")
    assert "停用" in (run.error_message or "")
    assert get_source(factory, source_id).next_run_at > now  # type: ignore[operator]
    with transaction(factory) as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "collect.schedule_refused")
        ).first()
        assert event is not None and event.target_id == str(source_id)


def test_a_creator_who_lost_the_role_no_longer_loads(
    factory: sessionmaker[Session], data_dir: Path, department_db: str
) -> None:
    now = utcnow()
    setup, source_id = _scheduled(factory, department_db, due=now - timedelta(seconds=1))
    with transaction(factory) as session:
        session.execute(delete(RoleAssignment).where(RoleAssignment.user_id == setup.user_id))
    tick(factory, InlineRunner(factory), now)
    [run] = _runs(factory, source_id)
    assert (run.status, run.error_code) == (RunStatus.FAILED, "schedule_owner_denied")


def test_only_enabled_sources_whose_time_has_come_are_due(
    factory: sessionmaker[Session], data_dir: Path, department_db: str
) -> None:
    now = utcnow()
    _setup, due = _scheduled(factory, department_db, due=now - timedelta(seconds=1))
    _setup, later = _scheduled(factory, department_db, due=now + timedelta(minutes=1))
    _setup, off = _scheduled(factory, department_db, due=now - timedelta(seconds=1))
    with transaction(factory) as session:
        session.execute(update(Source).where(Source.id == off).values(enabled=False))
        found = {source.id for source in due_sources(session, now)}
    assert due in found and later not in found and off not in found


def test_run_forever_ticks_until_stopped(
    factory: sessionmaker[Session], data_dir: Path, department_db: str
) -> None:
    _setup, source_id = _scheduled(factory, department_db, due=utcnow() - timedelta(seconds=1))
    stop = threading.Event()

    class StopAfterOne(InlineRunner):
        def submit(self, run_id: int) -> None:
            super().submit(run_id)
            stop.set()

    worker = threading.Thread(target=run_forever, args=(factory, StopAfterOne(factory), stop, 0.05))
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert [r.status for r in _runs(factory, source_id)] == [RunStatus.SUCCEEDED]


def test_cron_times_are_china_time() -> None:
    moment = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # 20:00 in Beijing
    assert schedule.next_after("0 2 * * *", moment) == datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
    assert schedule.next_after("*/15 * * * *", moment) == datetime(2026, 3, 1, 12, 15, tzinfo=UTC)
    with pytest.raises(ValidationFailed):
        schedule.validate("every day")
