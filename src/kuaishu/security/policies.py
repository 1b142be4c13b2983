"""Who may read the audit trail: security auditors, and nobody else."""

from __future__ import annotations

from kuaishu.accounts.roles import Role
from kuaishu.authz import has_any, policy

AUDITOR = has_any(Role.SECURITY_AUDITOR)

policy("audit.read", "查阅审计日志", AUDITOR, scope="read")
policy("audit.export", "导出审计日志", AUDITOR, scope="read")

# The outbound allow list (对外访问白名单) is the platform operator's.
OPERATOR = has_any(Role.PLATFORM_OPERATOR)

policy("egress.view", "查看对外访问白名单", OPERATOR, scope="read")
policy("egress.manage", "管理对外访问白名单", OPERATOR)
