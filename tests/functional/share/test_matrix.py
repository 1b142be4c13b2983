"""The exchange's authorization matrix, generated: every role × the reader's relation to the data
(owner, grantee, other department, public) × share type × grant state (none, pending, active,
expired, suspended, revoked) × access method — the expected answer computed from the rules the
policies state, the actual one from the real services on real data. Where a read is allowed, it
holds only the granted fields and rows, masked as the sharing channel and the grant say."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.orm import Session

from kuaishu.accounts.actor import Actor
from kuaishu.accounts.roles import DEPARTMENT_ROLES, AccountKind, Role
from kuaishu.calendar import china_today
from kuaishu.catalog.models import CatalogEntry
from kuaishu.errors import AppError
from kuaishu.share import feed
from kuaishu.share.enums import AccessMethod, ApplicationState, GrantState
from kuaishu.share.grants import served_by_grant
from kuaishu.share.models import ShareApplication, ShareGrant
from kuaishu.store import reads
from kuaishu.store.exports import Format
from kuaishu.store.query import ReadRequest
from tests.functional.share.conftest import Exchange

RELATIONS = ("owner", "grantee", "other", "public")
SHARE_TYPES = ("unconditional", "conditional", "not_shared")
STATES = ("none", "pending", "active", "expired", "suspended", "revoked")
METHODS = tuple(AccessMethod)
READERS = {Role.CONSUMER, Role.DATA_OFFICER}
GRANTED_FIELDS = ["身份证号", "姓名", "补助金额"]
ROW_FILTER = [["区划代码", "520102"]]
MASKING = [{"item": "身份证号", "method": "mask", "params": {"first": 6, "last": 4}}]
# Granted: query, lookup and the change feed — not download, not table sync.
GRANTED_METHODS = (AccessMethod.QUERY, AccessMethod.LOOKUP, AccessMethod.SUBSCRIBE)


@dataclass(frozen=True)
class Case:
    role: Role | None  # None: a public (non-staff) user
    relation: str
    share_type: str
    state: str
    method: AccessMethod

    def expected(self) -> bool:
        """The rule, as the policies and the exchange state it."""
        if self.relation == "public" or self.role is None:
            return False
        if self.state == "none" or self.state == "pending":
            # No grant: only the owner's own members read, through the data API — not the
            # platform roles (operator, security administrator, auditor), even seated there.
            return self.relation == "owner" and self.role in DEPARTMENT_ROLES
        return (
            self.relation == "grantee"
            and self.role in READERS
            and self.state == "active"
            and self.method in GRANTED_METHODS
        )


CASES = [
    Case(role, relation, share_type, state, method)
    for role, relation, share_type, state, method in itertools.product(
        [*Role, None], RELATIONS, SHARE_TYPES, STATES, METHODS
    )
    # not-shared entries never get applications or grants; only "none" exists for them
    if not (share_type == "not_shared" and state != "none")
    if (relation == "public") == (role is None)
]


@pytest.fixture(scope="module")
def departments(exchange: Exchange) -> dict[str, int]:
    with exchange.factory() as db:
        provider = db.get(CatalogEntry, exchange.entries["unconditional"]["id"])
        assert provider is not None
        found = {"owner": provider.department_id}
        from kuaishu.accounts.models import Department

        others = [
            d.id
            for d in db.query(Department).order_by(Department.id)
            if d.id != provider.department_id
        ]
        found["grantee"], found["other"] = others[0], others[1]
        return found


@pytest.fixture(scope="module")
def grants(exchange: Exchange, departments: dict[str, int]) -> Iterator[dict[tuple[str, str], int]]:
    """A grant (or application) in each state for each shareable entry, made directly."""
    made: dict[tuple[str, str], int] = {}
    with exchange.factory() as db:
        today = china_today()
        for share_type in ("unconditional", "conditional"):
            entry_id = exchange.entries[share_type]["id"]
            for state in STATES[1:]:
                if state == "pending":
                    db.add(
                        ShareApplication(
                            entry_id=entry_id,
                            provider_department_id=departments["owner"],
                            consumer_department_id=departments["grantee"],
                            state=ApplicationState.SUBMITTED,
                            purpose="核验",
                            due_on=today,
                        )
                    )
                    continue
                grant = ShareGrant(
                    entry_id=entry_id,
                    provider_department_id=departments["owner"],
                    consumer_department_id=departments["grantee"],
                    purpose="核验",
                    fields=GRANTED_FIELDS,
                    row_filter=ROW_FILTER,
                    masking=MASKING,
                    methods=list(GRANTED_METHODS),
                    expires_on=today - timedelta(days=1) if state == "expired" else None,
                    state=GrantState.ACTIVE if state == "expired" else GrantState(state),
                )
                db.add(grant)
                db.flush()
                made[(share_type, state)] = grant.id
        db.commit()
    yield made


def _actor(case: Case, departments: dict[str, int]) -> Actor:
    if case.role is None:
        return Actor(
            user_id=9000, username="citizen", kind=AccountKind.PUBLIC, auth_method="session"
        )
    department = departments["owner" if case.relation == "owner" else case.relation]
    return Actor(
        user_id=9001,
        username=f"{case.role}",
        roles=frozenset({(department, case.role)}),
        auth_method="session",
    )


def _read(db: Session, actor: Actor, case: Case, code: str, grant_id: int | None) -> Any:
    """The read of ``case.method``: under the grant (the change feed for subscribe and sync), or
    — without one — through the data API."""
    if grant_id is None:
        locate = None
    else:
        grant = db.get(ShareGrant, grant_id)
        assert grant is not None

        def locate(number: int | None) -> reads.Served:
            return served_by_grant(db, actor=actor, grant=grant, method=case.method, number=number)

    if grant_id is not None and case.method in (AccessMethod.SUBSCRIBE, AccessMethod.SYNC):
        grant = db.get(ShareGrant, grant_id)
        assert grant is not None
        page = feed.read(
            db, actor=actor, grant=grant, cursor=feed.START, limit=100, method=case.method
        )
        names = [o.name for o in page.outputs]
        rows = [tuple(c["row"][n] for n in names) for c in page.changes]
        assert all(c["op"] == "added" for c in page.changes)
        return SimpleNamespace(outputs=page.outputs, rows=rows)
    if case.method == AccessMethod.LOOKUP:
        return reads.lookup(
            db, actor=actor, code=code, keys={"key": "520102199001010001"}, locate=locate
        )
    if case.method == AccessMethod.DOWNLOAD:
        found = reads.download(
            db, actor=actor, code=code, request=ReadRequest(), fmt=Format.JSONL, locate=locate
        )
        return b"".join(found.body)
    return reads.query_data(
        db, actor=actor, code=code, request=ReadRequest(limit=100), locate=locate
    )


def test_every_case_is_generated() -> None:
    roles = len(Role) + 1
    per_entry_type = len(RELATIONS) * len(STATES) * len(METHODS)
    assert (
        len(CASES) > roles * per_entry_type
    )  # every role, every relation, every state, every method
    assert {c.state for c in CASES} == set(STATES) and {c.relation for c in CASES} == set(RELATIONS)


@pytest.mark.parametrize(
    "case", CASES, ids=lambda c: f"{c.role}-{c.relation}-{c.share_type}-{c.state}-{c.method}"
)
def test_matrix(
    exchange: Exchange, departments: dict[str, int], grants: dict[tuple[str, str], int], case: Case
) -> None:
    actor = _actor(case, departments)
    code = exchange.entries[case.share_type]["code"]
    grant_id = grants.get((case.share_type, case.state))
    with exchange.factory() as db:
        try:
            result = _read(db, actor, case, code, grant_id)
        except AppError as error:
            assert not case.expected(), f"refused ({error.code}) but should be allowed"
            assert error.status in (401, 403, 404, 409, 429), error.code
            return
        finally:
            db.rollback()
    assert case.expected(), "allowed but should be refused"
    if grant_id is None or case.method == AccessMethod.DOWNLOAD:
        return
    # Allowed under a grant: only the granted fields and rows, masked by the grant's override.
    names = [o.name for o in result.outputs]
    assert names == GRANTED_FIELDS
    ids = [row[0] for row in result.rows]
    assert ids, "the grant's rows are there"
    for value in ids:
        assert value[6:14] == "********", value  # masked, never the stored ID
    stored = {r["身份证号"]: r for r in exchange.rows}
    for row in result.rows:
        assert row[1] is None  # 姓名: sensitive without a share rule → NULL
        matching = [r for i, r in stored.items() if i[:6] == row[0][:6] and i[-4:] == row[0][-4:]]
        assert matching and matching[0]["区划代码"] == "520102"
