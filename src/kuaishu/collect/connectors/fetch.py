"""HTTP requests of network sources, with every failure turned into a message naming URL and page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from kuaishu.collect.raw import LoadError

MAX_RESPONSE_BYTES = 64 * 1024 * 1024


@dataclass
class Fetched:
    """A response read whole: its body and the charset its headers declare (if any)."""

    content: bytes
    charset: str | None


@dataclass
class Request:
    """One request of a source; ``page`` is None for a single-page source (a web page)."""

    method: str
    url: str
    page: int | None = None
    params: dict[str, Any] | None = None
    json: Any = None


def _where(request: Request) -> dict[str, Any]:
    return {"url": request.url, "page": request.page if request.page is not None else 1}


def send(client: httpx.Client, request: Request, *, timeout: float) -> Fetched:
    """The response to ``request``, read whole (bounded); raises LoadError on any failure."""
    details = {"url": request.url, "page": request.page}
    try:
        with client.stream(
            request.method, request.url, params=request.params, json=request.json
        ) as response:
            _check_status(response, request)
            body = bytearray()
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > MAX_RESPONSE_BYTES:
                    raise LoadError(
                        "“{url}”第 {page} 页的响应超过 64 MB，请减小每页条数。",
                        code="source_response_too_large",
                        details=details,
                        **_where(request),
                    )
            return Fetched(content=bytes(body), charset=response.charset_encoding)
    except httpx.TimeoutException as error:
        raise LoadError(
            "请求“{url}”第 {page} 页超时（{seconds} 秒内没有响应）。",
            code="source_timeout",
            details=details,
            seconds=f"{timeout:g}",
            **_where(request),
        ) from error
    except httpx.HTTPError as error:
        raise LoadError(
            "无法访问“{url}”（第 {page} 页）：{reason}",
            code="source_unreachable",
            details=details,
            reason=str(error) or type(error).__name__,
            **_where(request),
        ) from error


def _check_status(response: httpx.Response, request: Request) -> None:
    status = response.status_code
    if status < 300:
        return
    details = {"url": request.url, "page": request.page, "status": status}
    if status in (401, 403):
        raise LoadError(
            "“{url}”第 {page} 页返回 HTTP {http}（未授权）：请检查来源的认证头和密钥。",
            code="source_http_error",
            details=details,
            http=status,
            **_where(request),
        )
    if 300 <= status < 400:
        # Credentials are never sent on to wherever a redirect points.
        details["location"] = response.headers.get("location")
        raise LoadError(
            "“{url}”第 {page} 页返回跳转（HTTP {http}）到“{location}”；请在来源中填写跳转后的地址。",
            code="source_http_error",
            details=details,
            http=status,
            location=response.headers.get("location", ""),
            **_where(request),
        )
    # The body is never shown: whatever answered could be a service the user may not read.
    raise LoadError(
        "“{url}”第 {page} 页返回 HTTP {http}，请求未成功。",
        code="source_http_error",
        details=details,
        http=status,
        **_where(request),
    )
