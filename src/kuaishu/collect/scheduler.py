"""Scheduled loads (定时采集): each source whose cron time has come is queued by exactly one process.

Any number of processes may tick (the serving process, every worker): a source is claimed by a
conditional UPDATE that moves ``next_run_at`` on only if it still holds the value the process read,
so whichever commits first queues the load and the others find nothing to claim.

A scheduled load acts for the person who set the source up, authorized afresh at every run: once
they are disabled or lose the right to load the entry, the schedule stops loading and each due
time leaves a failed run saying why, where the department sees it. A source set up from the
server's command line (no person) runs as the scheduler, with the command line's standing.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.accounts.actor import Actor
from kuaishu.accounts.roles import Role
from kuaishu.authz import Denied
from kuaishu.collect import schedule
from kuaishu.collect.enums import RunStatus
from kuaishu.collect.jobs import Runner
from kuaishu.collect.models import LoadRun, Source
from kuaishu.collect.services import loadable_entry, queue_load
from kuaishu.db import transaction, utcnow
from kuaishu.errors import AppError, PermissionDenied
from kuaishu.security import audit
from kuaishu.security.models import Outcome

log = logging.getLogger(__name__)

# Sources created at the server's shell have no person behind them; like the command line, the
# scheduler then acts as the platform operator, and every event names it "scheduler".
SCHEDULER = Actor(
    user_id=None,
    username="scheduler",
    auth_method="schedule",
    roles=frozenset({(0, Role.PLATFORM_OPERATOR)}),
)


def due_sources(session: Session, now: datetime) -> list[Source]:
    """Enabled, scheduled sources whose next load time is ``now`` or earlier, oldest first."""
    return list(
        session.scalars(
            select(Source)
            .where(
                Source.enabled.is_(True),
                Source.schedule.is_not(None),
                Source.next_run_at <= now,
            )
            .order_by(Source.next_run_at, Source.id)
        )
    )


def tick(factory: sessionmaker[Session], runner: Runner, now: datetime | None = None) -> list[int]:
    """Queue a load of every due source this process claims; returns the runs it submitted."""
    now = now or utcnow()
    with transaction(factory) as session:
        due = [(source.id, source.next_run_at) for source in due_sources(session, now)]
    queued: list[int] = []
    for source_id, due_at in due:
        assert due_at is not None
        run_id = claim(factory, source_id, due_at, now)
        if run_id is not None:
            queued.append(run_id)
    for run_id in queued:
        runner.submit(run_id)
    return queued


def claim(
    factory: sessionmaker[Session], source_id: int, due_at: datetime, now: datetime
) -> int | None:
    """Queue the source's load if this process is the one to move its next time on from
    ``due_at``; None when another process already did (or the load was refused)."""
    with transaction(factory) as session:
        source = session.get(Source, source_id)
        if source is None or not source.schedule:
            return None
        try:
            # Missed times (the platform was down) are not made up: one load, then the next time.
            following: datetime | None = schedule.next_after(source.schedule, now)
        except AppError:
            following = None
        claimed = session.execute(
            update(Source)
            .where(Source.id == source_id, Source.next_run_at == due_at, Source.enabled.is_(True))
            .values(next_run_at=following)
            .execution_options(synchronize_session=False)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            return None
        try:
            with session.begin_nested():
                if following is None:
                    schedule.validate(source.schedule)
                entry = loadable_entry(session, entry_id=source.entry_id)
                run = queue_load(
                    session,
                    actor=_acting_for(session, source),
                    entry=entry,
                    source=source,
                    trigger="schedule",
                )
                return run.id
        except AppError as error:
            _refused(session, source, error, now)
            return None


def _acting_for(session: Session, source: Source) -> Actor:
    """The source's creator, as they are now (roles re-read), or the scheduler for none."""
    from kuaishu.accounts.auth import actor_for
    from kuaishu.accounts.models import User

    if source.created_by is None:
        return SCHEDULER
    user = session.get(User, source.created_by)
    if user is None or not user.is_active:
        raise PermissionDenied(
            "定时加载未执行：来源“{name}”的创建人账号已停用或不存在；请由本部门有权限的人员重新配置来源。",
            code="schedule_owner_inactive",
            name=source.name,
        )
    return actor_for(user, auth_method="schedule")


def _refused(session: Session, source: Source, error: AppError, now: datetime) -> None:
    """A due time that could not load leaves a failed run, so the department sees why."""
    if isinstance(error, Denied):
        error = PermissionDenied(
            "定时加载未执行：来源“{name}”的创建人已无权加载该资源的数据；请由本部门有权限的人员重新配置来源。",
            code="schedule_owner_denied",
            name=source.name,
        )
    message = error.localized()
    run = LoadRun(
        entry_id=source.entry_id,
        source_id=source.id,
        status=RunStatus.FAILED,
        trigger="schedule",
        requested_by=source.created_by,
        error_code=error.code,
        error_message=message,
        phase="失败",
        log=[{"at": now.isoformat(), "message": message}],
        finished_at=now,
    )
    session.add(run)
    session.flush()
    audit.record(
        session,
        SCHEDULER,
        "collect.schedule_refused",
        target_type="source",
        target_id=source.id,
        outcome=Outcome.FAILURE,
        details={"run": run.id, "code": error.code},
    )


def run_forever(
    factory: sessionmaker[Session],
    runner: Runner,
    stop_event: threading.Event,
    interval: float = 30.0,
) -> None:
    """Tick every ``interval`` seconds until ``stop_event`` is set; a failed tick is logged."""
    from kuaishu.periodic import run_periodic

    while not stop_event.is_set():
        try:
            tick(factory, runner)
        except Exception:
            log.exception("scheduled loads: tick failed; trying again in %s s", interval)
        run_periodic(factory)
        stop_event.wait(interval)
