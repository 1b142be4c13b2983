"""Who may connect sources and load data: the entry's department (cataloguer, data officer) and
the operator; the department's members see its runs."""

from __future__ import annotations

from kuaishu.accounts.roles import Role
from kuaishu.authz import either, in_department, policy
from kuaishu.catalog.policies import MEMBERS, OPERATOR, _department

LOADERS = in_department(Role.CATALOGUER, Role.DATA_OFFICER, department_of=_department)
OFFICERS = in_department(Role.DATA_OFFICER, department_of=_department)

policy("collect.manage_source", "配置采集来源", either(LOADERS, OPERATOR))
policy("collect.load", "加载数据", either(LOADERS, OPERATOR))
policy("collect.push", "系统推送数据", either(LOADERS, OPERATOR))
policy("collect.cancel", "取消加载任务", either(LOADERS, OPERATOR))
policy("collect.view", "查看采集来源与任务", either(MEMBERS, OPERATOR), scope="read")
policy("store.publish", "发布或回退数据版本", either(OFFICERS, LOADERS, OPERATOR))
# Raw data is its department's alone: the operator oversees metadata and reads data only under a
# grant like anyone else; the platform roles are members of no department (catalog.MEMBERS).
policy("data.read_own", "查询、下载本部门数据", MEMBERS, scope="read")
