"""Files at rest (issue 10, class 11): the data folder is the server's alone (0700, files 0600),
an uploaded input is gone when its load ends (unless KUAISHU_KEEP_INPUTS_HOURS keeps it), and a
killed or failed run leaves nothing behind that would grow with every run."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.collect.enums import RunStatus
from kuaishu.collect.jobs import InlineRunner, resume
from kuaishu.collect.models import LoadRun
from kuaishu.db import transaction, utcnow
from kuaishu.periodic import sweep_files
from kuaishu.security.crypto import keyring
from kuaishu.settings import get_settings
from kuaishu.store import storage
from kuaishu.web.app import create_app
from tests.functional.collect.conftest import Bureau, load
from tests.unit.collect import jobs_support as js

GOOD = "地区,人口\n贵阳市,598.7\n遵义市,660.6\n".encode()
BAD = "地区,人口\n贵阳市,598.7,多余\n".encode()


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The usual 022, as a service manager starts the process: files would be world-readable."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


@pytest.fixture
def fresh_app(
    load_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loose_umask: None
) -> Iterator[TestClient]:
    """The app started on a data folder that does not exist yet (a first start)."""
    folder = tmp_path / "fresh-data"
    monkeypatch.setattr(get_settings(), "data_dir", folder)
    with TestClient(create_app(engine=load_engine), base_url="http://testserver") as client:
        yield client


def loose(folder: Path) -> list[str]:
    """Everything under ``folder`` (itself included) that anyone but its owner could open."""
    found = []
    for path in [folder, *folder.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077:
            found.append(f"{path.relative_to(folder.parent)} {oct(mode)}")
    return found


def run_input(run_id: int) -> Path:
    return storage.data_root() / "runs" / str(run_id) / storage.INPUT_FILE


def test_the_data_folder_and_everything_in_it_is_the_servers_alone(
    fresh_app: TestClient, bureau: Bureau, factory: sessionmaker[Session]
) -> None:
    folder = get_settings().data_dir
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    keyring().digest("test", "x")  # the master key file, made in this folder on first use
    run = load(fresh_app, bureau.entry.id, GOOD, bureau.cataloguer)  # upload, load, version
    assert run["status"] == "succeeded", run
    quarantined = load(fresh_app, bureau.entry.id, BAD, bureau.cataloguer)
    assert quarantined["status"] == "failed"
    # A download's scratch file, and the version's files, key index and quality report.
    got = fresh_app.get(f"/api/v1/data/{bureau.entry.code}/download.csv", headers=bureau.cataloguer)
    assert got.status_code == 200
    made = sorted(p.name for p in folder.rglob("*") if p.is_file())
    assert storage.DATA_FILE in made and storage.SERVE_FILE in made, made
    assert loose(folder) == []


def test_an_existing_open_data_folder_is_closed_at_start(
    load_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loose_umask: None
) -> None:
    folder = tmp_path / "old-data"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    monkeypatch.setattr(get_settings(), "data_dir", folder)
    create_app(engine=load_engine)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_an_uploaded_input_is_removed_when_its_load_ends(
    factory: sessionmaker[Session], data_dir: Path, tmp_path: Path
) -> None:
    entry = js.make_entry(factory)
    good = js.queue_file(factory, entry, js.write_csv(tmp_path / "人口.csv", 50))
    bad_csv = tmp_path / "坏.csv"
    bad_csv.write_text("编号,地区,人口,日期\nID1,甲,1,2020-01-01,多余\n", encoding="utf-8")
    bad = js.queue_file(factory, entry, bad_csv)
    assert run_input(good).exists() and run_input(bad).exists()

    for run_id in (good, bad):
        InlineRunner(factory).submit(run_id)  # the load, start to end, in this thread

    assert [js.run_of(factory, r).status for r in (good, bad)] == [
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
    ]
    for run_id in (good, bad):
        assert not run_input(run_id).exists()
        assert js.run_of(factory, run_id).input_path is None
    assert not (data_dir / "runs" / str(bad)).exists()  # no empty folder per run either


def test_an_input_is_kept_as_long_as_the_setting_says_then_swept(
    fresh_app: TestClient,
    bureau: Bureau,
    factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(get_settings(), "keep_inputs_hours", 2)
    run = load(fresh_app, bureau.entry.id, GOOD, bureau.cataloguer)
    kept = run_input(run["id"])
    assert kept.read_bytes() == GOOD  # kept for a second look

    sweep_files(factory)  # within the two hours: stays
    assert kept.exists()

    with transaction(factory) as session:
        row = session.get(LoadRun, run["id"])
        assert row is not None
        row.finished_at = utcnow() - timedelta(hours=3)
    sweep_files(factory)
    assert not kept.exists()
    assert js.run_of(factory, run["id"]).input_path is None


def test_a_killed_run_leaves_no_input_and_no_partial_files(
    factory: sessionmaker[Session], data_dir: Path, tmp_path: Path
) -> None:
    entry = js.make_entry(factory)
    run_id = js.queue_file(factory, entry, js.write_csv(tmp_path / "人口.csv", 500))
    staged = run_input(run_id)
    assert staged.exists()
    # What `kill -9` in the middle of the load leaves: a running run that no longer beats, and
    # its staging folder with a half-written work database and spill files.
    partial = storage.staging_dir(entry.id, run_id)
    (partial / "work.duckdb").write_bytes(b"\0" * 4096)
    (partial / "spill").mkdir()
    (partial / "spill" / "duckdb_temp_block-1.block").write_bytes(b"\0" * 4096)
    with transaction(factory) as session:
        row = session.get(LoadRun, run_id)
        assert row is not None
        row.status = RunStatus.RUNNING
        row.started_at = row.heartbeat_at = utcnow() - timedelta(minutes=10)
        row.worker = "elsewhere:1"

    resume(factory, InlineRunner(factory))  # the next start

    assert js.run_of(factory, run_id).status == RunStatus.FAILED
    assert not partial.exists()
    assert not staged.exists()
    assert not (data_dir / "runs" / str(run_id)).exists()


def test_leftover_spools_of_killed_requests_are_swept_after_a_day(
    factory: sessionmaker[Session], data_dir: Path
) -> None:
    uploads = data_dir / "uploads"
    uploads.mkdir()
    old = uploads / "tmpabc.csv"
    new = uploads / "tmpdef.csv"
    export = data_dir / "tmp" / "export-xyz"
    export.mkdir(parents=True)
    (export / "export").write_bytes(b"a,b\n")
    pushed = data_dir / "runs" / ".push-123"
    pushed.parent.mkdir()
    for path in (old, new, pushed):
        path.write_bytes(b"a,b\n")
    day_ago = utcnow().timestamp() - storage.LEFTOVER_SECONDS - 60
    for path in (old, export, pushed):
        os.utime(path, (day_ago, day_ago))

    sweep_files(factory)

    assert (old.exists(), export.exists(), pushed.exists()) == (False, False, False)
    assert new.exists()  # an upload in progress right now


def test_the_keep_inputs_setting_is_documented() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "KUAISHU_KEEP_INPUTS_HOURS" in readme
    assert "KUAISHU_MAX_COLUMNS" in readme
