"""``kill -9`` in the middle of a load: the previous version keeps serving, nothing half-written is
visible, the run shows failed after restart, and the next load publishes the next version."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.collect.enums import RunStatus
from kuaishu.collect.jobs import InlineRunner, resume
from kuaishu.collect.models import LoadRun
from kuaishu.db import transaction
from tests.unit.collect import jobs_support as js

BIG_ROWS = 1_500_000  # a few seconds of loading: long enough to be caught in the middle


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return js.write_csv(tmp_path_factory.mktemp("big") / "常住人口.csv", BIG_ROWS)


def _running(factory: sessionmaker[Session], entry: js.Entry, after: int) -> LoadRun | None:
    """The load the subprocess started, once it is running and has reported progress."""
    with transaction(factory) as session:
        run = session.scalar(
            select(LoadRun).where(LoadRun.entry_id == entry.id, LoadRun.id > after)
        )
    if run is None or run.status != RunStatus.RUNNING or run.heartbeat_at is None:
        return None
    assert run.started_at is not None
    return run if run.rows_read > 0 or run.heartbeat_at > run.started_at else None


def test_kill_9_during_a_load(
    factory: sessionmaker[Session],
    load_engine: Engine,
    data_dir: Path,
    big_csv: Path,
    tmp_path: Path,
) -> None:
    entry = js.make_entry(factory)
    first = js.queue_file(factory, entry, js.write_csv(tmp_path / "first.csv", 1000))
    InlineRunner(factory).submit(first)
    before = js.served(factory, entry)
    assert (before.number, js.rows_of(before)) == (1, 1000)

    child = subprocess.Popen(
        [*js.KUAISHU, "ingest", "--resource", entry.code, str(big_csv)],
        env=js.kuaishu_env(load_engine, data_dir, COLUMNS="120"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        killed = js.wait_for(
            lambda: _running(factory, entry, first), timeout=60, message="the load to run"
        )
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    # Nothing changed for readers: same version, same rows, same checksum, no new folder.
    after = js.served(factory, entry)
    assert (after.id, after.checksum_sm3, js.rows_of(after)) == (
        before.id,
        before.checksum_sm3,
        1000,
    )
    assert js.version_folders(entry) == js.referenced(factory, entry) == {before.path}
    assert js.run_of(factory, killed.id).status == RunStatus.RUNNING  # as the dead process left it

    # Restart: the dead process's run is failed, and says why.
    resume(factory, InlineRunner(factory))
    interrupted = js.run_of(factory, killed.id)
    assert interrupted.status == RunStatus.FAILED
    assert interrupted.error_code == "load_interrupted"
    assert "此前发布的数据版本未受影响" in (interrupted.error_message or "")

    # The next load publishes version 2 and sweeps what the killed one left behind.
    InlineRunner(factory).submit(js.queue_file(factory, entry, tmp_path / "first.csv"))
    latest = js.served(factory, entry)
    assert (latest.number, js.rows_of(latest)) == (2, 1000)
    assert js.staging_folders(entry) == []
    assert js.version_folders(entry) == js.referenced(factory, entry)
