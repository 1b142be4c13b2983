"""Submit, approve or publish a selection of entries (decision 0021).

Each entry goes through the same service function as a single action — same authorization,
same transition rules, same audit event — inside its own savepoint. An entry that is refused
leaves no trace of a half-done change, the refusal is in the audit trail, and the outcome of
every entry is reported: partial success is never silent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from kuaishu.accounts.actor import Actor
from kuaishu.authz import Denied
from kuaishu.catalog import services
from kuaishu.errors import AppError
from kuaishu.security import audit
from kuaishu.security.models import Outcome

MAX_SELECTION = 500
MAX_ID = 2**31 - 1  # an entry id fits the database's integer


class BulkAction(StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    PUBLISH = "publish"


@dataclass(frozen=True)
class EntryOutcome:
    id: int
    ok: bool
    code: str | None = None  # the entry's resource code, only when the action succeeded
    state: str | None = None
    error: str | None = None  # stable error code
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _runner(action: BulkAction, flag_decision: str) -> Callable[[Session, int, Actor], str]:
    def submit(session: Session, entry_id: int, actor: Actor) -> str:
        return str(services.submit(session, entry_id, actor=actor).state)

    def approve(session: Session, entry_id: int, actor: Actor) -> str:
        revision = services.approve(session, entry_id, actor=actor, flag_decision=flag_decision)
        return str(revision.state)

    def publish(session: Session, entry_id: int, actor: Actor) -> str:
        return str(services.publish(session, entry_id, actor=actor).status)

    return {BulkAction.SUBMIT: submit, BulkAction.APPROVE: approve, BulkAction.PUBLISH: publish}[
        action
    ]


def act(
    session: Session,
    *,
    actor: Actor,
    action: BulkAction,
    ids: Sequence[int],
    flag_decision: str = "",
) -> list[EntryOutcome]:
    """Apply ``action`` to each entry on its own; one outcome per distinct id, in order."""
    run = _runner(action, flag_decision)
    outcomes: list[EntryOutcome] = []
    for entry_id in dict.fromkeys(ids):
        try:
            with session.begin_nested():
                state = run(session, entry_id, actor)
            outcomes.append(
                EntryOutcome(entry_id, True, services.get_entry(session, entry_id).code, state)
            )
        except AppError as exc:
            _record_refusal(session, actor, action, entry_id, exc)
            outcomes.append(EntryOutcome(entry_id, False, error=exc.code, message=exc.localized()))
    return outcomes


def _record_refusal(
    session: Session, actor: Actor, action: BulkAction, entry_id: int, exc: AppError
) -> None:
    details = {"bulk": True, "error": exc.code}
    if isinstance(exc, Denied):
        audit.record_denial(session, actor, exc, details)
        return
    audit.record(
        session,
        actor,
        f"catalog.{action}",
        target_type="catalog_entry",
        target_id=entry_id,
        outcome=Outcome.FAILURE,
        details=details,
    )
