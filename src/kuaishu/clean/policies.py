"""Who may set how an entry's data is masked: the department that loads it, and the operator;
every member of the department may read the policy."""

from __future__ import annotations

from kuaishu.authz import either, policy
from kuaishu.catalog.policies import MEMBERS, OPERATOR
from kuaishu.collect.policies import LOADERS

policy("clean.manage_masking", "设置脱敏策略", either(LOADERS, OPERATOR))
policy("clean.view_masking", "查看脱敏策略", either(MEMBERS, OPERATOR), scope="read")
