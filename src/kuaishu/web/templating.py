"""Jinja2 pages in zh-CN, translated through the same gettext catalog as API messages."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader

from kuaishu import __version__
from kuaishu.accounts.roles import ROLE_LABELS
from kuaishu.authz import check
from kuaishu.i18n import current_locale, gettext_, translations
from kuaishu.settings import get_settings
from kuaishu.web.forms import notice_text
from kuaishu.web.middleware import secure_cookies

TEMPLATE_DIR = Path(__file__).parent / "templates"
ANON_CSRF_COOKIE = "ks_csrf"


class TranslatedLabels(dict[Any, str]):
    """A label table whose values come out in the request's language."""

    def __getitem__(self, key: Any) -> str:
        return gettext_(super().__getitem__(key))


def _ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_locale.get()).ngettext(singular, plural, n)


CHINA = timezone(timedelta(hours=8))


def local_time(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Times are stored in UTC and shown in China Standard Time."""
    return moment.astimezone(CHINA).strftime(fmt) if moment else ""


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _build_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,  # every template, whatever its name: user text is never markup
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Old-style callables: templates call _("…{name}…", name=x) and get str.format filling;
    # the result is a plain str, so autoescaping still applies to the filled-in values.
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext_, _ngettext, newstyle=False
    )
    env.filters["local"] = local_time
    # JSON as plain text, escaped like any other value. Jinja's own ``tojson`` returns markup
    # meant for <script> and leaves '"' as is, so in an attribute it lets a value break out.
    env.filters["json_text"] = json_text
    env.globals["role_labels"] = TranslatedLabels(ROLE_LABELS)
    env.globals["version"] = __version__
    return env


ENV = _build_env()


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render ``template`` with the signed-in user, CSRF token and locale in scope."""
    actor = getattr(request.state, "actor", None)
    session_csrf: str | None = getattr(request.state, "csrf_token", None)
    anon_token = request.cookies.get(ANON_CSRF_COOKIE) or secrets.token_urlsafe(24)
    csrf_token = session_csrf or anon_token
    base = {
        "request": request,
        "notice": notice_text(request.query_params.get("done")),
        "actor": actor,
        "user": getattr(request.state, "user", None),
        "csrf_token": csrf_token,
        "locale": current_locale.get(),
        "site_name": gettext_(get_settings().site_name),
        "can": (
            lambda operation, target=None: (
                actor is not None and check(actor, operation, target) is not None
            )
        ),
    }
    html = ENV.get_template(template).render({**base, **(context or {})})
    response = HTMLResponse(html, status_code=status_code)
    if session_csrf is None and request.cookies.get(ANON_CSRF_COOKIE) != anon_token:
        response.set_cookie(
            ANON_CSRF_COOKIE,
            anon_token,
            httponly=True,
            samesite="strict",
            secure=secure_cookies(request),
            path="/",
        )
    response.headers["Cache-Control"] = "no-store"
    return response
