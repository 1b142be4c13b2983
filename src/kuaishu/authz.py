"""Authorization: one named policy per operation, checked in the service layer; deny by default.

A domain declares its operations with :func:`policy`; :func:`authorize` looks the name up and
raises :class:`PermissionDenied` unless the policy grants it. An operation with no policy is denied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kuaishu.accounts.actor import Actor
from kuaishu.accounts.roles import Role
from kuaishu.errors import PermissionDenied

# A rule answers with the (department, role) that grants the operation, or None.
Grant = tuple[int | None, Role | None]
Rule = Callable[[Actor, Any], Grant | None]


@dataclass(frozen=True)
class Operation:
    name: str
    description: str
    rule: Rule
    scope: str  # the API-key scope that covers it


REGISTRY: dict[str, Operation] = {}


def policy(name: str, description: str, rule: Rule, *, scope: str = "write") -> Operation:
    """Declare operation ``name`` and the rule that permits it."""
    if name in REGISTRY:
        raise ValueError(f"operation {name!r} declared twice")
    operation = Operation(name=name, description=description, rule=rule, scope=scope)
    REGISTRY[name] = operation
    return operation


class Denied(PermissionDenied):
    """A refused operation; the error handler records it in the audit trail."""

    def __init__(self, operation: str, target: Any = None) -> None:
        super().__init__(details={"operation": operation})
        self.operation = operation
        self.target = target
        # Read now, while the target is live: the error handler records the refusal after the
        # request's session has rolled back, when an ORM target can no longer be loaded.
        self.target_id = getattr(target, "id", None)
        self.target_type = type(target).__name__.lower() if self.target_id is not None else None


def check(actor: Actor, operation: str, target: Any = None) -> Grant | None:
    """The grant for ``operation`` on ``target``, or None; never raises."""
    found = REGISTRY.get(operation)
    if found is None:
        return None
    if actor.scopes is not None and found.scope not in actor.scopes:
        return None
    return found.rule(actor, target)


def authorize(actor: Actor, operation: str, target: Any = None) -> Grant:
    """The grant for ``operation``; raises :class:`Denied` when there is none."""
    grant = check(actor, operation, target)
    if grant is None:
        raise Denied(operation, target)
    return grant


# Rule builders -------------------------------------------------------------------------------


def anyone_signed_in(actor: Actor, _target: Any) -> Grant | None:
    if not actor.is_authenticated:
        return None
    return actor.primary


def has_any(*roles: Role) -> Rule:
    """Granted to holders of any of ``roles``, in any department."""

    def rule(actor: Actor, _target: Any) -> Grant | None:
        for department_id, role in sorted(actor.roles, key=lambda r: (r[1], r[0])):
            if role in roles:
                return department_id, role
        return None

    return rule


def in_department(*roles: Role, department_of: Callable[[Any], int | None]) -> Rule:
    """Granted to holders of ``roles`` in the department the target belongs to."""

    def rule(actor: Actor, target: Any) -> Grant | None:
        department_id = department_of(target)
        for role in roles:
            if actor.has_role_in(role, department_id):
                return department_id, role
        return None

    return rule


def either(*rules: Rule) -> Rule:
    def rule(actor: Actor, target: Any) -> Grant | None:
        for candidate in rules:
            grant = candidate(actor, target)
            if grant is not None:
                return grant
        return None

    return rule
