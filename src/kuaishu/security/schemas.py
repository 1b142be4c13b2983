"""Response bodies of the audit API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kuaishu.schemas import Output


class AuditEventOut(Output):
    id: int
    occurred_at: datetime
    request_id: str | None
    actor_user_id: int | None
    actor_username: str
    actor_department_id: int | None
    actor_role: str | None
    action: str
    target_type: str | None
    target_id: str | None
    purpose: str | None
    outcome: str
    client_addr: str | None
    details: dict[str, Any] | None
