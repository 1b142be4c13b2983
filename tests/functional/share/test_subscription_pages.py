"""Subscriptions on the grant page, both sides: the consumer registers a push (its signing secret
shown once, on the page the form leads to) or a table sync, pauses, resumes and stops them; a
mistake shows the grant page again with what was typed — never a password; the provider sees the
subscriptions but has no form and no buttons."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from kuaishu.security.crypto import keyring
from kuaishu.share.models import Subscription
from kuaishu.share.subscriptions import SEAL
from tests.functional.share.conftest import API, Exchange
from tests.functional.share.test_pages import Person, apply, landed
from tests.http import ok

RECEIVER = "https://receiver.example/kuaishu/changes"


@pytest.fixture(scope="module")
def people(exchange: Exchange) -> dict[str, Person]:
    return {name: Person(exchange, name) for name in ("consumer", "provider_officer", "operator")}


def granted(x: Exchange, consumer: Person, methods: list[str]) -> str:
    """The page of an unconditional grant with ``methods``, granted at once."""
    grant = landed(apply(x, consumer, "unconditional", methods=methods), "/share/grants")
    return f"/share/grants/{grant}"


def row(page: Any, subscription_id: int) -> str:
    """A subscription's row in the grant page's table."""
    return str(page.text.split(f'data-testid="subscription-{subscription_id}"', 1)[1]).split(
        "</tr>", 1
    )[0]


def form(page: Any, heading: str) -> str:
    """The registering form labelled by ``heading`` (h-push or h-sync)."""
    return str(page.text.split(f'aria-labelledby="{heading}"', 1)[1]).split("</form>", 1)[0]


def refused_form(person: Person, url: str, message: str, **typed: str) -> tuple[str, str]:
    """A subscription form refused with ``message``: the page, and the form shown again."""
    bad = person.post(f"{url}/subscriptions", **typed)
    assert bad.status_code == 422 and message in bad.text, bad.text
    return bad.text, form(bad, f"h-{typed['mode']}")


def listed(x: Exchange, url: str) -> list[dict[str, Any]]:
    grant = url.rsplit("/", 1)[1]
    return ok(  # type: ignore[no-any-return]
        x.client.get(f"{API}/subscriptions", params={"grant_id": grant}, headers=x.keys["consumer"])
    )


def test_consumer_registers_a_push_and_sees_its_secret_once(
    exchange: Exchange, people: dict[str, Person]
) -> None:
    consumer = people["consumer"]
    url = granted(exchange, consumer, ["query", "subscribe"])
    page = consumer.get(url)
    assert f'action="{url}/subscriptions"' in page.text and "登记推送" in page.text
    assert "登记库表同步" not in page.text  # the grant has no table sync
    assert f"GET /api/v1/share/grants/{url.rsplit('/', 1)[1]}/changes?cursor=" in page.text
    for header in ("Kuaishu-Delivery", "Kuaishu-Timestamp", "Kuaishu-Signature", "hmac-sm3="):
        assert header in page.text, header
    assert "暂无订阅。" in page.text

    made = consumer.post(f"{url}/subscriptions", mode="push", endpoint=RECEIVER, batch_size="50")
    assert made.status_code == 200, made.text
    assert "离开此页后将无法再次查看此密钥" in made.text
    found = re.search(r'value="([^"]+)" data-testid="subscription-secret"', made.text)
    assert found, made.text
    secret = found.group(1)
    (subscription,) = listed(exchange, url)
    assert (subscription["mode"], subscription["endpoint"]) == ("push", RECEIVER)
    assert (subscription["batch_size"], subscription["cursor"]) == (50, "1.0")
    with exchange.factory() as session:  # the secret shown is the one deliveries are signed with
        stored = session.get(Subscription, subscription["id"])
        assert stored is not None and keyring().decrypt_text(SEAL, stored.secret) == secret
    event = exchange.audit("share.subscribe")[-1]
    assert event.details is not None and event.details["endpoint"] == RECEIVER

    again = consumer.get(url)
    assert secret not in again.text
    shown = row(again, subscription["id"])
    for text in ("推送", RECEIVER, "运行中", "<code>1.0</code>", "暂停", "停止"):
        assert text in shown, text


def test_a_bad_endpoint_is_refused_and_what_was_typed_is_kept(
    exchange: Exchange, people: dict[str, Person]
) -> None:
    consumer = people["consumer"]
    url = granted(exchange, consumer, ["subscribe"])
    _, push = refused_form(
        consumer,
        url,
        "推送地址“ftp://receiver.example/x”无效",
        mode="push",
        endpoint="ftp://receiver.example/x",
        since_version="1",
        batch_size="20",
    )
    assert 'value="ftp://receiver.example/x"' in push
    assert 'value="1"' in push and 'value="20"' in push
    _, push = refused_form(
        consumer, url, "表单有 1 处错误：每批条数", mode="push", endpoint=RECEIVER, batch_size="0"
    )
    assert f'value="{RECEIVER}"' in push
    assert listed(exchange, url) == []


def test_the_provider_sees_the_subscriptions_but_no_form(
    exchange: Exchange, people: dict[str, Person]
) -> None:
    consumer, officer = people["consumer"], people["provider_officer"]
    url = granted(exchange, consumer, ["subscribe"])
    consumer.post(f"{url}/subscriptions", mode="push", endpoint=RECEIVER)
    (subscription,) = listed(exchange, url)
    for person in (officer, people["operator"]):
        page = person.get(url)
        assert page.status_code == 200
        shown = row(page, subscription["id"])
        assert RECEIVER in shown and "运行中" in shown
        assert f'action="{url}/subscriptions"' not in page.text
        assert f"/share/subscriptions/{subscription['id']}/" not in page.text
    assert officer.post(f"/share/subscriptions/{subscription['id']}/pause").status_code == 403
    assert listed(exchange, url)[0]["state"] == "active"


def test_pause_resume_and_stop_change_the_state_shown(
    exchange: Exchange, people: dict[str, Person]
) -> None:
    consumer = people["consumer"]
    url = granted(exchange, consumer, ["subscribe"])
    consumer.post(f"{url}/subscriptions", mode="push", endpoint=RECEIVER)
    (subscription,) = listed(exchange, url)
    moves = f"/share/subscriptions/{subscription['id']}"

    paused = consumer.post(f"{moves}/pause")
    assert paused.headers["location"] == f"{url}?done=subscription_paused"
    page = consumer.get(paused.headers["location"])
    assert "订阅已暂停" in page.text
    shown = row(page, subscription["id"])
    assert "已暂停" in shown and f"{moves}/resume" in shown and f"{moves}/pause" not in shown

    resumed = consumer.post(f"{moves}/resume")
    assert resumed.headers["location"].endswith("done=subscription_active")
    shown = row(consumer.get(url), subscription["id"])
    assert "运行中" in shown and f"{moves}/pause" in shown

    stopped = consumer.post(f"{moves}/stop")
    assert stopped.headers["location"].endswith("done=subscription_stopped")
    shown = row(consumer.get(url), subscription["id"])
    assert "已停止" in shown and "<form" not in shown
    final = consumer.post(f"{moves}/resume")  # stopping is final
    assert final.status_code == 409 and 'data-code="invalid_transition"' in final.text
    assert listed(exchange, url)[0]["state"] == "stopped"


def test_table_sync_from_the_page_and_a_password_in_the_address_refused(
    exchange: Exchange, people: dict[str, Person], tmp_path: Path
) -> None:
    consumer = people["consumer"]
    url = granted(exchange, consumer, ["query", "sync"])
    page = consumer.get(url)
    assert "登记库表同步" in page.text and "登记推送" not in page.text
    page_text, sync = refused_form(
        consumer,
        url,
        "数据库地址中不要写密码，请在密码栏单独填写（平台加密保存）。",
        mode="sync",
        target_url="postgresql+psycopg://hr:Pw0rd-xyz@db.example:5432/hr",
        target_table="jiuzhu",
        batch_size="100",
    )
    assert 'value="postgresql+psycopg://hr@db.example:5432/hr"' in sync
    assert 'value="jiuzhu"' in sync and 'value="100"' in sync
    assert "Pw0rd-xyz" not in page_text  # a password typed is never shown again

    target = f"sqlite:///{tmp_path / 'hr.db'}"
    made = consumer.post(
        f"{url}/subscriptions", mode="sync", target_url=target, target_table="jiuzhu"
    )
    assert made.status_code == 303 and made.headers["location"] == f"{url}?done=subscribed"
    (subscription,) = listed(exchange, url)
    assert (subscription["mode"], subscription["target_table"]) == ("sync", "jiuzhu")
    shown = row(consumer.get(made.headers["location"]), subscription["id"])
    assert "库表同步" in shown and target in shown and "jiuzhu" in shown
