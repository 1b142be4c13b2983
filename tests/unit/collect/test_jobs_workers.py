"""Production mode: two real ``kuaishu worker`` processes share the queue on PostgreSQL; both take
work, every load succeeds, and loads into one entry never overlap."""

from __future__ import annotations

import itertools
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.collect.enums import RunStatus
from kuaishu.collect.queue import LOAD_TASK, QueueRunner
from kuaishu.db import make_engine, make_sessionmaker, transaction
from kuaishu.store import services as versions
from tests.conftest import POSTGRES_URL, fresh_database_url
from tests.unit.collect import jobs_support as js

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.xdist_group("workers"),
    pytest.mark.skipif(not POSTGRES_URL, reason="needs KUAISHU_TEST_POSTGRES_URL"),
]

DOING = "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing' AND task_name = :task"
HOLDER = 10**9  # a load that is not a run: holds an entry so the workers wait on it


@pytest.fixture(scope="module")
def queue_engine() -> Iterator[Engine]:
    """A fresh PostgreSQL database, migrated by ``kuaishu init`` itself."""
    engine = make_engine(fresh_database_url("postgresql", "workers"))
    yield engine
    engine.dispose()


def _init(engine: Engine, data_dir: Path) -> str:
    done = subprocess.run(
        [*js.KUAISHU, "init"],
        env=js.kuaishu_env(engine, data_dir, COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _scalar(engine: Engine, sql: str, **params: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(sql), params).scalar_one())


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM (finish what is under way), then SIGKILL whatever did not stop in time."""
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=30)


def _hold(factory: sessionmaker[Session], entries: list[js.Entry], *, release: bool) -> None:
    with transaction(factory) as session:
        for entry in entries:
            if release:
                versions.release_lease(session, entry.id, HOLDER)
            else:
                assert versions.acquire_lease(session, entry.id, HOLDER)


def test_two_workers_share_the_loads(queue_engine: Engine, data_dir: Path, tmp_path: Path) -> None:
    assert "任务队列（procrastinate）：已创建" in _init(queue_engine, data_dir)
    assert "任务队列（procrastinate）：已存在" in _init(queue_engine, data_dir)
    factory = make_sessionmaker(queue_engine)
    entries = [js.make_entry(factory), js.make_entry(factory)]
    csvs = [js.write_csv(tmp_path / f"{n}.csv", 20_000, start=n) for n in range(3)]
    # Both entries are busy at first: each worker takes one load and waits with it, so both
    # workers are seen to take work, whatever their speed.
    _hold(factory, entries, release=False)
    env = js.kuaishu_env(queue_engine, data_dir, KUAISHU_JOBS="queue", COLUMNS="200")
    logs = [(tmp_path / f"worker{n}.log").open("wb") for n in range(2)]
    workers = [
        subprocess.Popen(
            [*js.KUAISHU, "worker", "--concurrency", "1"], env=env, stdout=log, stderr=log
        )
        for log in logs
    ]
    runner = QueueRunner(factory, js.url_of(queue_engine))
    try:
        js.wait_for(
            lambda: _scalar(queue_engine, "SELECT count(*) FROM procrastinate_workers") == 2,
            message="two workers to register",
        )
        runs = {e.id: [js.queue_file(factory, e, csv) for csv in csvs] for e in entries}
        for run_ids in runs.values():
            for run_id in run_ids:
                runner.submit(run_id)
        js.wait_for(
            lambda: _scalar(queue_engine, DOING, task=LOAD_TASK) == 2,
            message="each worker to take a load",
        )
        _hold(factory, entries, release=True)
        done = {e.id: [js.finished(factory, run_id) for run_id in runs[e.id]] for e in entries}
    finally:
        runner.close()
        _stop(workers)
        for log in logs:
            log.close()
    every = [run for entry_runs in done.values() for run in entry_runs]
    assert [run.status for run in every] == [RunStatus.SUCCEEDED] * 6, [
        (run.error_code, run.log) for run in every
    ]
    assert len({run.worker for run in every}) == 2
    for entry in entries:
        in_order = sorted(done[entry.id], key=lambda run: run.started_at or run.created_at)
        for earlier, later in itertools.pairwise(in_order):
            assert earlier.finished_at is not None and later.started_at is not None
            assert earlier.finished_at <= later.started_at, "two loads of one entry overlapped"
        with transaction(factory) as session:
            numbers = {v.run_id: v.number for v in versions.versions_of(session, entry.id)}
        assert [numbers[run.id] for run in in_order] == [1, 2, 3]
        assert js.served(factory, entry).number == 3
    assert all(worker.returncode == 0 for worker in workers)
