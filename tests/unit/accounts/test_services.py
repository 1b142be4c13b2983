"""Account services: departments, users, roles, separation of duties, disabling."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from kuaishu.accounts import auth, services
from kuaishu.accounts.models import ApiKey
from kuaishu.accounts.roles import LevelKind, Role
from kuaishu.errors import Conflict, ValidationFailed
from kuaishu.security.models import AuditEvent
from tests import factories as f


def test_department_code_must_match_region_level(db: Session) -> None:
    province = f.region(db)
    city = f.region(db, code="520100", level=LevelKind.CITY, parent=province)
    with pytest.raises(ValidationFailed) as caught:
        services.create_department(
            db,
            actor=f.ROOT,
            code="52001",
            name="市某局",
            credit_code=f.credit_code(),
            region_id=city.id,
        )
    assert caught.value.code == "invalid_department_code"
    made = services.create_department(
        db,
        actor=f.ROOT,
        code="52101",
        name="贵阳市某局",
        credit_code=f.credit_code(),
        region_id=city.id,
    )
    assert made.code == "52101"


def test_credit_code_checksum_is_enforced(db: Session) -> None:
    province = f.region(db)
    with pytest.raises(ValidationFailed) as caught:
        services.create_department(
            db,
            actor=f.ROOT,
            code="52009",
            name="某局",
            credit_code="91110000600037341A",
            region_id=province.id,
        )
    assert caught.value.code == "invalid_credit_code"


def test_operator_and_auditor_roles_are_exclusive(db: Session) -> None:
    dept = f.department(db)
    with pytest.raises(Conflict) as caught:
        f.user(db, roles=[Role.PLATFORM_OPERATOR, Role.SECURITY_AUDITOR], dept=dept)
    assert caught.value.code == "separation_of_duties"
    operator = f.user(db, roles=[Role.PLATFORM_OPERATOR], dept=dept)
    other = f.department(db)
    with pytest.raises(Conflict):
        services.assign_role(
            db,
            actor=f.ROOT,
            user_id=operator.id,
            department_id=other.id,
            role=Role.SECURITY_AUDITOR,
        )


def test_disabling_revokes_keys_and_is_audited(db: Session) -> None:
    target = f.user(db, roles=[Role.CONSUMER])
    secret = f.api_key(db, target)
    services.disable_user(db, actor=f.ROOT, user_id=target.id, reason="离职")
    with pytest.raises(auth.InvalidApiKey):
        auth.resolve_api_key(db, secret)
    key = db.scalar(select(ApiKey).where(ApiKey.user_id == target.id))
    assert key is not None and key.revoked_at is not None
    event = db.scalar(
        select(AuditEvent).where(
            AuditEvent.action == "user.disable", AuditEvent.target_id == str(target.id)
        )
    )
    assert event is not None and event.details and event.details["reason"] == "离职"


def test_public_registration_stores_id_number_encrypted(db: Session) -> None:
    number = f.id_number(7)
    user = services.register_public_user(
        db,
        actor=f.ROOT,
        username="citizen7",
        display_name="公众",
        password=f.PASSWORD,
        id_number=number,
    )
    assert user.id_number_cipher and number not in user.id_number_cipher
    assert user.id_number_masked == number[:6] + "********" + number[-4:]
    # One person, one account: the same number again creates nothing (and says nothing).
    again = services.register_public_user(
        db,
        actor=f.ROOT,
        username="citizen8",
        display_name="公众",
        password=f.PASSWORD,
        id_number=number,
    )
    assert again is None and services.get_user_by_username(db, "citizen8") is None


def test_bad_id_number_is_refused(db: Session) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.register_public_user(
            db,
            actor=f.ROOT,
            username="citizen9",
            display_name="公众",
            password=f.PASSWORD,
            id_number="110105194912310021",
        )
    assert caught.value.code == "invalid_id_number"


def test_repeated_failures_pause_that_name_from_that_address_only(db: Session) -> None:
    target = f.user(db, roles=[Role.CONSUMER])
    there = replace(f.ROOT, client_addr="203.0.113.7")
    for _ in range(5):
        with pytest.raises(auth.SignInFailed):
            auth.authenticate(db, username=target.username, password="wrong", anonymous=there)
    # Even the right password waits, from there.
    with pytest.raises(auth.SignInThrottled):
        auth.authenticate(db, username=target.username, password=f.PASSWORD, anonymous=there)
    # From elsewhere the account signs in.
    elsewhere = replace(f.ROOT, client_addr="198.51.100.20")
    assert (
        auth.authenticate(db, username=target.username, password=f.PASSWORD, anonymous=elsewhere)
        == target
    )
