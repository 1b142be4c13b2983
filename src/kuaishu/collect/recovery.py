"""Runs a dead process left behind (``kill -9``, a crash, a restart): found by their silent
heartbeat or their vanished process, marked failed, their entry's lease freed, their partial
files and input removed. The version served before them is untouched — it was never replaced.

A finished run's uploaded input is removed when the run ends, or kept for
``KUAISHU_KEEP_INPUTS_HOURS`` and then swept (:func:`sweep_inputs`)."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuaishu.collect.enums import FINISHED, RunStatus
from kuaishu.collect.models import LoadRun
from kuaishu.db import utcnow
from kuaishu.settings import get_settings
from kuaishu.store import services as versions
from kuaishu.store import storage

# A running load beats every few seconds; silent this long, it is taken for dead.
STALE_AFTER = timedelta(seconds=30)


def mark_failed(
    run: LoadRun | None,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    status: RunStatus = RunStatus.FAILED,
) -> None:
    if run is None:
        return
    run.status = status
    run.error_code, run.error_message, run.error_details = code, message, details
    run.finished_at = utcnow()
    run.phase = "已取消" if status == RunStatus.CANCELLED else "失败"


def recover_stale(session: Session, *, entry_id: int | None = None) -> list[int]:
    """Mark runs whose process died (``kill -9``, a crash, a restart) as failed; free their lease."""
    now = utcnow()
    # A row locked right now belongs to a live process (publishing, beating): not ours to fail.
    stmt = (
        select(LoadRun).where(LoadRun.status == RunStatus.RUNNING).with_for_update(skip_locked=True)
    )
    if entry_id is not None:
        stmt = stmt.where(LoadRun.entry_id == entry_id)
    recovered: list[int] = []
    for run in session.scalars(stmt):
        if not _is_dead(run, now):
            continue
        mark_failed(
            run,
            "load_interrupted",
            "加载进程意外中断（如被强制终止或服务重启）；此前发布的数据版本未受影响。",
        )
        versions.release_lease(session, run.entry_id, run.id)
        storage.remove(storage.staging_path(run.entry_id, run.id))  # its partial files
        release_input(run)
        recovered.append(run.id)
    return recovered


def release_input(run: LoadRun) -> None:
    """A finished run's input file: removed now, unless KUAISHU_KEEP_INPUTS_HOURS keeps it."""
    if get_settings().keep_inputs_hours or run.status not in FINISHED or not run.input_path:
        return
    if storage.discard(storage.resolve(run.input_path)):
        run.input_path = None


def sweep_inputs(session: Session) -> list[int]:
    """Remove the inputs of runs that finished more than KUAISHU_KEEP_INPUTS_HOURS ago."""
    cutoff = utcnow() - timedelta(hours=get_settings().keep_inputs_hours)
    stmt = select(LoadRun).where(
        LoadRun.status.in_(FINISHED),
        LoadRun.input_path.is_not(None),
        LoadRun.finished_at <= cutoff,
    )
    swept = []
    for run in session.scalars(stmt.with_for_update(skip_locked=True)):
        if storage.discard(storage.resolve(str(run.input_path))):
            run.input_path = None
            swept.append(run.id)
    return swept


def _is_dead(run: LoadRun, now: Any) -> bool:
    """Its process is gone (same host), or it has not been heard from for a while."""
    if run.heartbeat_at is None or now - run.heartbeat_at > STALE_AFTER:
        return True
    host, _, pid = (run.worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
