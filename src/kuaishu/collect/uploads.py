"""Web glue shared by the collection API and pages: spooling uploads, handing runs to the runner."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from fastapi import BackgroundTasks, Request

from kuaishu.collect.jobs import InlineRunner, Runner
from kuaishu.errors import AppError, ValidationFailed
from kuaishu.store import storage

CHUNK = 1 << 20
# A sample is read whole to find its header; a full data file belongs in a load, not here.
SAMPLE_MAX_BYTES = 32 << 20


class SampleTooLarge(AppError):
    status = 413
    code = "sample_too_large"
    message = "样例文件过大（上限 {mb} MB），请只上传包含表头的前若干行。"


def upload_folder() -> Path:
    """On the data folder's file system, so handing the file to its run is a rename, not a copy."""
    folder = storage.data_root() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def spool(stream: BinaryIO, *, filename: str, limit: int | None = None) -> Path:
    """Copy an upload to a file of its own in chunks — never whole in memory."""
    suffix = Path(filename).suffix[:16]
    written = 0
    with tempfile.NamedTemporaryFile(dir=upload_folder(), suffix=suffix, delete=False) as out:
        target = Path(out.name)
        try:
            while block := stream.read(CHUNK):
                written += len(block)
                if limit is not None and written > limit:
                    raise SampleTooLarge(mb=limit >> 20, details={"max_bytes": limit})
                out.write(block)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
    if written == 0:
        target.unlink(missing_ok=True)
        raise ValidationFailed("上传的文件为空。", code="empty_file")
    return target


@contextmanager
def spooled(stream: BinaryIO, *, filename: str, limit: int | None = None) -> Iterator[Path]:
    """A spooled upload that is removed afterwards unless a run took it (moved it away)."""
    path = spool(stream, filename=filename, limit=limit)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def clean_filename(name: str | None) -> str:
    """The name as the sender gave it, without any folder part."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return base[:400] or "upload"


def runner(request: Request) -> Runner:
    """The app's job runner; inline when start-up wired none (CLI-like embedded use, tests)."""
    found: Runner | None = getattr(request.app.state, "runner", None)
    return found if found is not None else InlineRunner(request.app.state.sessionmaker)


def submit_after_commit(background: BackgroundTasks, request: Request, run_id: int) -> None:
    """Queue ``run_id`` once the response is on its way — after the request's transaction commits,
    so the runner never looks for a run that is not yet visible."""
    background.add_task(runner(request).submit, run_id)
