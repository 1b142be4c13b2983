"""Runners in the serving process: start-up resumes what a previous process left, a running load
can be cancelled, a run handed over twice loads once, and only N versions stay on disk."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.collect import services
from kuaishu.collect.enums import RunStatus
from kuaishu.collect.jobs import InlineRunner, ThreadRunner, resume
from kuaishu.collect.models import LoadRun
from kuaishu.db import transaction, utcnow
from kuaishu.errors import AppError
from kuaishu.settings import Settings
from kuaishu.store import services as versions
from kuaishu.store.models import VersionState
from kuaishu.web.app import create_app
from tests import factories
from tests.unit.collect import jobs_support as js


def _cancel(factory: sessionmaker[Session], run_id: int) -> None:
    with transaction(factory) as session:
        services.cancel_run(session, actor=factories.ROOT, run=services.get_run(session, run_id))


def test_cancelling_a_running_load_keeps_the_served_version(
    factory: sessionmaker[Session], data_dir: Path, tmp_path: Path
) -> None:
    entry = js.make_entry(factory)
    InlineRunner(factory).submit(
        js.queue_file(factory, entry, js.write_csv(tmp_path / "a.csv", 50))
    )
    before = js.served(factory, entry)
    runner = ThreadRunner(factory, threads=1)
    try:
        run_id = js.queue_file(factory, entry, js.write_csv(tmp_path / "big.csv", 1_500_000))
        runner.submit(run_id)
        js.wait_for(
            lambda: js.run_of(factory, run_id).status == RunStatus.RUNNING, message="running"
        )
        _cancel(factory, run_id)
        cancelled = js.finished(factory, run_id)
    finally:
        runner.close()
    assert cancelled.status == RunStatus.CANCELLED
    assert (cancelled.error_code, cancelled.error_message) == ("load_cancelled", "加载已被取消。")
    after = js.served(factory, entry)
    assert (after.id, after.checksum_sm3, js.rows_of(after)) == (before.id, before.checksum_sm3, 50)
    assert js.staging_folders(entry) == []
    assert js.version_folders(entry) == {before.path}


def test_keeps_n_versions_on_disk_and_rolls_back_to_a_kept_one(
    factory: sessionmaker[Session], data_dir: Path, tmp_path: Path
) -> None:
    entry = js.make_entry(factory, keep=2)
    runner = InlineRunner(factory)
    for n in range(1, 5):  # keep + 2 loads, of 10, 20, 30 and 40 rows
        runner.submit(js.queue_file(factory, entry, js.write_csv(tmp_path / f"{n}.csv", 10 * n)))
    current = js.served(factory, entry)
    assert current.number == 4
    with transaction(factory) as session:
        states = {v.number: v.state for v in versions.versions_of(session, entry.id)}
    assert states == {
        4: VersionState.PUBLISHED,
        3: VersionState.PUBLISHED,
        2: VersionState.RETIRED,
        1: VersionState.RETIRED,
    }
    assert js.version_folders(entry) == js.referenced(factory, entry)
    assert len(js.version_folders(entry)) == 2 and current.path in js.version_folders(entry)

    with transaction(factory) as session:
        entry_row = services.loadable_entry(session, entry_id=entry.id)
        versions.publish_version(
            session, actor=factories.ROOT, entry=entry_row, number=3, reason="第 4 版口径有误"
        )
    rolled_back = js.served(factory, entry)
    assert (rolled_back.number, js.rows_of(rolled_back)) == (3, 30)
    with pytest.raises(AppError) as refused, transaction(factory) as session:
        entry_row = services.loadable_entry(session, entry_id=entry.id)
        versions.publish_version(session, actor=factories.ROOT, entry=entry_row, number=1)
    assert refused.value.code == "version_retired"


def test_a_run_handed_to_two_runners_loads_once(
    factory: sessionmaker[Session], data_dir: Path, tmp_path: Path
) -> None:
    entry = js.make_entry(factory)
    run_id = js.queue_file(factory, entry, js.write_csv(tmp_path / "a.csv", 5000))
    runner = ThreadRunner(factory, threads=3)
    try:
        for _ in range(3):  # e.g. submitted by the request, then again by a restart's resume
            runner.submit(run_id)
    finally:
        runner.close()
    run = js.run_of(factory, run_id)
    assert run.status == RunStatus.SUCCEEDED
    with transaction(factory) as session:
        made = versions.versions_of(session, entry.id)
    assert [v.number for v in made] == [1] and made[0].run_id == run_id
    assert sum("加载完成" in line["message"] for line in run.log) == 1


def _stale_run(factory: sessionmaker[Session], entry: js.Entry) -> int:
    """A run some other machine's process was running and stopped reporting on long ago."""
    with transaction(factory) as session:
        run = LoadRun(
            entry_id=entry.id,
            status=RunStatus.RUNNING,
            worker="another-host:4242",
            started_at=utcnow() - timedelta(minutes=10),
            heartbeat_at=utcnow() - timedelta(minutes=9),
            log=[],
        )
        session.add(run)
        session.flush()
        return run.id


def test_app_start_up_fails_dead_runs_and_resumes_queued_ones(
    factory: sessionmaker[Session], load_engine: Engine, data_dir: Path, tmp_path: Path
) -> None:
    entry = js.make_entry(factory)
    dead = _stale_run(factory, entry)
    queued = js.queue_file(factory, entry, js.write_csv(tmp_path / "a.csv", 100))
    app = create_app(Settings(jobs="thread", job_threads=1), engine=load_engine)
    with TestClient(app):
        assert isinstance(app.state.runner, ThreadRunner)
        resumed = js.finished(factory, queued)
    assert js.run_of(factory, dead).error_code == "load_interrupted"
    assert resumed.status == RunStatus.SUCCEEDED
    assert js.rows_of(js.served(factory, entry)) == 100


def test_resume_resubmits_queued_runs(
    factory: sessionmaker[Session], data_dir: Path, tmp_path: Path
) -> None:
    entry = js.make_entry(factory)
    queued = [js.queue_file(factory, entry, js.write_csv(tmp_path / f"{n}.csv", n)) for n in (3, 4)]
    assert set(queued) <= set(resume(factory, InlineRunner(factory)))
    assert [js.run_of(factory, r).status for r in queued] == [RunStatus.SUCCEEDED] * 2
    assert js.served(factory, entry).number == 2


@pytest.mark.parametrize(("jobs", "code"), [("bogus", "jobs_setting_invalid")])
def test_an_unknown_jobs_setting_stops_start_up(load_engine: Engine, jobs: str, code: str) -> None:
    app = create_app(Settings(jobs=jobs), engine=load_engine)
    with pytest.raises(AppError) as refused, TestClient(app):
        pass
    assert refused.value.code == code


def test_queue_mode_on_sqlite_is_refused(backend: str, load_engine: Engine) -> None:
    if backend != "sqlite":
        pytest.skip("the queue runs on PostgreSQL")
    app = create_app(Settings(jobs="queue"), engine=load_engine)
    with pytest.raises(AppError) as refused, TestClient(app):
        pass
    assert refused.value.code == "queue_needs_postgresql"
