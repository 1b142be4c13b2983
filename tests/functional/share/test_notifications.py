"""Notices of the exchange: the provider hears of a new application in its inbox and by e-mail
(through a real SMTP server on loopback), is reminded 3 and 1 working days before the deadline,
and an unanswered application escalates to the operator — each notice sent once."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import update

from kuaishu.accounts.models import User
from kuaishu.calendar import add_workdays, china_today
from kuaishu.notify.services import deliver
from kuaishu.settings import get_settings
from kuaishu.share.models import ShareApplication
from kuaishu.share.reminders import remind_and_escalate
from tests.functional.share.conftest import API, Exchange


class Inbox:
    """What the SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    monkeypatch.setattr(get_settings(), "smtp_host", "127.0.0.1")
    monkeypatch.setattr(get_settings(), "smtp_port", port)
    yield inbox
    server.stop()


def _mine(x: Exchange, who: str) -> list[dict[str, Any]]:
    answer = x.client.get("/api/v1/me/notifications", headers=x.keys[who])
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_application_notices_reach_inbox_and_mail(exchange: Exchange, smtp: Inbox) -> None:
    x = exchange
    with x.factory() as db:
        db.execute(update(User).values(email=User.username + "@gov.example"))
        db.commit()
    before = len(_mine(x, "provider_officer"))
    made = x.client.post(
        f"{API}/entries/{x.entries['conditional']['id']}/applications",
        json={"purpose": "就业补贴核验", "legal_basis": "《就业促进法》"},
        headers=x.keys["consumer"],
    ).json()["application"]
    notes = _mine(x, "provider_officer")
    assert len(notes) == before + 1 and notes[0]["kind"] == "share.application"
    assert "就业补贴核验" in notes[0]["body"] and notes[0]["read_at"] is None
    assert deliver(x.factory) >= 1
    deadline = time.monotonic() + 5
    while not smtp.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    subjects = [str(make_header(decode_header(m["Subject"]))) for _, m in smtp.messages]
    assert any("新的共享申请" in s for s in subjects)
    assert deliver(x.factory) == 0  # each notice is mailed once
    read = x.client.post(
        f"/api/v1/me/notifications/{notes[0]['id']}/read", headers=x.keys["provider_officer"]
    ).json()
    assert read["read_at"] is not None
    assert x.audit("notification.read")[-1].target_id == str(notes[0]["id"])
    assert (
        x.client.post(
            f"/api/v1/me/notifications/{notes[0]['id']}/read", headers=x.keys["consumer"]
        ).status_code
        == 404
    )  # not theirs

    x.client.post(
        f"{API}/applications/{made['id']}/reject",
        json={"reason": "缺少授权文件"},
        headers=x.keys["provider_officer"],
    )
    told = _mine(x, "consumer")[0]
    assert told["kind"] == "share.rejected" and "缺少授权文件" in told["body"]


def test_reminders_then_escalation_each_once(exchange: Exchange) -> None:
    x = exchange
    made = x.client.post(
        f"{API}/entries/{x.entries['conditional']['id']}/applications",
        json={"purpose": "低保资格复核", "legal_basis": "《社会救助暂行办法》"},
        headers=x.keys["consumer_officer"],
    ).json()["application"]
    today = china_today()

    def due(day: Any) -> None:
        with x.factory() as db:
            db.execute(
                update(ShareApplication).where(ShareApplication.id == made["id"]).values(due_on=day)
            )
            db.commit()

    def run() -> tuple[int, int]:
        with x.factory() as db:
            found = remind_and_escalate(db, today)
            db.commit()
            return found

    kinds = lambda who: [n["kind"] for n in _mine(x, who)]  # noqa: E731
    due(add_workdays(today, 5))
    run()
    assert "share.reminder" not in kinds("provider_officer")
    due(add_workdays(today, 3))
    run()
    run()
    assert kinds("provider_officer").count("share.reminder") == 1
    due(add_workdays(today, 1))
    run()
    assert kinds("provider_officer").count("share.reminder") == 2
    due(today - timedelta(days=1))
    run()
    run()
    assert kinds("operator").count("share.overdue") == 1
    listed = x.client.get(f"{API}/applications/{made['id']}", headers=x.keys["consumer"]).json()
    assert listed["overdue"] is True
