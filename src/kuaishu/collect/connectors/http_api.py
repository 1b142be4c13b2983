"""HTTP API sources (数据接口): JSON records, page by page, with page, offset or cursor paging.

Each page's records are appended to ``raw`` as they arrive; the union of the records' keys, in
first-seen order, are the columns, and nested values are kept as JSON text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb
import orjson

from kuaishu.collect.connectors.fetch import Request, send
from kuaishu.collect.connectors.staging import Stager, text_of
from kuaishu.collect.models import Source
from kuaishu.collect.raw import LoadError, Progress, RawTable
from kuaishu.errors import ValidationFailed
from kuaishu.security import egress

PAGINGS = ("none", "page", "offset", "cursor")
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_PAGES = 10_000
SEARCH_DEPTH = 8  # how deep in a response the records list is looked for when no path is set


@dataclass(frozen=True)
class ApiConfig:
    url: str
    method: str = "GET"
    records_path: str = ""
    paging: str = "none"
    page_param: str = "page"
    size_param: str = "size"
    offset_param: str = "offset"
    limit_param: str = "limit"
    cursor_param: str = "cursor"
    next_path: str = ""
    size: int = 100
    start: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    auth_header: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_pages: int = DEFAULT_MAX_PAGES


def _bad(setting: str) -> ValidationFailed:
    return ValidationFailed(
        "来源配置项“{key}”的值无效。",
        code="source_config_invalid",
        details={"key": setting},
        key=setting,
    )


def _positive(value: Any, setting: str, *, most: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= most:
        raise _bad(setting)
    return float(value)


def check_url(url: Any, setting: str = "url") -> str:
    if not isinstance(url, str):
        raise ValidationFailed(
            "“{key}”应是以 http:// 或 https:// 开头的地址。", code="source_url_invalid", key=setting
        )
    return egress.check_http_url(url, key=setting)


def parse_config(config: dict[str, Any]) -> ApiConfig:
    """The settings of an HTTP API source, checked; paging is a name or ``{"type": name, …}``."""
    paging_raw = config.get("paging") or "none"
    paging = dict(paging_raw) if isinstance(paging_raw, dict) else {"type": paging_raw}
    kind = paging.pop("type", "none")
    if kind not in PAGINGS:
        raise _bad("paging")
    method = str(config.get("method") or "GET").upper()
    if method not in ("GET", "POST"):
        raise _bad("method")
    for name in ("headers", "params"):
        if not isinstance(config.get(name) or {}, dict):
            raise _bad(name)
    settings: dict[str, Any] = {
        key: value for key, value in paging.items() if key in ApiConfig.__dataclass_fields__
    }
    for name in ("size", "start"):
        if name in settings and (
            isinstance(settings[name], bool) or not isinstance(settings[name], int)
        ):
            raise _bad(f"paging.{name}")
    if kind == "cursor" and not settings.get("next_path"):
        raise _bad("paging.next_path")
    cfg = ApiConfig(
        url=check_url(config.get("url")),
        method=method,
        records_path=str(config.get("records_path") or ""),
        paging=str(kind),
        headers={str(k): str(v) for k, v in (config.get("headers") or {}).items()},
        params=dict(config.get("params") or {}),
        body=config.get("body") if isinstance(config.get("body"), dict) else None,
        auth_header=str(config.get("auth_header") or "").strip() or None,
        timeout=_positive(config.get("timeout", DEFAULT_TIMEOUT), "timeout", most=600),
        max_pages=int(_positive(config.get("max_pages", DEFAULT_MAX_PAGES), "max_pages", most=1e6)),
        **settings,
    )
    if cfg.size < 1:
        raise _bad("paging.size")
    return cfg


def dig(payload: Any, path: str) -> tuple[bool, Any]:
    """The value at dotted ``path`` (list positions as numbers); (False, None) when absent."""
    value = payload
    for part in [p for p in path.split(".") if p]:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def find_records(payload: Any, path: tuple[str, ...] = (), depth: int = SEARCH_DEPTH) -> str | None:
    """The dotted path of the first list of objects in ``payload`` (document order), as file
    upload finds a JSON file's records; None when there is none."""
    if isinstance(payload, list):
        return ".".join(path) if payload and isinstance(payload[0], dict) else None
    if not isinstance(payload, dict) or depth == 0:
        return None
    for key, value in payload.items():
        found = find_records(value, (*path, str(key)), depth - 1)
        if found is not None:
            return found
    return None


def records_of(payload: Any, cfg: ApiConfig, request: Request) -> list[dict[str, Any]]:
    """The page's records; an absent list ends the paging after the first page."""
    found, records = dig(payload, cfg.records_path)
    where: dict[str, Any] = {
        "url": request.url,
        "page": request.page,
        "path": cfg.records_path or "（整个响应）",
    }
    if (not found and request.page == 1) or (found and not isinstance(records, list | None)):
        raise LoadError(
            "“{url}”第 {page} 页的响应中，记录路径“{path}”处没有记录列表。",
            code="source_bad_response",
            details=where,
            **where,
        )
    records = records or []
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise LoadError(
                "“{url}”第 {page} 页的第 {n} 条记录不是 JSON 对象。",
                code="source_bad_response",
                details={**where, "record": number},
                n=number,
                **where,
            )
    return records


def _request(cfg: ApiConfig, page: int, cursor: str | None) -> Request:
    paging: dict[str, Any] = {}
    if cfg.paging == "page":
        paging = {cfg.page_param: cfg.start + page - 1, cfg.size_param: cfg.size}
    elif cfg.paging == "offset":
        paging = {cfg.offset_param: (page - 1) * cfg.size, cfg.limit_param: cfg.size}
    elif cfg.paging == "cursor" and cursor is not None:
        if cursor.startswith(("http://", "https://")):  # the API handed over the next page's URL
            return Request(method=cfg.method, url=cursor, page=page, json=cfg.body)
        paging = {cfg.cursor_param: cursor}
    if cfg.method == "POST":
        return Request(
            method="POST",
            url=cfg.url,
            page=page,
            params=cfg.params,
            json={**(cfg.body or {}), **paging},
        )
    return Request(method="GET", url=cfg.url, page=page, params={**cfg.params, **paging})


def _decode(content: bytes, request: Request) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as error:
        raise LoadError(
            "“{url}”第 {page} 页返回的不是有效的 JSON。",
            code="source_bad_response",
            details={"url": request.url, "page": request.page},
            url=request.url,
            page=request.page,
        ) from error


def _next_cursor(payload: Any, cfg: ApiConfig, cursor: str | None) -> str | None:
    _found, value = dig(payload, cfg.next_path)
    text = text_of(value) if value not in (None, False, "") else None
    return None if text is None or text == cursor else text


def _check_new(pages: dict[bytes, int], records: list[dict[str, Any]], request: Request) -> None:
    """Stop when a page repeats an earlier one: the API ignores the paging parameters, and every
    further page would load the same records again."""
    digest = hashlib.sha256(orjson.dumps(records, option=orjson.OPT_SORT_KEYS)).digest()
    page = request.page or 1
    if digest in pages:
        where: dict[str, Any] = {"url": request.url, "page": page, "same_as": pages[digest]}
        raise LoadError(
            "“{url}”第 {page} 页返回的记录与第 {same_as} 页完全相同：接口没有按分页参数翻页，"
            "已停止加载，未入库任何数据。请检查来源的分页设置（参数名、起始页）。",
            code="source_page_repeated",
            details=where,
            **where,
        )
    pages[digest] = page


def read_http_api(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    *,
    secret: str | None,
    progress: Progress,
    allowed: egress.AllowList,
) -> RawTable:
    """Fetch every page and stage its records; stops on an empty or short page or no next cursor."""
    cfg = parse_config(source.config or {})
    headers = {"Accept": "application/json", **cfg.headers}
    if cfg.auth_header:
        if not secret:
            raise LoadError("来源设置了认证头，但未保存密钥。", code="source_secret_missing")
        headers[cfg.auth_header] = secret
    stager = Stager(con, progress, where="接口记录的字段名")
    notes: list[str] = []
    cursor: str | None = None
    pages: dict[bytes, int] = {}  # each page's records, hashed: the page that first had them
    with egress.http_client(allowed, timeout=cfg.timeout, headers=headers) as client:
        for page in range(1, cfg.max_pages + 1):
            request = _request(cfg, page, cursor)
            payload = _decode(send(client, request, timeout=cfg.timeout).content, request)
            if page == 1 and not cfg.records_path and not isinstance(payload, list):
                found = find_records(payload)
                if found:
                    cfg = replace(cfg, records_path=found)
                    notes.append(f"记录列表在响应的“{found}”处（自动找到）。")
            records = records_of(payload, cfg, request)
            if records:
                _check_new(pages, records, request)
                stager.add_records(records)
            if cfg.paging == "none" or not records:
                break
            if cfg.paging in ("page", "offset") and len(records) < cfg.size:
                break
            if cfg.paging == "cursor":
                cursor = _next_cursor(payload, cfg, cursor)
                if cursor is None:
                    break
        else:
            notes.append(f"已达到最大页数 {cfg.max_pages}，之后的数据未读取。")
    if stager.rows == 0:
        raise LoadError("接口“{url}”没有返回任何记录。", code="no_rows", url=cfg.url)
    return RawTable(
        columns=stager.columns, rows=stager.rows, line_sql="rowid + 1", line_label="条", notes=notes
    )
