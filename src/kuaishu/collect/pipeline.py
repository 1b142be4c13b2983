"""Running one load, start to finish, so that a failure at any point publishes nothing.

read (source → ``raw``) → map → convert and quarantine → ``serve.duckdb`` + ``data.parquet`` →
checksum → promote the folder → publish (one transaction: version row, pointer, run, audit).
A heartbeat thread keeps the entry's lease, reports progress and interrupts DuckDB on cancel.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.accounts.actor import Actor
from kuaishu.calendar import china_today
from kuaishu.catalog.models import CatalogEntry, CatalogRevision
from kuaishu.clean.models import CleaningRuleSet
from kuaishu.clean.quality import quality_report, rule_inputs
from kuaishu.clean.release import ReleaseCheck, k_anonymity, plan_release
from kuaishu.clean.services import (
    compiled_rules,
    current,
    current_policy,
    pseudonym_items,
    remember_pseudonyms,
)
from kuaishu.clean.sqltext import literal
from kuaishu.collect import connectors, mapping
from kuaishu.collect.connectors.previous import append_previous, served_base
from kuaishu.collect.convert import DUCK_TYPES, Target, convert, index_keys
from kuaishu.collect.enums import RunStatus
from kuaishu.collect.models import LoadRun, Source
from kuaishu.collect.raw import LoadCancelled, LoadError, RawTable, out_of_memory
from kuaishu.collect.readers import read_file
from kuaishu.collect.recovery import mark_failed, recover_stale, release_input
from kuaishu.collect.services import unseal
from kuaishu.db import transaction, utcnow
from kuaishu.errors import AppError, storage_problem
from kuaishu.security import audit, egress
from kuaishu.security.models import Outcome
from kuaishu.settings import get_settings
from kuaishu.store import changes, storage
from kuaishu.store import services as versions
from kuaishu.store.engine import confine
from kuaishu.store.models import DatasetVersion, VersionState
from kuaishu.store.plan import Column, row_key_sql

HEARTBEAT_SECONDS = 1.0
LEASE_WAIT_SECONDS = 600


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Progress:
    """Shared between the load and its heartbeat thread."""

    rows: int = 0
    total: int | None = None
    percent: int = 0
    phase: str = "排队"
    cancelled: bool = False
    log: list[dict[str, Any]] = field(default_factory=list)
    con: duckdb.DuckDBPyConnection | None = None

    def note(self, message: str, **facts: Any) -> None:
        self.log.append({"at": utcnow().isoformat(), "message": message, **facts})

    def check(self) -> None:
        """Stop here if a cancel arrived (DuckDB drops an interrupt sent between statements)."""
        if self.cancelled:
            raise LoadCancelled()

    def reading(self, rows: int, total: int | None) -> None:
        self.check()
        self.rows, self.total = rows, total
        if total:
            self.percent = min(60, int(60 * rows / total))


def execute(factory: sessionmaker[Session], run_id: int) -> None:
    """Run load ``run_id``; every outcome is written to the run, none escapes as an exception.
    When it has ended, its input goes (or is kept as long as KUAISHU_KEEP_INPUTS_HOURS says)."""
    try:
        _execute(factory, run_id)
    finally:
        with transaction(factory) as session:
            run = session.get(LoadRun, run_id)
            if run is not None:
                release_input(run)


def _execute(factory: sessionmaker[Session], run_id: int) -> None:
    with transaction(factory) as session:
        run = session.get(LoadRun, run_id)
        if run is None or run.status != RunStatus.QUEUED:
            return
        entry_id = run.entry_id
    if not _wait_for_lease(factory, entry_id, run_id):
        return
    progress = Progress()
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(factory, run_id, progress, stop), daemon=True)
    beat.start()
    staging: Path | None = None
    try:
        staging = storage.staging_dir(entry_id, run_id)
        made = _load(factory, run_id, staging, progress)
        # Still beating: the SM3 of a large version takes long enough to look dead otherwise.
        progress.phase, progress.percent = "校验", 95
        checksum = storage.sm3_file(staging / storage.DATA_FILE)
        # The change feed's steps that read a version this publish retires, diffed now.
        changes.work_out_before_publishing(factory, entry_id)
        progress.check()
        stop.set()
        beat.join()
        _publish(factory, run_id, staging, made, progress, checksum)
        staging = None
    except BaseException as error:
        stop.set()
        beat.join()
        _fail(factory, run_id, error, progress)
        if not isinstance(error, Exception):
            raise
    finally:
        if staging is not None:
            storage.remove(staging)


@dataclass
class Made:
    raw: RawTable
    targets: list[Target]
    mapping: dict[str, str]
    rows_kept: int
    rows_quarantined: int
    revision_id: int
    source_kind: str | None
    rows_duplicate: int = 0
    rules_number: int | None = None
    masking_number: int | None = None  # the policy in force when the version was made
    release: ReleaseCheck | None = None
    quality: dict[str, Any] | None = None


def _wait_for_lease(factory: sessionmaker[Session], entry_id: int, run_id: int) -> bool:
    """Two loads into one entry never interleave: wait for the other to finish."""
    deadline = time.monotonic() + LEASE_WAIT_SECONDS
    while True:
        try:
            with transaction(factory) as session:
                recover_stale(session, entry_id=entry_id)
                run = session.get(LoadRun, run_id)
                if run is None or run.status != RunStatus.QUEUED:
                    return False
                if versions.acquire_lease(session, entry_id, run_id):
                    if _claim(session, run_id):
                        return True
                    raise _ClaimedElsewhere()
                run.phase = "等待同一资源的其他加载完成"
        except _ClaimedElsewhere:
            # Submitted twice (a restart re-submits queued runs) and the other runner won; the
            # rollback undid this lease renewal.
            return False
        if time.monotonic() > deadline:
            with transaction(factory) as session:
                mark_failed(
                    session.get(LoadRun, run_id),
                    "lease_timeout",
                    "同一资源的另一加载长时间未结束，本次加载未执行。",
                )
            return False
        time.sleep(0.5)


class _ClaimedElsewhere(Exception):
    pass


def _claim(session: Session, run_id: int) -> bool:
    """QUEUED → RUNNING only if still queued: of two runners given one run, one runs it."""
    now = utcnow()
    claimed = session.execute(
        update(LoadRun)
        .where(LoadRun.id == run_id, LoadRun.status == RunStatus.QUEUED)
        .values(
            status=RunStatus.RUNNING,
            started_at=now,
            heartbeat_at=now,
            worker=worker_name(),
            phase="读取",
        )
        .execution_options(synchronize_session=False)
    )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


def _connect(staging: Path) -> duckdb.DuckDBPyConnection:
    settings = get_settings()
    con = duckdb.connect(str(staging / "work.duckdb"))
    con.execute(f"SET memory_limit = '{settings.load_memory_mb}MB'")
    con.execute(f"SET threads = {settings.load_threads}")
    con.execute(f"SET temp_directory = {literal(str(staging / 'spill'))}")
    con.execute(f"ATTACH {literal(str(staging / storage.SERVE_FILE))} AS serve")
    return con


def _load(factory: sessionmaker[Session], run_id: int, staging: Path, progress: Progress) -> Made:
    with transaction(factory) as session:
        run = session.get(LoadRun, run_id)
        assert run is not None
        entry = session.get(CatalogEntry, run.entry_id)
        assert entry is not None
        revision = session.get(CatalogRevision, entry.published_revision_id)
        if revision is None:
            raise LoadError("目录条目尚未发布。", code="entry_not_published")
        targets = [
            Target(name=i.name, type_code=i.type_code, length=i.length, is_key=i.is_key)
            for i in revision.items
        ]
        revision_id = revision.id
        source = session.get(Source, run.source_id) if run.source_id else None
        saved = dict(source.mapping) if source else {}
        secret = unseal(source) if source else None
        input_path = storage.resolve(run.input_path) if run.input_path else None
        input_name = run.input_name or (input_path.name if input_path else "")
        source_kind = str(source.kind) if source else None
        previous = connectors.previous_of(session, source) if input_path is None else None
        allowed = egress.allow_list(session) if input_path is None else None
        base = served_base(session, entry.id) if run.mode == "append" else None
        if run.mode == "append" and base is None:
            raise LoadError(
                "该资源还没有现行数据版本，无法追加；请整体加载。", code="nothing_to_append"
            )
        found_rules = compiled_rules(session, entry.id)
        rule_set = current(session, CleaningRuleSet, entry.id)
        identifiers, consistency = rule_inputs(rule_set.rules if rule_set else [])
        cycle = str(entry.update_cycle) if entry.update_cycle else None
        release_plan = plan_release(session, entry)
        policy = current_policy(session, entry.id)
        pseudonymised = pseudonym_items(policy)
        policy_number = policy.number if policy else None
        session.expunge_all()
    rules, rules_number = found_rules if found_rules else (None, None)
    if not targets:
        raise LoadError("目录条目没有信息项，无法加载数据。", code="entry_without_items")
    con = _connect(staging)
    # The load reaches its own staging folder, its input, the versions it extends and the
    # entries its rules refer to; nothing else, whatever a rule or a column name holds. Not
    # locked: indexing raises the memory limit later, and DuckDB never lets a statement turn
    # external access back on or widen the list.
    reads = [staging, *(rules.reads if rules else [])]
    reads += [input_path] if input_path else []
    reads += [found.data_path for found in (base, previous) if found is not None]
    confine(con, reads, lock=False)
    progress.con = con
    try:
        if input_path is not None:
            raw = read_file(con, input_path, filename=input_name, progress=progress.reading)
            if base is not None:
                kept, replaced = append_previous(con, base, raw.columns)
                raw.rows += kept
                progress.note(
                    f"追加到第 {base.number} 版：保留原有 {kept} 行，按关键字段替换 {replaced} 行"
                )
        else:
            assert source is not None
            raw = connectors.read_source(
                con,
                source,
                run,
                secret=secret,
                progress=progress.reading,
                previous=previous,
                allowed=allowed,
            )
        progress.rows, progress.total = raw.rows, raw.rows
        for skipped in raw.skipped:
            progress.note(
                "跳过非数据行", line=skipped.line, reason=skipped.reason, text=skipped.text
            )
        for note in raw.notes:
            progress.note(note)
        if raw.rows == 0:
            raise LoadError("文件中没有数据行。", code="no_rows")
        used = mapping.resolve([t.name for t in targets], raw.columns, saved)
        unused = [c for c in raw.columns if c not in used.values()]
        if unused:
            progress.note("以下源列未映射到信息项，未加载：" + "、".join(unused))
        progress.check()
        progress.phase, progress.percent = "转换", 60
        for statement, params in rules.prepare if rules else []:  # what references may see
            con.execute(statement, params)
        converted = convert(
            con,
            raw,
            targets,
            used,
            quarantine_path=staging / storage.QUARANTINE_FILE,
            rules=rules,
        )
        progress.check()
        release = None
        if release_plan is not None:
            quasi, k, masks = release_plan
            types = {t.name: DUCK_TYPES[t.type_code] for t in targets}
            # Rows identified as every read identifies them, so per-row masks match the served.
            row_key = row_key_sql(
                [Column(name=t.name, type=types[t.name], key=t.is_key) for t in targets]
            )
            release = k_anonymity(
                con, "serve.data", quasi, types, k=k, masks=masks, row_key=row_key
            )
        remember_pseudonyms("serve.data", pseudonymised, con)
        progress.phase = "质量评估"
        quality = quality_report(
            con,
            "serve.data",
            [
                {
                    "name": t.name,
                    "type": DUCK_TYPES[t.type_code],
                    "item_type": str(t.type_code),
                    "key": t.is_key,
                }
                for t in targets
            ],
            identifiers=identifiers,
            update_cycle=cycle,
            data_as_of=china_today(),
            today=china_today(),
            consistency=consistency,
        )
        progress.phase, progress.percent = "索引", 80
        index_keys(con, targets)
        progress.check()
        progress.phase, progress.percent = "写入", 88
        con.execute(
            f"COPY serve.data TO {literal(str(staging / storage.DATA_FILE))} "
            "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
        )
    finally:
        progress.con = None
        con.close()
    storage.remove(staging / "work.duckdb")
    storage.remove(staging / "work.duckdb.wal")
    storage.remove(staging / "spill")
    (staging / "work.duckdb").unlink(missing_ok=True)
    return Made(
        raw=raw,
        targets=targets,
        mapping=used,
        rows_kept=converted.rows_kept,
        rows_quarantined=converted.rows_quarantined,
        revision_id=revision_id,
        source_kind=source_kind,
        rows_duplicate=converted.rows_duplicates,
        rules_number=rules_number,
        masking_number=policy_number,
        release=release,
        quality=quality,
    )


def _schema(made: Made) -> list[dict[str, Any]]:
    from kuaishu.collect.convert import DUCK_TYPES

    return [
        {
            "name": t.name,
            "type": DUCK_TYPES[t.type_code],
            "item_type": str(t.type_code),
            "source": made.mapping.get(t.name) or None,
            "key": t.is_key,
        }
        for t in made.targets
    ]


def _publish(
    factory: sessionmaker[Session],
    run_id: int,
    staging: Path,
    made: Made,
    progress: Progress,
    checksum: str,
) -> None:
    quarantine = staging / storage.QUARANTINE_FILE
    retired: list[str] = []
    with transaction(factory) as session:
        run = session.get(LoadRun, run_id, with_for_update=True)
        assert run is not None
        dataset = versions.dataset_for(session, run.entry_id)
        session.refresh(dataset, with_for_update=True)
        if run.status != RunStatus.RUNNING or dataset.loading_run_id != run_id:
            # Declared dead (no heartbeat for too long) and the entry handed on: publishing
            # now could interleave with the load that took over.
            raise LoadError(
                "本次加载失去了对该资源的占用（长时间无响应），结果未发布，请重新加载。",
                code="lease_lost",
            )
        storage.sweep(
            run.entry_id,
            versions.referenced_paths(session, run.entry_id) | {storage.relative(staging)},
        )
        if quarantine.exists():
            kept = storage.run_dir(run_id) / storage.QUARANTINE_FILE
            os.replace(quarantine, kept)
        dataset.last_number += 1
        number = dataset.last_number
        size = sum(p.stat().st_size for p in staging.iterdir() if p.is_file())
        final = storage.promote(staging, run.entry_id, number)
        version = DatasetVersion(
            entry_id=run.entry_id,
            number=number,
            state=VersionState.READY,
            path=storage.relative(final),
            schema=_schema(made),
            key_columns=[t.name for t in made.targets if t.is_key],
            row_count=made.rows_kept,
            byte_size=size,
            checksum_sm3=checksum,
            run_id=run_id,
            revision_id=made.revision_id,
            lineage={
                "run": run_id,
                "source_kind": made.source_kind,
                "encoding": made.raw.encoding,
                "mapping": made.mapping,
                "catalog_revision": made.revision_id,
                "cleaning_rules": made.rules_number,
                "masking_policy": made.masking_number,
                "incremental": made.raw.extra.get("incremental"),
            },
        )
        version.quality = dict(made.quality or {})
        if made.release is not None:
            version.quality["release"] = made.release.as_dict()
        session.add(version)
        session.flush()
        if made.release is None or made.release.passed:
            versions.make_current(session, version)
        else:
            _hold_back(session, run, version, made.release, progress)
        retired = versions.retire_old(session, run.entry_id)
        source = session.get(Source, run.source_id) if run.source_id else None
        if source is not None and "cursor" in made.raw.extra:
            source.cursor = made.raw.extra["cursor"]
        run.status = RunStatus.SUCCEEDED
        run.version_id = version.id
        run.rows_read = made.raw.rows
        run.rows_loaded = made.rows_kept
        run.rows_quarantined = made.rows_quarantined
        run.rows_duplicate = made.rows_duplicate
        run.percent, run.phase = 100, "完成"
        progress.note(
            f"加载完成：读入 {made.raw.rows} 行，入库 {made.rows_kept} 行，隔离 {made.rows_quarantined} 行，"
            f"去除重复 {made.rows_duplicate} 行"
        )
        run.log = list(run.log or []) + progress.log
        run.finished_at = utcnow()
        versions.release_lease(session, run.entry_id, run_id)
        audit.record(
            session,
            _job_actor(session, run),
            "store.publish",
            target_type="dataset_version",
            target_id=version.id,
            details={
                "run": run_id,
                "number": number,
                "rows": made.rows_kept,
                "quarantined": made.rows_quarantined,
                "duplicates": made.rows_duplicate,
                "sm3": checksum,
            },
        )
    for folder in retired:
        storage.remove(storage.resolve(folder))


def _hold_back(
    session: Session,
    run: LoadRun,
    version: DatasetVersion,
    release: ReleaseCheck,
    progress: Progress,
) -> None:
    """A version of opened data below the k threshold is kept but not served."""
    progress.note(
        f"第 {version.number} 版未发布：k 匿名检查未通过（准标识符 {'、'.join(release.quasi_identifiers)}，"
        f"最小组 {release.smallest} 行，少于 {release.k} 行的组 {release.risky_groups} 个）。"
        "请泛化准标识符后重新加载，或由平台运营者说明理由后发布。"
    )
    audit.record(
        session,
        _job_actor(session, run),
        "store.release_blocked",
        target_type="dataset_version",
        target_id=version.id,
        outcome=Outcome.FAILURE,
        details={"run": run.id, "number": version.number, **release.as_dict()},
    )


def _job_actor(session: Session, run: LoadRun) -> Actor:
    """The person who asked for the load, as the job acts for them."""
    from kuaishu.accounts.auth import actor_for
    from kuaishu.accounts.models import User

    user = session.get(User, run.requested_by) if run.requested_by else None
    if user is None:
        return Actor(user_id=None, username="system", auth_method="job")
    return actor_for(user, auth_method="job")


def _fail(
    factory: sessionmaker[Session], run_id: int, error: BaseException, progress: Progress
) -> None:
    if not isinstance(error, AppError):  # a full or read-only disk, or memory, said as such
        error = storage_problem(error) or out_of_memory(error) or error
    if isinstance(error, LoadCancelled) or (
        progress.cancelled and isinstance(error, duckdb.InterruptException)
    ):
        code, message, details, status = (
            "load_cancelled",
            "加载已被取消。",
            None,
            RunStatus.CANCELLED,
        )
    elif isinstance(error, AppError):
        code, message, details, status = (
            error.code,
            error.localized(),
            error.details,
            RunStatus.FAILED,
        )
    else:
        # Not the user's to read (paths, internals): the log keeps the first line for operators.
        code = "load_error"
        message = "加载时发生内部错误，请联系平台运营者并提供任务编号。"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        progress.note("内部错误", error=f"{type(error).__name__}: {first_line}"[:300])
        details, status = {"run": run_id}, RunStatus.FAILED
    with transaction(factory) as session:
        run = session.get(LoadRun, run_id)
        if run is None:
            return
        run.rows_read = progress.rows
        run.log = (
            list(run.log or []) + progress.log + [{"at": utcnow().isoformat(), "message": message}]
        )
        mark_failed(
            run,
            code,
            message,
            details if isinstance(details, dict) else {"details": details} if details else None,
            status,
        )
        versions.release_lease(session, run.entry_id, run_id)
        audit.record(
            session,
            _job_actor(session, run),
            "collect.load_failed",
            target_type="load_run",
            target_id=run_id,
            outcome=Outcome.FAILURE,
            details={"code": code, "message": message},
        )


def _heartbeat(
    factory: sessionmaker[Session], run_id: int, progress: Progress, stop: threading.Event
) -> None:
    """Keep the lease, publish progress, and turn a cancel request into an interrupt."""
    while not stop.wait(HEARTBEAT_SECONDS):
        try:
            with transaction(factory) as session:
                run = session.get(LoadRun, run_id)
                if run is None:
                    return
                run.heartbeat_at = utcnow()
                run.rows_read, run.rows_total = progress.rows, progress.total
                run.percent, run.phase = progress.percent, progress.phase
                versions.renew_lease(session, run.entry_id, run_id)
                if run.cancel_requested and not progress.cancelled:
                    progress.cancelled = True
                    if progress.con is not None:
                        progress.con.interrupt()
        except Exception:  # noqa: S112 - a missed beat is retried next second
            continue
