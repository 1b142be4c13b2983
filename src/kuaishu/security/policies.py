"""Who may read the audit trail: security auditors, and nobody else."""

from __future__ import annotations

from kuaishu.accounts.roles import Role
from kuaishu.authz import has_any, policy

AUDITOR = has_any(Role.SECURITY_AUDITOR)

policy("audit.read", "查阅审计日志", AUDITOR, scope="read")
policy("audit.export", "导出审计日志", AUDITOR, scope="read")
