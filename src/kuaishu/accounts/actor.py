"""Who is acting: the identity every service receives and every audit event records."""

from __future__ import annotations

from dataclasses import dataclass, field

from kuaishu.accounts.roles import AccountKind, Role


@dataclass(frozen=True, slots=True)
class Actor:
    """The signed-in user (or the system), with the roles they hold and where the request came from."""

    user_id: int | None
    username: str
    kind: AccountKind = AccountKind.STAFF
    roles: frozenset[tuple[int, Role]] = field(default_factory=frozenset)
    client_addr: str | None = None
    request_id: str | None = None
    auth_method: str = "system"  # session | api_key | cli | system
    scopes: frozenset[str] | None = None  # an API key's scopes; None = unrestricted

    @property
    def is_authenticated(self) -> bool:
        """A signed-in user, or the server's own command line."""
        return self.user_id is not None or self.auth_method == "cli"

    def has_role(self, role: Role) -> bool:
        return any(held == role for _dept, held in self.roles)

    def has_role_in(self, role: Role, department_id: int | None) -> bool:
        return department_id is not None and (department_id, role) in self.roles

    def departments_with(self, role: Role) -> set[int]:
        return {dept for dept, held in self.roles if held == role}

    @property
    def department_ids(self) -> set[int]:
        return {dept for dept, _role in self.roles}

    @property
    def primary(self) -> tuple[int | None, Role | None]:
        """The (department, role) to show for this actor when no policy chose one."""
        if not self.roles:
            return None, None
        dept, role = sorted(self.roles, key=lambda item: (list(Role).index(item[1]), item[0]))[0]
        return dept, role


SYSTEM = Actor(user_id=None, username="system", auth_method="system")
