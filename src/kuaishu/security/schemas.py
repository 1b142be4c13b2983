"""Response bodies of the audit API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from kuaishu.schemas import Input, Output
from kuaishu.security.models import DestinationKind


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


class AllowedDestinationIn(Input):
    kind: DestinationKind = Field(description="host：主机名/IP/网段；folder：服务器目录")
    value: str = Field(
        min_length=1, max_length=255, description="如 qzj.example.gov.cn、10.1.2.0/24"
    )
    port: int | None = Field(default=None, ge=1, le=65535, description="只允许这个端口（空：任意）")
    note: str = Field(default="", max_length=200, description="为何允许")


class AllowedDestinationOut(Output):
    id: int
    kind: str
    value: str
    port: int | None
    note: str
    created_by: int | None
    created_at: datetime
