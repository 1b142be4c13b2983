"""Runs a dead process left behind (``kill -9``, a crash, a restart): found by their silent
heartbeat or their vanished process, marked failed, their entry's lease freed. The version served
before them is untouched — it was never replaced."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuaishu.collect.enums import RunStatus
from kuaishu.collect.models import LoadRun
from kuaishu.db import utcnow
from kuaishu.store import services as versions

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
        recovered.append(run.id)
    return recovered


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
