"""Class 9 of issue 10: account probing. A sign-in fails alike for a real and an unknown name (the
same answer, and the password hash checked either way); failures slow the address they come from,
per name and in all, without letting anyone lock the operator out from elsewhere; registering does
not tell whether an ID number has an account; ``kuaishu demo`` refuses a database holding data."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from kuaishu import demo
from kuaishu.accounts import passwords
from kuaishu.accounts.models import User
from kuaishu.accounts.roles import Role
from kuaishu.db import make_engine, make_sessionmaker, transaction
from kuaishu.migrate import upgrade
from kuaishu.settings import get_settings
from tests import factories as f
from tests.conftest import fresh_database_url

ATTACKER = ("203.0.113.7", 40000)
OPERATOR_DESK = ("198.51.100.20", 40001)


@pytest.fixture
def browser_at(app: FastAPI) -> Iterator[Callable[[tuple[str, int]], TestClient]]:
    """A browser at a given client address."""
    opened: list[TestClient] = []

    def make(address: tuple[str, int]) -> TestClient:
        client = TestClient(app, base_url="http://testserver", client=address)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def attempt(client: TestClient, username: str, password: str) -> tuple[int, str, str]:
    """Sign in through the form; the status, error code and message the person sees."""
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    if answer.status_code == 303:
        client.post("/logout", data={"csrf_token": _csrf(client)})
        return 303, "", ""
    found = re.search(r'<p class="error" role="alert" data-code="([^"]*)">([^<]*)</p>', answer.text)
    assert found, answer.text
    return answer.status_code, found.group(1), found.group(2)


def _csrf(client: TestClient) -> str:
    text: str = client.get("/").text
    return text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def test_a_real_and_an_unknown_name_fail_alike(
    browser_at: Callable[[tuple[str, int]], TestClient], db: Session
) -> None:
    real = f.user(db, roles=[Role.CONSUMER])
    db.commit()
    client = browser_at(ATTACKER)
    for _ in range(3):  # and stay alike as failures add up
        known = attempt(client, real.username, "Wrong-Passw0rd!")
        unknown = attempt(client, "nobody-here", "Wrong-Passw0rd!")
        assert known == unknown
        assert known[0] == 401 and known[1] == "sign_in_failed"


def test_the_password_hash_is_checked_for_unknown_names_too(
    browser_at: Callable[[tuple[str, int]], TestClient],
    db: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Timing, structurally: the same Argon2 verification runs whether the name exists or not."""
    real = f.user(db, roles=[Role.CONSUMER])
    db.commit()
    checked: list[str] = []
    verify = passwords.verify_password

    def counting(password_hash: str, password: str) -> bool:
        checked.append(password_hash)
        return verify(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", counting)
    client = browser_at(ATTACKER)
    attempt(client, "nobody-here", "Wrong-Passw0rd!")
    assert checked == [passwords.DUMMY_HASH]
    attempt(client, real.username, "Wrong-Passw0rd!")
    assert checked[1] == real.password_hash
    # The dummy costs what a real hash costs: the same Argon2 parameters.
    assert checked[0].split("$")[1:4] == checked[1].split("$")[1:4]


def test_failures_slow_the_address_they_come_from(
    browser_at: Callable[[tuple[str, int]], TestClient],
    db: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(get_settings(), "sign_in_address_limit", 6)
    real = f.user(db, roles=[Role.CONSUMER])
    db.commit()
    attacker = browser_at(ATTACKER)
    for n in range(6):  # spraying names, one try each: the per-name count never trips
        assert attempt(attacker, f"guess{n}", "Wrong-Passw0rd!")[1] == "sign_in_failed"
    throttled = attempt(attacker, real.username, f.PASSWORD)  # even the right password waits
    assert throttled[:2] == (429, "sign_in_throttled")
    assert attempt(attacker, "nobody-here", "x")[:2] == (429, "sign_in_throttled")
    # Someone else, elsewhere, is not slowed at all.
    assert attempt(browser_at(OPERATOR_DESK), real.username, f.PASSWORD)[0] == 303


def test_nobody_can_lock_the_operator_out_from_their_own_address(
    browser_at: Callable[[tuple[str, int]], TestClient], db: Session
) -> None:
    operator = f.user(db, roles=[Role.PLATFORM_OPERATOR])
    db.commit()
    attacker = browser_at(ATTACKER)
    threshold = get_settings().lockout_threshold
    for _ in range(threshold):
        attempt(attacker, operator.username, "Wrong-Passw0rd!")
    on_operator = attempt(attacker, operator.username, "Wrong-Passw0rd!")
    assert on_operator[:2] == (429, "sign_in_throttled")
    for _ in range(threshold):
        attempt(attacker, "no-such-admin", "Wrong-Passw0rd!")
    # The pause reads the same for a real and an unknown name: it tells nothing either.
    assert attempt(attacker, "no-such-admin", "Wrong-Passw0rd!") == on_operator
    # The operator, at their own desk, signs in at once.
    assert attempt(browser_at(OPERATOR_DESK), operator.username, f.PASSWORD)[0] == 303


def _register(client: TestClient, username: str, id_number: str) -> Any:
    return client.post(
        "/api/v1/register",
        json={
            "username": username,
            "display_name": "公众",
            "password": f.PASSWORD,
            "id_number": id_number,
        },
    )


def test_registration_does_not_tell_whether_an_id_number_has_an_account(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = f.id_number(451)
    hashed: list[str] = []
    hash_password = passwords.hash_password

    def counting(password: str) -> str:
        hashed.append(password)
        return hash_password(password)

    monkeypatch.setattr(passwords, "hash_password", counting)
    first = _register(client, "citizen451", number)
    second = _register(client, "someone-else-451", number)  # the same ID number again
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert len(hashed) == 2  # the same work either way
    # Through the page: the same redirect and the same notice.
    page = client.get("/register")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    form = {"display_name": "公众", "password": f.PASSWORD, "id_number": number}
    answers = [
        client.post(
            "/register",
            data={**form, "username": name, "csrf_token": token},
            follow_redirects=False,
        )
        for name in ("third-451", "fourth-451")
    ]
    assert {(a.status_code, a.headers.get("location")) for a in answers} == {
        (303, "/login?done=registered")
    }
    # One person, one account.
    count = db.scalar(select(func.count(User.id)).where(User.username.like("%451")))
    assert count == 1


# kuaishu demo ----------------------------------------------------------------------------------


@pytest.fixture
def empty_engine(backend: str) -> Iterator[Engine]:
    engine = make_engine(fresh_database_url(backend, "demo_guard"))
    upgrade(engine)
    yield engine
    engine.dispose()


def test_the_demo_is_never_built_beside_real_data(empty_engine: Engine) -> None:
    factory = make_sessionmaker(empty_engine)
    with transaction(factory) as session:
        f.user(session, username="zhang.san")  # a real department's real person
    with pytest.raises(demo.DemoRefused) as refused, transaction(factory) as session:
        demo.build_demo(session)
    assert refused.value.code == "demo_refused"
    assert "1 个用户" in refused.value.localized()
    with factory() as session:
        names = set(session.scalars(select(User.username)))
    assert names == {"zhang.san"}  # no account with the published password


def test_the_demo_command_refuses_a_database_with_data(tmp_path: Path) -> None:
    env = {**os.environ, "KUAISHU_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    env.pop("KUAISHU_DATABASE_URL", None)

    def kuaishu(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kuaishu.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert kuaishu("init").returncode == 0
    with sqlite3.connect(tmp_path / "kuaishu.db") as conn:  # a region someone set up for real
        conn.execute(
            "INSERT INTO regions (code, name, level, created_at) "
            "VALUES ('110000', '北京市', 'province', '2026-01-01 00:00:00')"
        )
    refused = kuaishu("demo", "--no-serve")
    assert refused.returncode == 2
    assert "demo_refused" in refused.stdout and "1 个行政区" in refused.stdout
    assert demo.DEMO_PASSWORD not in refused.stdout
    with sqlite3.connect(tmp_path / "kuaishu.db") as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
