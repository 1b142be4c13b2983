"""Collection on the command line: ``kuaishu ingest``, ``worker``, ``runs`` and ``versions``."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.authz import authorize
from kuaishu.cli_support import CLI_ACTOR, console, fail, session_factory
from kuaishu.collect import services
from kuaishu.collect.enums import FINISHED, LABELS, RunStatus
from kuaishu.collect.models import LoadRun
from kuaishu.collect.schedule import CHINA
from kuaishu.db import transaction
from kuaishu.errors import AppError
from kuaishu.settings import get_settings
from kuaishu.store import services as versions
from kuaishu.store import storage
from kuaishu.store.models import Dataset, DatasetVersion

runs_app = typer.Typer(help="加载任务", no_args_is_help=True)
versions_app = typer.Typer(help="数据版本", no_args_is_help=True)

POLL_SECONDS = 0.25


def ingest(
    file: Annotated[
        Path | None,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="要加载的文件"),
    ] = None,
    resource: Annotated[str | None, typer.Option("--resource", help="目录条目（资源）代码")] = None,
    source: Annotated[int | None, typer.Option("--source", help="已配置的采集来源 id")] = None,
) -> None:
    """加载一个文件或运行一个采集来源，显示进度，成功时发布新数据版本。"""
    if file is None and source is None:
        fail(AppError("请给出要加载的文件，或用 --source 指定采集来源。", code="no_input"))
    if file is not None and resource is None and source is None:
        fail(AppError("请用 --resource 指定要加载到的目录条目代码。", code="no_resource"))
    factory = session_factory()
    run_id = _queue(factory, file, resource, source)
    run = _run_with_progress(factory, run_id)
    _report(factory, run)


def _queue(
    factory: sessionmaker[Session], file: Path | None, resource: str | None, source_id: int | None
) -> int:
    """A queued run for the file or the source, the command line acting as the operator."""
    upload = _stage(file) if file is not None else None
    try:
        with transaction(factory) as session:
            source = services.get_source(session, source_id) if source_id else None
            entry = (
                services.loadable_entry(session, code=resource)
                if resource
                else services.loadable_entry(session, entry_id=source.entry_id if source else 0)
            )
            run = services.queue_load(
                session,
                actor=CLI_ACTOR,
                entry=entry,
                source=source,
                upload=upload,
                filename=file.name if file else None,
            )
            return run.id
    except AppError as exc:
        fail(exc)
    finally:
        if upload is not None:
            upload.unlink(missing_ok=True)


def _stage(file: Path) -> Path:
    """The file linked (or copied) into the data folder: the run keeps it, the user keeps theirs."""
    incoming = storage.data_root() / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    staged = incoming / uuid.uuid4().hex
    try:
        os.link(file, staged)
    except OSError:  # another file system, or links not allowed: copy
        shutil.copyfile(file, staged)
    return staged


def _run_with_progress(factory: sessionmaker[Session], run_id: int) -> LoadRun:
    """Run the load in a thread; draw its progress from the run row; Ctrl-C asks it to stop."""
    from kuaishu.collect.jobs import InlineRunner

    worker = threading.Thread(target=InlineRunner(factory).submit, args=(run_id,), daemon=True)
    worker.start()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("排队", total=100, rows="")
        while True:
            try:
                worker.join(POLL_SECONDS)
            except KeyboardInterrupt:
                _cancel(factory, run_id)
                continue
            run = _read(factory, run_id)
            rows = f"{run.rows_read:,} 行" + (f" / {run.rows_total:,}" if run.rows_total else "")
            bar.update(task, completed=run.percent, description=run.phase or "排队", rows=rows)
            if not worker.is_alive():
                return run


def _read(factory: sessionmaker[Session], run_id: int) -> LoadRun:
    with transaction(factory) as session:
        return services.get_run(session, run_id)


def _cancel(factory: sessionmaker[Session], run_id: int) -> None:
    console.print("正在取消……")
    try:
        with transaction(factory) as session:
            services.cancel_run(session, actor=CLI_ACTOR, run=services.get_run(session, run_id))
    except AppError:  # it finished meanwhile
        return


def _report(factory: sessionmaker[Session], run: LoadRun) -> None:
    """The outcome in words; a failed or cancelled load ends with exit code 1."""
    if run.status != RunStatus.SUCCEEDED:
        label = LABELS[RunStatus][run.status]
        console.print(
            f"[red]加载{label}[/red]（任务 {run.id}，{run.error_code}）：{run.error_message}"
        )
        raise typer.Exit(code=1)
    with transaction(factory) as session:
        version = session.get(DatasetVersion, run.version_id)
    assert version is not None
    console.print(
        f"[green]加载成功[/green]（任务 {run.id}）：读入 {run.rows_read:,} 行，"
        f"入库 {run.rows_loaded:,} 行，隔离 {run.rows_quarantined:,} 行"
    )
    console.print(f"已发布数据版本 第 {version.number} 版，SM3 {version.checksum_sm3}")


def worker(
    concurrency: Annotated[int | None, typer.Option(help="同时运行的加载数")] = None,
) -> None:
    """运行加载任务的 worker 进程（生产模式，需要 PostgreSQL）。"""
    from kuaishu.collect import queue
    from kuaishu.collect.jobs import Background
    from kuaishu.collect.pipeline import worker_name

    settings = get_settings()
    url = settings.resolved_database_url
    if not queue.is_postgres(url):
        fail(queue.QueueNeedsPostgres())
    factory = session_factory()
    engine = factory.kw["bind"]
    if not queue.has_schema(engine):
        fail(queue.QueueSchemaMissing())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    name = worker_name()
    background = Background(factory, queue.QueueRunner(factory, url))
    resumed = background.start()
    console.print(
        f"kuaishu worker {name} 已启动：并发 {concurrency or settings.job_threads}，"
        f"重新排队 {len(resumed)} 个任务（{engine.url.render_as_string(hide_password=True)}）"
    )
    try:
        queue.run_worker(factory, url, concurrency=concurrency or settings.job_threads, name=name)
    finally:
        background.stop()
        console.print(f"kuaishu worker {name} 已停止")


@runs_app.command("list")
def runs_list(
    resource: Annotated[str, typer.Option("--resource", help="目录条目（资源）代码")],
    limit: Annotated[int, typer.Option(help="最多显示几条")] = 20,
) -> None:
    """列出一个资源最近的加载任务。"""
    try:
        with transaction(session_factory()) as session:
            entry = services.loadable_entry(session, code=resource)
            runs = services.runs_of(session, actor=CLI_ACTOR, entry=entry, limit=limit)
            numbers = {v.id: v.number for v in versions.versions_of(session, entry.id)}
    except AppError as exc:
        fail(exc)
    table = Table("任务", "状态", "触发", "输入", "读入", "入库", "隔离", "版本", "开始", "说明")
    for run in runs:
        table.add_row(
            str(run.id),
            LABELS[RunStatus][run.status],
            run.trigger,
            run.input_name or (f"来源 {run.source_id}" if run.source_id else ""),
            f"{run.rows_read:,}",
            f"{run.rows_loaded:,}",
            f"{run.rows_quarantined:,}",
            str(numbers.get(run.version_id or 0, "")),
            _when(run.started_at or run.created_at),
            run.error_message or ("" if run.status in FINISHED else run.phase),
        )
    console.print(table)


@versions_app.command("list")
def versions_list(
    resource: Annotated[str, typer.Option("--resource", help="目录条目（资源）代码")],
) -> None:
    """列出一个资源的数据版本（* 为正在提供服务的版本）。"""
    try:
        with transaction(session_factory()) as session:
            entry = services.loadable_entry(session, code=resource)
            authorize(CLI_ACTOR, "collect.view", entry)
            found = list(versions.versions_of(session, entry.id))
            dataset = session.get(Dataset, entry.id)
            current = dataset.current_version_id if dataset else None
    except AppError as exc:
        fail(exc)
    table = Table("版本", "状态", "行数", "大小", "SM3", "生成", "任务")
    for version in found:
        table.add_row(
            f"{'*' if version.id == current else ' '} {version.number}",
            _STATES[version.state],
            f"{version.row_count:,}",
            f"{version.byte_size / 1024**2:.1f} MB",
            version.checksum_sm3[:16] + "…",
            _when(version.created_at),
            str(version.run_id or ""),
        )
    console.print(table)


@versions_app.command("publish")
def versions_publish(
    number: int,
    resource: Annotated[str, typer.Option("--resource", help="目录条目（资源）代码")],
    reason: Annotated[str, typer.Option(help="发布或回退的原因")] = "",
) -> None:
    """发布（或回退到）某个数据版本：一次原子切换。"""
    try:
        with transaction(session_factory()) as session:
            entry = services.loadable_entry(session, code=resource)
            version = versions.publish_version(
                session, actor=CLI_ACTOR, entry=entry, number=number, reason=reason
            )
            console.print(
                f"“{entry.name}”现在提供第 {version.number} 版数据（{version.row_count:,} 行）"
            )
    except AppError as exc:
        fail(exc)


_STATES = {"ready": "已生成", "published": "已发布", "retired": "已清理"}


def _when(moment: datetime | None) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S") if moment else ""
