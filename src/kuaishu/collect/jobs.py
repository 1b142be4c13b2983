"""Where loads run: in this process (embedded mode) or in ``kuaishu worker`` processes.

Every runner only ever receives a run id; the run row is the job's state, so a job survives
its runner: whatever picks it up executes :func:`kuaishu.collect.pipeline.execute`, which claims
the run atomically, so a run handed to two runners still loads once.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.collect.enums import RunStatus
from kuaishu.collect.models import LoadRun
from kuaishu.collect.pipeline import execute
from kuaishu.collect.recovery import recover_stale
from kuaishu.db import transaction
from kuaishu.errors import AppError

log = logging.getLogger(__name__)

RUNNER_KINDS = ("thread", "queue", "inline")
SCHEDULE_SECONDS = 30.0


class Runner(Protocol):
    def submit(self, run_id: int) -> None: ...


class ClosableRunner(Runner, Protocol):
    def close(self) -> None: ...


class JobsSettingInvalid(AppError):
    status = 500
    code = "jobs_setting_invalid"
    message = "KUAISHU_JOBS 应为 thread、queue 或 inline，而不是“{value}”。"


class InlineRunner:
    """Runs the load at once in the caller's thread (CLI, tests)."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    def submit(self, run_id: int) -> None:
        execute(self.factory, run_id)

    def close(self) -> None:
        return None


class ThreadRunner:
    """Runs loads on a small pool of threads inside the serving process (embedded mode)."""

    def __init__(self, factory: sessionmaker[Session], threads: int = 2) -> None:
        self.factory = factory
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kuaishu-load")
        self.futures: dict[int, Future[None]] = {}

    def submit(self, run_id: int) -> None:
        future = self.pool.submit(execute, self.factory, run_id)
        self.futures[run_id] = future
        future.add_done_callback(lambda _done: self.futures.pop(run_id, None))

    def wait(self, run_id: int, timeout: float | None = None) -> None:
        future = self.futures.get(run_id)
        if future is not None:
            future.result(timeout)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)

    def close(self) -> None:
        """Finish the loads under way; those not started stay queued for the next start-up."""
        self.pool.shutdown(wait=True, cancel_futures=True)


def make_runner(
    kind: str, factory: sessionmaker[Session], *, threads: int, database_url: str
) -> ClosableRunner:
    """The runner ``KUAISHU_JOBS`` names: thread (embedded), queue (workers), inline."""
    if kind == "thread":
        return ThreadRunner(factory, threads)
    if kind == "inline":
        return InlineRunner(factory)
    if kind == "queue":
        from kuaishu.collect.queue import QueueRunner

        return QueueRunner(factory, database_url)
    raise JobsSettingInvalid(value=kind)


def resume(factory: sessionmaker[Session], runner: Runner) -> list[int]:
    """At start-up: fail the runs a dead process left running, re-submit queued ones."""
    with transaction(factory) as session:
        recover_stale(session)
        queued = list(
            session.scalars(
                select(LoadRun.id).where(LoadRun.status == RunStatus.QUEUED).order_by(LoadRun.id)
            )
        )
    for run_id in queued:
        runner.submit(run_id)
    return queued


class Background:
    """A process's job machinery: recovery at start-up, the scheduler loop, then the runner's end."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        runner: ClosableRunner,
        *,
        schedule_seconds: float | None = SCHEDULE_SECONDS,
    ) -> None:
        self.factory = factory
        self.runner = runner
        self.schedule_seconds = schedule_seconds
        self.stop_event = threading.Event()
        self.scheduler: threading.Thread | None = None

    def start(self) -> list[int]:
        """Recover and re-submit what a previous process left; start ticking the schedules."""
        resumed = resume(self.factory, self.runner)
        if self.schedule_seconds:
            # Imported here: the scheduler imports this module for its Runner type.
            from kuaishu.collect.scheduler import run_forever

            self.scheduler = threading.Thread(
                target=run_forever,
                args=(self.factory, self.runner, self.stop_event, self.schedule_seconds),
                name="kuaishu-scheduler",
                daemon=True,
            )
            self.scheduler.start()
        return resumed

    def stop(self) -> None:
        self.stop_event.set()
        if self.scheduler is not None:
            # A tick in progress finishes its transaction; a daemon thread never blocks exit.
            self.scheduler.join(timeout=10)
        self.runner.close()
