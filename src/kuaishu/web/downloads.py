"""Helpers for file downloads."""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator
from typing import Any
from urllib.parse import quote

import anyio
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from kuaishu.db import transaction

log = logging.getLogger(__name__)


def attachment_header(filename: str) -> str:
    """Content-Disposition with an ASCII fallback and the UTF-8 name (RFC 6266 / RFC 5987)."""
    fallback = "".join(c if (c.isascii() and c.isalnum()) or c in "._-" else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


def watched(
    body: Iterator[bytes],
    factory: sessionmaker[Session],
    cut_short: Callable[[Session, int, str], None],
) -> Generator[bytes, None, None]:
    """``body``, recording (in a transaction of its own) a stream that stops before its end: the
    client went away (the server closes the stream early) or making the file failed.

    ``bytes_sent`` counts the chunks the server took and came back for: a chunk lost with the
    connection is not counted as sent."""
    sent, finished, why = 0, False, "disconnected"
    try:
        for chunk in body:
            yield chunk
            sent += len(chunk)
        finished = True
    except Exception as error:
        why = f"error: {type(error).__name__}"
        raise
    finally:
        close = getattr(body, "close", None)
        if close is not None:  # its scratch files go now, not when it is collected
            close()
        if not finished:
            _record(factory, cut_short, sent, why)


def _record(
    factory: sessionmaker[Session],
    cut_short: Callable[[Session, int, str], None],
    sent: int,
    why: str,
) -> None:
    try:
        with transaction(factory) as session:
            cut_short(session, sent, why)
    except Exception:  # a failed audit write must not hide how the download ended
        log.exception("could not record a download cut short")


class WatchedResponse(StreamingResponse):
    """Streams a :func:`watched` body and closes it as soon as the response ends, however it
    ends (finished, client gone, failed), so a download cut short is recorded then — not
    whenever the garbage collector happens to reach the abandoned stream."""

    def __init__(self, body: Generator[bytes, None, None], **options: Any) -> None:
        super().__init__(body, **options)
        self.watched = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):  # off the event loop: it may write the trail
                await anyio.to_thread.run_sync(self.watched.close)
