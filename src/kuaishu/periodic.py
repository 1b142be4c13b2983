"""Work every process does on the scheduler's beat besides scheduled loads: reminders and
escalation of share applications, deliveries of subscriptions, and the e-mail of pending notifications. Each task is
idempotent (what it sends is marked sent in the same transaction), so any number of processes
may run it; a failing task is logged and tried again on the next beat."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)


def run_periodic(factory: sessionmaker[Session]) -> None:
    from kuaishu.notify.services import deliver
    from kuaishu.share.reminders import tick as share_reminders
    from kuaishu.share.subscriptions import deliver_due

    tasks = (
        ("share reminders", share_reminders),
        ("subscriptions", deliver_due),
        ("e-mail", deliver),
        ("leftover files", sweep_files),
    )
    for name, task in tasks:
        try:
            task(factory)
        except Exception:
            log.exception("%s: failed; trying again on the next beat", name)


def sweep_files(factory: sessionmaker[Session]) -> None:
    """Inputs kept past KUAISHU_KEEP_INPUTS_HOURS, and what killed processes left in the data
    folder: nothing there grows without bound."""
    from kuaishu.collect.recovery import sweep_inputs
    from kuaishu.db import transaction
    from kuaishu.store import storage

    with transaction(factory) as session:
        sweep_inputs(session)
    storage.sweep_leftovers()
