"""Production jobs: loads deferred to procrastinate, a PostgreSQL task queue, and run by
``kuaishu worker`` processes (docs/decisions/0010-jobs-and-workers.md).

The queue only carries run ids; the run row stays the job's state. Each load job takes the lock
of its entry, so the queue itself never hands two loads of one entry to workers at once (the
entry's lease in the database remains the guarantee), and a periodic job frees what a killed
worker left: its runs are failed, its queue jobs put back to finish as no-ops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

import procrastinate
import procrastinate.schema
import psycopg
from procrastinate.exceptions import AlreadyEnqueued
from psycopg.conninfo import make_conninfo
from sqlalchemy import Engine, inspect, make_url
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.collect import pipeline, recovery
from kuaishu.collect.models import LoadRun
from kuaishu.db import transaction
from kuaishu.errors import AppError, NotFound

log = logging.getLogger(__name__)

QUEUE = "kuaishu-loads"
LOAD_TASK = "kuaishu.collect.load"
RECOVER_TASK = "kuaishu.collect.recover"
SCHEMA_TABLE = "procrastinate_jobs"
SCHEMA_LOCK = 0x6B756169  # "kuai": serialises two ``kuaishu init`` creating the schema at once


class QueueNeedsPostgres(AppError):
    status = 500
    code = "queue_needs_postgresql"
    message = (
        "任务队列与 kuaishu worker 需要 PostgreSQL 数据库（KUAISHU_DATABASE_URL）；"
        "嵌入模式（SQLite）下，加载在服务进程内运行，无需 worker。"
    )


class QueueSchemaMissing(AppError):
    status = 500
    code = "queue_schema_missing"
    message = "任务队列的数据表尚未创建，请先运行 kuaishu init。"


def is_postgres(database_url: str) -> bool:
    return make_url(database_url).get_backend_name() == "postgresql"


def conninfo(database_url: str) -> str:
    """libpq's connection string for a SQLAlchemy URL (``postgresql+psycopg://`` is not libpq's)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise QueueNeedsPostgres()
    params: dict[str, Any] = {
        "host": url.host,
        "port": url.port,
        "dbname": url.database,
        "user": url.username,
        "password": url.password,
    }
    params.update({k: v if isinstance(v, str) else v[-1] for k, v in url.query.items()})
    return make_conninfo(**{k: v for k, v in params.items() if v is not None})


def ensure_schema(database_url: str) -> bool:
    """Create the queue's tables unless they exist; True when this call created them."""
    with psycopg.connect(conninfo(database_url)) as con:
        con.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        found = con.execute("SELECT to_regclass(%s)", (SCHEMA_TABLE,)).fetchone()
        if found and found[0] is not None:
            return False
        con.execute(procrastinate.schema.SchemaManager.get_schema())
    return True


def has_schema(engine: Engine) -> bool:
    with engine.connect() as connection:
        return inspect(connection).has_table(SCHEMA_TABLE)


def entry_lock(entry_id: int) -> str:
    return f"kuaishu-entry-{entry_id}"


def build_app(connector: procrastinate.BaseConnector) -> procrastinate.App:
    """The queue's tasks: one load, and the periodic recovery after a killed worker."""
    app = procrastinate.App(connector=connector)
    app.task(name=LOAD_TASK, queue=QUEUE, pass_context=True)(_load)
    recover = app.task(
        name=RECOVER_TASK, queue=QUEUE, pass_context=True, queueing_lock=RECOVER_TASK
    )(_recover)
    app.periodic(cron="* * * * *", periodic_id="recover")(recover)
    return app


def _load(context: procrastinate.JobContext, run_id: int) -> None:
    factory: sessionmaker[Session] = context.additional_context["factory"]
    pipeline.execute(factory, run_id)


async def _recover(context: procrastinate.JobContext, timestamp: int) -> None:
    """Fail runs whose worker died; let their queue jobs end (and free the entry's lock)."""
    factory: sessionmaker[Session] = context.additional_context["factory"]
    recovered = await asyncio.to_thread(_recover_runs, factory)
    manager = context.app.job_manager
    stalled = await manager.get_stalled_jobs(task_name=LOAD_TASK)
    for job in stalled:
        # Back to "todo": a worker picks it up, finds its run no longer queued, and is done.
        await manager.retry_job(job)
    if recovered or stalled:
        log.warning(
            "recovered runs %s, put back stalled jobs %s", recovered, [j.id for j in stalled]
        )


def _recover_runs(factory: sessionmaker[Session]) -> list[int]:
    with transaction(factory) as session:
        return recovery.recover_stale(session)


class QueueRunner:
    """Hands runs to the queue; a ``kuaishu worker`` process runs them (never this process)."""

    def __init__(self, factory: sessionmaker[Session], database_url: str) -> None:
        self.factory = factory
        self.app = build_app(
            procrastinate.SyncPsycopgConnector(
                conninfo=conninfo(database_url), min_size=1, max_size=4
            )
        )
        self._opened = False
        self._lock = threading.Lock()

    def submit(self, run_id: int) -> None:
        with transaction(self.factory) as session:
            run = session.get(LoadRun, run_id)
            if run is None:
                raise NotFound("加载任务不存在。", code="run_not_found")
            entry_id = run.entry_id
        self._open()
        deferrer = self.app.configure_task(
            LOAD_TASK, lock=entry_lock(entry_id), queueing_lock=f"kuaishu-run-{run_id}"
        )
        # Re-submitted at start-up while its job still waits: the one job is enough.
        with contextlib.suppress(AlreadyEnqueued):
            deferrer.defer(run_id=run_id)

    def _open(self) -> None:
        with self._lock:
            if not self._opened:
                self.app.open()
                self._opened = True

    def close(self) -> None:
        with self._lock:
            if self._opened:
                self.app.close()
                self._opened = False


def run_worker(
    factory: sessionmaker[Session], database_url: str, *, concurrency: int, name: str
) -> None:
    """Run loads from the queue until SIGINT/SIGTERM (loads under way are finished first)."""
    connector = procrastinate.PsycopgConnector(
        conninfo=conninfo(database_url), min_size=1, max_size=concurrency + 4
    )
    build_app(connector).run_worker(
        queues=[QUEUE],
        concurrency=concurrency,
        name=name,
        additional_context={"factory": factory},
        delete_jobs="successful",
        install_signal_handlers=True,
    )
