"""Where loads run: in this process (embedded mode) or in ``kuaishu worker`` processes.

Every runner only ever receives a run id; the run row is the job's state, so a job survives
its runner: whatever picks it up executes :func:`kuaishu.collect.pipeline.execute`.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.collect.enums import RunStatus
from kuaishu.collect.models import LoadRun
from kuaishu.collect.pipeline import execute, recover_stale
from kuaishu.db import transaction


class Runner(Protocol):
    def submit(self, run_id: int) -> None: ...


class InlineRunner:
    """Runs the load at once in the caller's thread (CLI, tests)."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    def submit(self, run_id: int) -> None:
        execute(self.factory, run_id)


class ThreadRunner:
    """Runs loads on a small pool of threads inside the serving process (embedded mode)."""

    def __init__(self, factory: sessionmaker[Session], threads: int = 2) -> None:
        self.factory = factory
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kuaishu-load")
        self.futures: dict[int, Future[None]] = {}

    def submit(self, run_id: int) -> None:
        self.futures[run_id] = self.pool.submit(execute, self.factory, run_id)

    def wait(self, run_id: int, timeout: float | None = None) -> None:
        future = self.futures.get(run_id)
        if future is not None:
            future.result(timeout)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)


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
