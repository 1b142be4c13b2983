"""Class 8 of issue 10: the browser side. Stored text breaks out of no HTML attribute; every
response carries a Content-Security-Policy without inline script, refuses framing, turns off
content sniffing and sets a referrer policy; cookies are ``Secure`` whenever the request came over
HTTPS."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from kuaishu.accounts.roles import Role
from kuaishu.settings import get_settings
from kuaishu.web.templating import TEMPLATE_DIR
from tests import factories as f

# Closes the attribute, adds a handler, and tries a script element too.
PAYLOAD = '" autofocus onfocus="alert(document.cookie)" x="</script><script>alert(1)</script>'


class Elements(HTMLParser):
    """Every start tag with its attributes, as a browser would parse them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.scripts.append(data)


def parsed(text: str) -> Elements:
    found = Elements()
    found.feed(text)
    return found


def assert_headers(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    csp = headers.get("content-security-policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
    assert directives.get("script-src") == ["'self'"], csp
    assert directives.get("frame-ancestors") == ["'none'"], csp
    assert "'unsafe-inline'" not in directives.get("default-src", []), csp
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("referrer-policy") in ("same-origin", "strict-origin-when-cross-origin")


def test_every_kind_of_response_carries_the_headers(client: TestClient, db: Session) -> None:
    user = f.user(db, roles=[Role.CATALOGUER])
    key = {"X-API-Key": f.api_key(db, user)}
    db.commit()
    for response in (
        client.get("/"),  # a page
        client.get("/login"),
        client.get("/no-such-page"),  # an error page
        client.get("/api/v1/me", headers=key),  # JSON
        client.get("/api/v1/me"),  # a refusal
        client.get("/static/kuaishu.css"),  # a static file
        client.get("/lang/en", follow_redirects=False),  # a redirect
        client.post("/login", data={"username": "x", "password": "y"}),  # a refused form
    ):
        assert_headers(response)


def test_the_api_docs_page_has_its_own_policy_and_still_refuses_framing(
    client: TestClient,
) -> None:
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    csp = docs.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and docs.headers["x-content-type-options"] == "nosniff"


def test_no_template_holds_inline_script_or_event_handlers() -> None:
    """Under ``script-src 'self'`` an inline script or ``on…=`` handler would not run: every
    script is a static file."""
    for template in TEMPLATE_DIR.rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        for match in re.finditer(r"<script\b([^>]*)>(.*?)</script>", text, re.S):
            assert "src=" in match.group(1) and not match.group(2).strip(), template
        assert not re.search(r"\son[a-z]+\s*=", text), template
        assert "javascript:" not in text, template
        assert "|safe" not in text.replace(" ", ""), template


def _masking_page(client: TestClient, db: Session) -> tuple[str, int]:
    """A cataloguer stores masking parameters carrying the payload, then opens the console page
    that shows them inside an <input value="…">."""
    dept = f.department(db)
    cataloguer = f.user(db, roles=[Role.CATALOGUER], dept=dept)
    entry = f.published_entry(db, dept=dept, items=[("姓名", "C"), ("人口", "N")])
    key = {"X-API-Key": f.api_key(db, cataloguer)}
    db.commit()
    rule = {
        "item": "姓名",
        "channel": "share",
        "method": "substitute",
        "params": {"value": PAYLOAD},
    }
    saved = client.put(
        f"/api/v1/clean/entries/{entry.id}/masking", json={"rules": [rule]}, headers=key
    )
    assert saved.status_code == 200, saved.text
    f.sign_in(client, cataloguer.username)
    page = client.get(f"/clean/entries/{entry.id}")
    assert page.status_code == 200
    return page.text, entry.id


def test_masking_parameters_stay_inside_their_attribute(client: TestClient, db: Session) -> None:
    text, _entry = _masking_page(client, db)
    found = parsed(text)
    inputs = [
        attrs for tag, attrs in found.tags if tag == "input" and attrs.get("class") == "params"
    ]
    stored = [attrs for attrs in inputs if attrs.get("value")]
    assert len(stored) == 1
    assert json.loads(str(stored[0]["value"])) == {"value": PAYLOAD}  # all of it, as text
    for _tag, attrs in found.tags:
        assert "onfocus" not in attrs and "autofocus" not in attrs
    assert not any("alert" in script for script in found.scripts)
    assert 'onfocus="alert' not in text and "<script>alert" not in text


@pytest.mark.parametrize(
    ("base_url", "forwarded", "trusted", "secure"),
    [
        ("https://testserver", None, False, True),
        ("http://testserver", None, False, False),
        ("http://testserver", "https", False, False),  # a header anyone can send: not trusted
        ("http://testserver", "https", True, True),  # behind the operator's TLS proxy
    ],
)
def test_cookies_are_secure_when_the_request_came_over_https(
    app: object,
    db: Session,
    monkeypatch: pytest.MonkeyPatch,
    base_url: str,
    forwarded: str | None,
    trusted: bool,
    secure: bool,
) -> None:
    settings = get_settings()
    monkeypatch.setattr(settings, "cookie_secure", False)
    monkeypatch.setattr(settings, "trust_forwarded_proto", trusted)
    user = f.user(db)
    db.commit()
    headers = {"X-Forwarded-Proto": forwarded} if forwarded else {}
    with TestClient(app, base_url=base_url, headers=headers) as client:  # type: ignore[arg-type]
        form = client.get("/login")
        token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.cookies.clear()  # a Secure cookie is not sent back over http: send it by hand
        signed = client.post(
            "/login",
            data={"username": user.username, "password": f.PASSWORD, "csrf_token": token},
            headers={"Cookie": f"ks_csrf={token}"},
            follow_redirects=False,
        )
        assert signed.status_code == 303
        cookies = form.headers.get_list("set-cookie") + signed.headers.get_list("set-cookie")
        assert {c.split("=", 1)[0] for c in cookies} >= {"ks_csrf", "ks_session"}
        for cookie in cookies:
            assert ("; secure" in cookie.lower()) is secure, cookie
            assert "httponly" in cookie.lower()
        if secure and base_url.startswith("https"):
            assert "max-age" in signed.headers.get("strict-transport-security", "")


def test_static_scripts_exist_for_every_script_tag() -> None:
    static = Path(TEMPLATE_DIR).parent / "static"
    for template in TEMPLATE_DIR.rglob("*.html"):
        for src in re.findall(r'<script[^>]*\bsrc="/static/([^"]+)"', template.read_text("utf-8")):
            assert (static / src).is_file(), (template, src)
