"""ASGI middleware: request ids, the request's language, the browser security headers, the declared
body-size limit; and the access log's filter that keeps looked-up values out of it."""

from __future__ import annotations

import json
import logging
import uuid
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kuaishu.i18n import current_locale, gettext_, negotiate
from kuaishu.security.audit import keyed
from kuaishu.settings import get_settings

LOCALE_COOKIE = "ks_lang"
UPLOAD_SUFFIXES = ("/upload", "/push")


def _cookie(headers: Headers, name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _sep, value = part.strip().partition("=")
        if key == name:
            return value
    return None


class RequestContextMiddleware:
    """Give each request an id (echoed as X-Request-ID) and its negotiated locale."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        incoming = headers.get("x-request-id", "")
        request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else ""
        request_id = request_id or uuid.uuid4().hex
        locale = negotiate(headers.get("accept-language"), _cookie(headers, LOCALE_COOKIE))
        scope.setdefault("state", {})
        scope["state"]["request_id"] = request_id
        scope["state"]["locale"] = locale
        token = current_locale.set(locale)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))
                raw.append((b"x-request-id", request_id.encode()))
                raw.append((b"content-language", b"zh-CN" if locale == "zh_CN" else b"en"))
                message["headers"] = raw
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_locale.reset(token)


# Scripts only from our own static files (no inline script, no eval), nothing framed, no plugin.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# The API documentation page: Swagger UI, vendored under /static and started from a static file
# (web/apidocs.py), so its scripts are held to 'self' like every page's. It sets style attributes
# as it renders, so it alone may use inline styles; it shows only the OpenAPI description.
DOCS_PATH = "/api/v1/docs"
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


def came_over_https(scheme: str, headers: Headers) -> bool:
    """Whether the browser reached us over HTTPS: directly, or through a reverse proxy whose
    ``X-Forwarded-Proto`` the operator said to trust (KUAISHU_TRUST_FORWARDED_PROTO)."""
    if scheme in ("https", "wss"):
        return True
    if not get_settings().trust_forwarded_proto:
        return False
    forwarded = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return forwarded == "https"


def secure_cookies(request: Request) -> bool:
    """Cookies carry ``Secure`` when the setting says so or the request came over HTTPS."""
    return get_settings().cookie_secure or came_over_https(request.url.scheme, request.headers)


class SecurityHeadersMiddleware:
    """Every HTTP response gets the CSP, nosniff, referrer policy and framing refusal; a response
    that set its own value for one of these keeps it. HTTPS responses also get HSTS."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        policy = DOCS_CSP if path.startswith(DOCS_PATH) else CSP
        extra = [(b"content-security-policy", policy.encode()), *SECURITY_HEADERS]
        if came_over_https(scope.get("scheme", "http"), Headers(scope=scope)):
            extra.append((b"strict-transport-security", b"max-age=31536000"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))
                present = {name.lower() for name, _value in raw}
                raw.extend(item for item in extra if item[0] not in present)
                message["headers"] = raw
            await send(message)

        await self.app(scope, receive, send_with_headers)


class DeclaredBodyLimitMiddleware:
    """Refuse a body whose declared Content-Length is over the limit, before reading it.

    Bodies sent without a length are counted by FastAPI's per-router limiter, which raises
    into our error handler; this covers the declared case with the same JSON error body.
    """

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, upload_max_bytes: int | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_max_bytes = upload_max_bytes or max_bytes

    def limit_for(self, path: str) -> int:
        """Uploads (``…/upload``) and pushes (``…/push``) may be as large as a data file."""
        return self.upload_max_bytes if path.endswith(UPLOAD_SUFFIXES) else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = Headers(scope=scope).get("content-length") if scope["type"] == "http" else None
        limit = self.limit_for(scope.get("path", "")) if scope["type"] == "http" else self.max_bytes
        if declared is None or not declared.isdigit() or int(declared) <= limit:
            await self.app(scope, receive, send)
            return
        token = current_locale.set(scope.get("state", {}).get("locale", "zh_CN"))
        try:
            message = gettext_("请求体过大：上限为 {n} 字节。", n=limit)
        finally:
            current_locale.reset(token)
        body = {
            "error": {
                "code": "body_too_large",
                "message": message,
                "details": {"max_bytes": limit},
            }
        }
        payload = json.dumps(body, ensure_ascii=False).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


# Data reads (the data API, reads under a grant): every query parameter but these carries values
# of the data — a lookup's key, a filter's value, a search, a cursor's last row — so the access
# log shows its keyed digest (security.audit.keyed), as the audit trail does.
DATA_READ_PATHS = ("/api/v1/data/", "/api/v1/share/grants/")
PLAIN_PARAMETERS = frozenset(
    {"fields", "sort", "limit", "offset", "total", "distinct", "group_by", "agg", "shape", "bom"}
    | {"channel", "format", "by"}
)
ACCESS_LOGGER = "uvicorn.access"


def without_values(path: str) -> str:
    """``path`` (with its query string, as the access log writes it) with data values hashed."""
    base, sep, query = path.partition("?")
    if not sep or not base.startswith(DATA_READ_PATHS):
        return path
    pairs = parse_qsl(query, keep_blank_values=True)
    hidden = [(k, v if k in PLAIN_PARAMETERS else keyed(v)) for k, v in pairs]
    return f"{base}?{urlencode(hidden)}"


class DataValuesFilter(logging.Filter):
    """Rewrites uvicorn's access-log line (``client - "METHOD path HTTP/x" status``) so an ID
    number looked up by GET never lands in the log in clear."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], without_values(args[2]), *args[3:])
        return True


def filter_access_log() -> None:
    """Install :class:`DataValuesFilter` on the access logger (once per process)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, DataValuesFilter) for f in logger.filters):
        logger.addFilter(DataValuesFilter())
