"""Who may set how an entry's data is cleaned and masked: the department that loads it, and the operator;
every member of the department may read the policy."""

from __future__ import annotations

from kuaishu.authz import either, policy
from kuaishu.catalog.policies import MEMBERS, OPERATOR
from kuaishu.collect.policies import LOADERS, OFFICERS

policy("clean.manage_rules", "设置清洗规则", either(LOADERS, OPERATOR))
policy("clean.manage_masking", "设置脱敏策略", either(LOADERS, OPERATOR))
policy("clean.view", "查看清洗规则、脱敏策略与质量报告", either(MEMBERS, OPERATOR), scope="read")
policy("clean.override_release", "k 匿名检查未通过时仍发布（须说明理由）", OPERATOR)
# Reversing SM4 masking needs the key permission: the entry's own chief data officer.
policy("clean.decrypt", "解密加密脱敏的值", OFFICERS)
