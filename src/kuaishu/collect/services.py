"""Collection operations: sources, starting and cancelling loads, reading runs."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuaishu.accounts.actor import Actor
from kuaishu.authz import authorize, check
from kuaishu.catalog.enums import EntryStatus
from kuaishu.catalog.models import CatalogEntry, DataItem
from kuaishu.catalog.services import get_entry, get_entry_by_code, get_revision
from kuaishu.collect.enums import FINISHED, RunStatus, SourceKind
from kuaishu.collect.models import LoadRun, Source
from kuaishu.db import utcnow
from kuaishu.errors import Conflict, NotFound, ValidationFailed
from kuaishu.pagination import Paged, PageRequest, paginate
from kuaishu.security import audit
from kuaishu.store import storage
from kuaishu.store.models import DatasetVersion


class EntryNotPublished(Conflict):
    code = "entry_not_published"
    message = "目录条目“{name}”尚未发布：先有目录，后有数据。"


def loadable_entry(
    session: Session, *, code: str | None = None, entry_id: int | None = None
) -> CatalogEntry:
    """A published entry — no data is collected without one."""
    entry = get_entry_by_code(session, code) if code else get_entry(session, entry_id or 0)
    if entry.status != EntryStatus.PUBLISHED or entry.published_revision_id is None:
        raise EntryNotPublished(name=entry.name, details={"code": entry.code})
    return entry


def get_source(session: Session, source_id: int) -> Source:
    source = session.get(Source, source_id)
    if source is None:
        raise NotFound("采集来源不存在。", code="source_not_found")
    return source


def get_run(session: Session, run_id: int) -> LoadRun:
    run = session.get(LoadRun, run_id)
    if run is None:
        raise NotFound("加载任务不存在。", code="run_not_found")
    return run


def create_source(
    session: Session,
    *,
    actor: Actor,
    entry: CatalogEntry,
    name: str,
    kind: SourceKind,
    config: dict[str, Any],
    mapping: dict[str, str] | None = None,
    schedule: str | None = None,
    secret: str | None = None,
) -> Source:
    """Attach a source to a published entry; credentials are sealed with SM4 before storing."""
    grant = authorize(actor, "collect.manage_source", entry)
    from kuaishu.collect import schedule as schedules
    from kuaishu.collect.connectors import validate_config

    validate_config(kind, config)
    source = Source(
        entry_id=entry.id,
        name=name,
        kind=kind,
        config=config,
        mapping=mapping or {},
        schedule=schedule or None,
        next_run_at=schedules.next_after(schedule, utcnow()) if schedule else None,
        secret=_seal(secret) if secret else None,
        created_by=actor.user_id,
    )
    session.add(source)
    session.flush()
    audit.record(
        session,
        actor,
        "collect.create_source",
        target_type="source",
        target_id=source.id,
        details={"code": entry.code, "kind": str(kind), "name": name, "schedule": schedule},
        as_role=grant,
    )
    return source


def update_mapping(
    session: Session, *, actor: Actor, source: Source, mapping: dict[str, str]
) -> Source:
    """Save the item → column mapping a department confirmed or edited."""
    entry = get_entry(session, source.entry_id)
    grant = authorize(actor, "collect.manage_source", entry)
    source.mapping = dict(mapping)
    audit.record(
        session,
        actor,
        "collect.update_mapping",
        target_type="source",
        target_id=source.id,
        details={"mapping": mapping},
        as_role=grant,
    )
    return source


def _seal(secret: str) -> str:
    from kuaishu.security.crypto import keyring

    return keyring().encrypt_text("source-secret", secret)


def unseal(source: Source) -> str | None:
    if not source.secret:
        return None
    from kuaishu.security.crypto import keyring

    return keyring().decrypt_text("source-secret", source.secret)


def queue_load(
    session: Session,
    *,
    actor: Actor,
    entry: CatalogEntry,
    source: Source | None = None,
    upload: Path | None = None,
    filename: str | None = None,
    trigger: str = "manual",
    operation: str = "collect.load",
    mode: str = "replace",
) -> LoadRun:
    """A queued load of ``entry`` from ``source`` or an uploaded file (moved into the run's folder).

    ``mode`` ``append`` adds the file's rows to the served version (fixed quarantine rows, say);
    where the entry has key items, an added row replaces the served row with its key."""
    grant = authorize(actor, operation, entry)
    if mode not in ("replace", "append"):
        raise ValidationFailed(
            "加载方式应为 replace（整体替换）或 append（追加）。", code="bad_mode"
        )
    if source is not None and source.entry_id != entry.id:
        raise ValidationFailed("来源不属于该目录条目。", code="source_mismatch")
    if source is None and upload is None:
        raise ValidationFailed("请上传文件或选择采集来源。", code="no_input")
    run = LoadRun(
        entry_id=entry.id,
        source_id=source.id if source else None,
        status=RunStatus.QUEUED,
        trigger=trigger,
        mode=mode,
        input_name=filename,
        requested_by=actor.user_id,
        log=[],
    )
    session.add(run)
    session.flush()
    if upload is not None:
        target = storage.run_dir(run.id) / "input"
        shutil.move(str(upload), target)
        run.input_path = storage.relative(target)
    audit.record(
        session,
        actor,
        operation,
        target_type="load_run",
        target_id=run.id,
        details={
            "code": entry.code,
            "source": source.id if source else None,
            "file": filename,
            "mode": mode,
        },
        as_role=grant,
    )
    return run


def cancel_run(session: Session, *, actor: Actor, run: LoadRun) -> LoadRun:
    """Ask a load to stop; a queued one stops at once, a running one at its next check."""
    entry = get_entry(session, run.entry_id)
    grant = authorize(actor, "collect.cancel", entry)
    if run.status in FINISHED:
        raise Conflict("任务已结束，无法取消。", code="run_finished")
    run.cancel_requested = True
    if run.status == RunStatus.QUEUED:
        run.status = RunStatus.CANCELLED
        run.finished_at = utcnow()
    audit.record(
        session, actor, "collect.cancel", target_type="load_run", target_id=run.id, as_role=grant
    )
    return run


def runs_of(
    session: Session, *, actor: Actor, entry: CatalogEntry, limit: int = 50
) -> Sequence[LoadRun]:
    authorize(actor, "collect.view", entry)
    return session.scalars(
        select(LoadRun).where(LoadRun.entry_id == entry.id).order_by(LoadRun.id.desc()).limit(limit)
    ).all()


def sources_of(session: Session, *, actor: Actor, entry: CatalogEntry) -> Sequence[Source]:
    authorize(actor, "collect.view", entry)
    return session.scalars(
        select(Source).where(Source.entry_id == entry.id).order_by(Source.id)
    ).all()


# Reading, for the console and the API -----------------------------------------------------------


def entry_for(
    session: Session, entry_id: int, *, actor: Actor, operation: str = "collect.view"
) -> CatalogEntry:
    """The entry once ``actor`` may do ``operation`` on it; anything but viewing needs it published."""
    entry = get_entry(session, entry_id)
    authorize(actor, operation, entry)
    if operation != "collect.view":
        loadable_entry(session, entry_id=entry.id)
    return entry


def entry_items(session: Session, entry: CatalogEntry) -> list[DataItem]:
    """The data items of the revision in force — what a load fills."""
    if entry.published_revision_id is None:
        return []
    return list(get_revision(session, entry.published_revision_id).items)


def view_source(session: Session, source_id: int, *, actor: Actor) -> Source:
    source = get_source(session, source_id)
    authorize(actor, "collect.view", get_entry(session, source.entry_id))
    return source


def view_run(session: Session, run_id: int, *, actor: Actor) -> LoadRun:
    run = get_run(session, run_id)
    authorize(actor, "collect.view", get_entry(session, run.entry_id))
    return run


def runnable_source(
    session: Session, source_id: int, *, actor: Actor
) -> tuple[CatalogEntry, Source]:
    """A source that fetches its own rows and may run now (a file source needs its file)."""
    source = get_source(session, source_id)
    entry = entry_for(session, source.entry_id, actor=actor, operation="collect.load")
    if not source.enabled:
        raise Conflict("采集来源“{name}”已停用。", code="source_disabled", name=source.name)
    if source.kind in (SourceKind.FILE, SourceKind.PUSH):
        raise ValidationFailed(
            "“{name}”是文件或推送来源，请上传文件或由系统推送数据。",
            code="source_needs_input",
            name=source.name,
        )
    return entry, source


def list_runs(
    session: Session,
    *,
    actor: Actor,
    page: PageRequest,
    entry_id: int | None = None,
    status: RunStatus | None = None,
) -> Paged[LoadRun]:
    """Runs of one entry, or every run the actor may see (the operator: all), newest first."""
    stmt = select(LoadRun).order_by(LoadRun.id.desc())
    if entry_id is not None:
        entry_for(session, entry_id, actor=actor)
        stmt = stmt.where(LoadRun.entry_id == entry_id)
    elif check(actor, "collect.view") is None:
        mine = select(CatalogEntry.id).where(CatalogEntry.department_id.in_(actor.department_ids))
        stmt = stmt.where(LoadRun.entry_id.in_(mine))
    if status is not None:
        stmt = stmt.where(LoadRun.status == status)
    return paginate(session, stmt, page)


def versions_for(
    session: Session, *, actor: Actor, entry: CatalogEntry
) -> tuple[list[DatasetVersion], int | None]:
    """The entry's versions, newest first, and the id of the one being served."""
    from kuaishu.store.models import Dataset
    from kuaishu.store.services import versions_of

    authorize(actor, "collect.view", entry)
    dataset = session.get(Dataset, entry.id)
    return list(versions_of(session, entry.id)), dataset.current_version_id if dataset else None


def quarantine_of(session: Session, *, actor: Actor, run: LoadRun) -> Path:
    """The rows a load set aside, with their reasons; reading them is a data read, so audited."""
    entry = get_entry(session, run.entry_id)
    grant = authorize(actor, "data.read_own", entry)
    path = storage.data_root() / "runs" / str(run.id) / storage.QUARANTINE_FILE
    if not path.exists():
        raise NotFound("该任务没有被隔离的数据行。", code="no_quarantine")
    audit.record(
        session,
        actor,
        "collect.read_quarantine",
        target_type="load_run",
        target_id=run.id,
        details={"code": entry.code, "rows": run.rows_quarantined},
        as_role=grant,
    )
    return path


def propose_for(
    session: Session, *, actor: Actor, entry: CatalogEntry, columns: list[str]
) -> dict[str, Any]:
    """What a load would map from ``columns``: proposals by name, and the items left over."""
    from kuaishu.collect.mapping import propose

    authorize(actor, "collect.manage_source", entry)
    items = [item.name for item in entry_items(session, entry)]
    proposed = propose(items, columns)
    return {
        "items": items,
        "columns": columns,
        "mapping": proposed,
        "unmapped": [item for item in items if item not in proposed],
    }


def sample_columns(path: Path, *, filename: str) -> list[str]:
    """The column names of a sample file, read by the same readers a load uses."""
    import duckdb

    from kuaishu.collect.raw import no_progress
    from kuaishu.collect.readers import read_file

    with duckdb.connect() as con:
        return read_file(con, path, filename=filename, progress=no_progress).columns


def set_source_enabled(session: Session, *, actor: Actor, source: Source, enabled: bool) -> Source:
    """Stop (or resume) a source: a disabled one is neither scheduled nor run; its runs stay."""
    entry = get_entry(session, source.entry_id)
    grant = authorize(actor, "collect.manage_source", entry)
    source.enabled = enabled
    audit.record(
        session,
        actor,
        "collect.enable_source" if enabled else "collect.disable_source",
        target_type="source",
        target_id=source.id,
        details={"code": entry.code, "name": source.name},
        as_role=grant,
    )
    return source
