"""Recording audit events — in the caller's transaction, so an event exists iff the change does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from kuaishu.accounts.actor import Actor
from kuaishu.accounts.roles import Role
from kuaishu.security.crypto import keyring
from kuaishu.security.models import AuditEvent, Outcome

if TYPE_CHECKING:
    from kuaishu.authz import Denied


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    target_type: str | None = None,
    target_id: object = None,
    purpose: str | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    details: dict[str, Any] | None = None,
    as_role: tuple[int | None, Role | None] | None = None,
) -> AuditEvent:
    """Add one event to ``session``; it commits or rolls back with the caller's change."""
    department_id, role = as_role if as_role is not None else actor.primary
    audit_event = AuditEvent(
        request_id=actor.request_id,
        actor_user_id=actor.user_id,
        actor_username=actor.username,
        actor_department_id=department_id,
        actor_role=str(role) if role else None,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        purpose=purpose,
        outcome=outcome,
        client_addr=actor.client_addr,
        details=details,
    )
    session.add(audit_event)
    return audit_event


def record_denial(
    session: Session,
    actor: Actor,
    denied: Denied,
    details: dict[str, Any],
    *,
    purpose: str | None = None,
) -> AuditEvent:
    """A refused operation, in the trail like any event: its operation, target, the purpose the
    caller declared, and where it was asked (a request's method and path, a delivery's
    subscription)."""
    return record(
        session,
        actor,
        denied.operation,
        outcome=Outcome.DENIED,
        target_type=denied.target_type,
        target_id=denied.target_id,
        purpose=purpose or None,
        details=details,
    )


LOOKUP_KEY = "audit.lookup-key"


def keyed(value: str) -> str:
    """A looked-up key value (an ID number, say) as the trail and the access log keep it: its
    HMAC-SM3 under a key derived from the master key. Equal values give equal digests, so an
    auditor can still find every lookup of one person (:func:`keyed` of the value); the value
    itself is stored nowhere."""
    return "hmac-sm3:" + keyring().digest(LOOKUP_KEY, value)
