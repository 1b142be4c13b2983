"""The command line: init is safe twice; the demo builds every role; errors are clear."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kuaishu.catalog.models import CatalogEntry
from kuaishu.collect.demo import DATASETS
from kuaishu.db import make_engine
from kuaishu.share.models import ShareGrant
from kuaishu.store.models import Dataset, DatasetVersion
from tests.samples import sample, uses

COVID = sample("covid_daily_24k.csv")


def run(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    """The command as a newcomer runs it: from another folder, with a home of its own, and no
    variable pointing at sample files outside the package."""
    elsewhere = data_dir / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "KUAISHU_DATA_DIR": str(data_dir),
        "COLUMNS": "200",
        "HOME": str(elsewhere),
    }
    for name in ("KUAISHU_DATABASE_URL", "KUAISHU_SAMPLES", "KUAISHU_SAMPLES_DIR"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "kuaishu.cli", *args],
        env=env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.xdist_group("cli")
def test_init_twice_then_demo_then_user_list(tmp_path: Path) -> None:
    first = run(["init"], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "空 → 0001" in first.stdout or "→" in first.stdout
    second = run(["init"], tmp_path)
    assert second.returncode == 0 and "已是最新" in second.stdout
    demo = run(["demo", "--no-serve"], tmp_path)
    assert demo.returncode == 0, demo.stderr
    for username in (
        "operator",
        "auditor",
        "admin.stats",
        "cataloguer",
        "reviewer",
        "officer",
        "consumer",
    ):
        assert username in demo.stdout
    # The real sample files are loaded behind their entries, none failing.
    assert "新冠肺炎疫情每日统计，24159 行" in demo.stdout
    assert "全国普通高等学校名单，2631 行" in demo.stdout
    assert "未能加载" not in demo.stdout
    # Both sides of the exchange have something to do on first sign-in.
    assert "演示共享：consumer 已获授权" in demo.stdout and "待 officer 答复" in demo.stdout
    again = run(["demo", "--no-serve"], tmp_path)
    assert "已存在" in again.stdout
    users = run(["user", "list"], tmp_path)
    assert "平台运营者" in users.stdout and "安全审计员" in users.stdout


@pytest.mark.xdist_group("cli")
def test_bad_department_code_is_a_clear_error(tmp_path: Path) -> None:
    assert run(["demo", "--no-serve"], tmp_path).returncode == 0
    bad = run(
        ["dept", "add", "5200", "某局", "91110000600037341L", "--region-code", "520000"], tmp_path
    )
    assert bad.returncode == 2
    assert "invalid_department_code" in bad.stdout


@pytest.mark.xdist_group("cli")
@uses(COVID)
def test_demo_on_a_fresh_install_has_catalog_data_and_a_grant(tmp_path: Path) -> None:
    """`kuaishu demo` needs nothing beside the package: the Guangxi catalog, every shipped sample
    file served as a version of its entry, and the consumer's grant are all there."""
    demo = run(["demo", "--no-serve"], tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert "未能加载" not in demo.stdout

    with COVID.open(encoding="utf-8", newline="") as fh:
        covid_rows = sum(1 for _ in csv.reader(fh)) - 1  # the header
    engine = make_engine(f"sqlite:///{tmp_path / 'kuaishu.db'}")
    try:
        with Session(engine) as session:
            entries = session.scalar(select(func.count()).select_from(CatalogEntry))
            assert entries is not None and entries > 1100  # the Guangxi portal's 1,118 datasets
            query = (
                select(CatalogEntry.name, DatasetVersion.row_count)
                .join(Dataset, Dataset.entry_id == CatalogEntry.id)
                .join(DatasetVersion, DatasetVersion.id == Dataset.current_version_id)
            )
            served = {name: rows for name, rows in session.execute(query)}
            assert set(served) == {dataset.name for dataset in DATASETS}
            assert all(rows > 0 for rows in served.values()), served
            assert served["新冠肺炎疫情每日统计"] == covid_rows == 24_159
            grants = session.scalar(select(func.count()).select_from(ShareGrant))
            assert grants == 1
    finally:
        engine.dispose()
