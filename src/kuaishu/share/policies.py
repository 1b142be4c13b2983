"""Who does what in the sharing exchange.

A consuming department (its consumer users and its chief data officer) applies for another
department's shareable entry; the providing department's chief data officer answers and manages
the grants; the operator arbitrates and oversees; every member of the consuming department reads
under the department's grant; both sides see an application and its grant.
"""

from __future__ import annotations

from typing import Any

from kuaishu.accounts.actor import Actor
from kuaishu.accounts.roles import DEPARTMENT_ROLES, Role
from kuaishu.authz import Grant, either, has_any, in_department, policy

OPERATOR = has_any(Role.PLATFORM_OPERATOR)
APPLICANT_ROLES = (Role.CONSUMER, Role.DATA_OFFICER)
STAFF_ROLES = tuple(sorted(DEPARTMENT_ROLES))  # not the platform roles


def _provider(target: Any) -> int | None:
    """The providing department of an entry, application or grant (or a department id)."""
    if isinstance(target, int):
        return target
    found = getattr(target, "provider_department_id", None)
    return found if found is not None else getattr(target, "department_id", None)


def _consumer(target: Any) -> int | None:
    return getattr(target, "consumer_department_id", None)


def _applicant(actor: Actor, target: Any) -> Grant | None:
    """A consumer or chief data officer of a department other than the provider."""
    provider = _provider(target)
    for department_id, role in sorted(actor.roles, key=lambda r: (r[1], r[0])):
        if role in APPLICANT_ROLES and department_id != provider:
            return department_id, role
    return None


def _staff(actor: Actor, _target: Any) -> Grant | None:
    return has_any(*STAFF_ROLES)(actor, _target)


PROVIDER_OFFICER = in_department(Role.DATA_OFFICER, department_of=_provider)
CONSUMER_MEMBERS = in_department(*STAFF_ROLES, department_of=_consumer)
PROVIDER_MEMBERS = in_department(*STAFF_ROLES, department_of=_provider)

policy("share.browse", "浏览共享目录", either(_staff, OPERATOR), scope="read")
policy("share.apply", "申请共享（无条件共享即时授权）", _applicant)
policy("share.decide", "答复共享申请", PROVIDER_OFFICER)
policy("share.arbitrate", "仲裁共享争议", OPERATOR)
policy("share.manage_grant", "暂停、恢复、撤销、续期共享授权", either(PROVIDER_OFFICER, OPERATOR))
policy(
    "share.view",
    "查看共享申请与授权",
    either(CONSUMER_MEMBERS, PROVIDER_MEMBERS, OPERATOR),
    scope="read",
)
# Readers are the consuming department's consumers and chief data officer — not its auditors
# (who read the trail and nothing else) nor an operator seated there.
CONSUMER_READERS = in_department(*APPLICANT_ROLES, department_of=_consumer)
policy("share.read", "按授权查询、下载共享数据", CONSUMER_READERS, scope="read")
# Objecting files a record the provider must answer: a write, so a read-only key cannot.
policy("share.object", "对授权数据提出疑义", CONSUMER_READERS)
policy(
    "share.subscribe",
    "登记、暂停、停止数据订阅（推送或库表同步）",
    CONSUMER_READERS,
)
