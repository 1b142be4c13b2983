"""A live server on loopback with the demo region, and headless Debian Chromium to drive it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import Engine

from kuaishu.db import make_engine, make_sessionmaker, transaction
from kuaishu.demo import build_demo
from kuaishu.migrate import upgrade
from kuaishu.web.app import create_app
from tests.conftest import fresh_database_url
from tests.factories import allow_loopback

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def live_engine() -> Iterator[Engine]:
    """The live server's database: the demo region, and whatever a test adds to it."""
    engine = make_engine(fresh_database_url("sqlite", "browser"))
    upgrade(engine)
    with transaction(make_sessionmaker(engine)) as session:
        build_demo(session)
        allow_loopback(session)  # the tests' push receivers listen on loopback: test-only entry
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def live_server(live_engine: Engine) -> Iterator[str]:
    engine = live_engine
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(engine=engine), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("live server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    # The Content-Security-Policy allows no inline script: a page that needs one breaks quietly,
    # so every refusal the browser reports fails the test.
    refused: list[str] = []
    tab.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield tab
    context.close()
    assert not refused, refused
