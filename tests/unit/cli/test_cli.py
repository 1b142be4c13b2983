"""The command line: init is safe twice; the demo builds every role; errors are clear."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUAISHU_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    env.pop("KUAISHU_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "kuaishu.cli", *args],
        env=env,
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
    assert "新冠肺炎疫情每日统计，229084 行" in demo.stdout
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
