"""Pushed data (系统推送): a department system posts its records with its API key.

The body becomes the run's input file, exactly as an upload does, named ``push.json``,
``push.jsonl`` or ``push.csv`` so the file readers read it; the load then runs like any other.
A JSON body is checked before it is queued, so the sending system learns at once, in its own
response, that what it sent is not a list of records.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.orm import Session

from kuaishu.accounts.actor import Actor
from kuaishu.authz import authorize
from kuaishu.collect.connectors.http_api import dig
from kuaishu.collect.enums import SourceKind
from kuaishu.collect.models import LoadRun, Source
from kuaishu.collect.services import loadable_entry, queue_load
from kuaishu.errors import Conflict, ValidationFailed
from kuaishu.store import storage

FORMATS = {
    "application/json": "json",
    "text/json": "json",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/json-lines": "jsonl",
    "text/csv": "csv",
    "application/csv": "csv",
    "text/plain": "csv",
}


def body_format(content_type: str) -> str:
    """``json``, ``jsonl`` or ``csv`` for a request's Content-Type (parameters ignored)."""
    media = content_type.split(";", 1)[0].strip().lower()
    found = FORMATS.get(media)
    if found is None:
        raise ValidationFailed(
            "不支持的推送格式“{type}”：请以 application/json（记录数组）或 text/csv 推送。",
            code="push_format_unsupported",
            details={"accepted": sorted(FORMATS)},
            type=media or "（未指定）",
        )
    return found


def _json_records(body: bytes, records_path: str) -> bytes:
    """The body as a JSON array of objects (taken from ``records_path`` when configured)."""
    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ValidationFailed(
            "推送的内容不是有效的 JSON：{reason}", code="push_invalid_json", reason=str(error)
        ) from error
    if records_path:
        _found, payload = dig(payload, records_path)
    if not isinstance(payload, list) or not payload:
        raise ValidationFailed(
            "推送的 JSON 应是非空的记录数组（对象数组）。", code="push_not_records"
        )
    bad = next((n for n, record in enumerate(payload, start=1) if not isinstance(record, dict)), 0)
    if bad:
        raise ValidationFailed(
            "推送的第 {n} 条记录不是 JSON 对象。",
            code="push_not_records",
            details={"record": bad},
            n=bad,
        )
    return orjson.dumps(payload) if records_path else body


def push_records(
    session: Session, *, actor: Actor, source: Source, body: bytes, content_type: str
) -> LoadRun:
    """Queue a load of records a department system pushed to ``source`` (policy collect.push)."""
    if source.kind != SourceKind.PUSH:
        raise ValidationFailed(
            "采集来源“{name}”不接收推送数据。", code="source_not_push", name=source.name
        )
    if not source.enabled:
        raise Conflict("采集来源“{name}”已停用。", code="source_disabled", name=source.name)
    entry = loadable_entry(session, entry_id=source.entry_id)
    authorize(actor, "collect.push", entry)  # before the body is even parsed or written
    kind = body_format(content_type)
    if not body.strip():
        raise ValidationFailed("推送的内容为空。", code="push_empty")
    if kind == "json":
        body = _json_records(body, str((source.config or {}).get("records_path") or ""))
    incoming = storage.data_root() / "runs" / f".push-{uuid.uuid4().hex}"
    incoming.parent.mkdir(parents=True, exist_ok=True)
    incoming.write_bytes(body)
    try:
        return queue_load(
            session,
            actor=actor,
            entry=entry,
            source=source,
            upload=incoming,
            filename=f"push.{kind}",
            trigger="push",
            operation="collect.push",
        )
    finally:
        _discard(incoming)


def _discard(path: Path) -> None:
    """The body, when it was not moved into the run (authorization refused it)."""
    path.unlink(missing_ok=True)
