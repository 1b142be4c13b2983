"""The servers the serving and export benchmarks talk to, each a child process on loopback.

kuaishu: an embedded platform in ``bench/out/platform/`` with generated datasets loaded through
the real pipeline (kept between runs: loading is the ingest benchmark's business, not this one's),
an API key of the owning department's user, and ``kuaishu serve``. Datasette: the same rows
inserted by ``sqlite-utils`` with an index on the key column, and ``datasette serve``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _common import KEY, OUT, PEOPLE, PYTHON, VENV_BIN, generate_people, run_child

COMMON = str(Path(__file__).resolve().parent / "_common.py")
PLATFORM = OUT / "platform"
STATE = PLATFORM / "bench.json"


@dataclass
class Loaded:
    """A generated dataset loaded into the bench platform."""

    rows: int
    csv: Path
    entry_code: str
    entry_id: int
    version_id: int
    parquet: Path


def _state() -> dict[str, Any]:
    return json.loads(STATE.read_text()) if STATE.exists() else {}


def _save(state: dict[str, Any]) -> None:
    STATE.write_text(json.dumps(state, ensure_ascii=False, indent=2))


def loaded_people(rows: int) -> Loaded:
    """``rows`` generated people in the bench platform (loaded once, then reused)."""
    csv = generate_people(OUT / f"people-{rows}.csv", rows)
    state = _state()
    name = f"people-{rows}"
    if name not in state.get("datasets", {}):
        print(f"   loading {csv.name} into {PLATFORM} …", flush=True)
        command = [PYTHON, COMMON, "load", "--dataset", PEOPLE.name, "--csv", str(csv)]
        result = json.loads(run_child([*command, "--data-dir", str(PLATFORM)]).stdout)
        if result["status"] != "succeeded":
            raise RuntimeError(f"kuaishu load failed: {result['error']}")
        found = _version_parquet(result["version_id"])
        state = _state()
        state.setdefault("datasets", {})[name] = {
            "entry_code": result["entry_code"],
            "entry_id": result["entry_id"],
            "version_id": result["version_id"],
            "parquet": str(found),
        }
        _save(state)
    known = state["datasets"][name]
    return Loaded(
        rows=rows,
        csv=csv,
        entry_code=known["entry_code"],
        entry_id=known["entry_id"],
        version_id=known["version_id"],
        parquet=Path(known["parquet"]),
    )


def _version_parquet(version_id: int) -> Path:
    code = (
        "import sys, pathlib; sys.path.insert(0, sys.argv[1]); import _common; "
        "print(_common.version_parquet(pathlib.Path(sys.argv[2]), int(sys.argv[3])))"
    )
    bench = str(Path(__file__).resolve().parent)
    out = run_child([PYTHON, "-c", code, bench, str(PLATFORM), str(version_id)]).stdout
    return Path(out.strip().splitlines()[-1])


def api_key() -> str:
    """A read key of the department's user, made with ``kuaishu apikey create`` (once)."""
    state = _state()
    if "api_key" not in state:
        env = {"KUAISHU_DATA_DIR": str(PLATFORM), "COLUMNS": "400", "NO_COLOR": "1"}
        out = run_child(
            [str(VENV_BIN / "kuaishu"), "apikey", "create", "bench.loader", "--name", "基准测试"],
            env=env,
        ).stdout
        found = re.search(r"：\s*(\S+\.\S+)\s*$", out.strip())
        if not found:
            raise RuntimeError(f"no key in: {out}")
        state["api_key"] = found.group(1)
        _save(state)
    return str(state["api_key"])


def datasette_db(rows: int) -> Path:
    """The same rows in SQLite, inserted by sqlite-utils, key column indexed (made once)."""
    db = OUT / f"datasette-people-{rows}.db"
    done = db.with_suffix(".done")
    if not done.exists():
        db.unlink(missing_ok=True)
        csv = generate_people(OUT / f"people-{rows}.csv", rows)
        print(f"   sqlite-utils insert {csv.name} …", flush=True)
        tool = str(VENV_BIN / "sqlite-utils")
        run_child([tool, "insert", str(db), "people", str(csv), "--csv"])
        run_child([tool, "create-index", str(db), "people", KEY])
        done.write_text("ok")
    return db


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(
    command: list[str], *, port: int, ready: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Start ``command`` in its own process group; yield its base URL once ``ready`` answers."""
    base = f"http://127.0.0.1:{port}"
    log = (OUT / f"server-{port}.log").open("w")
    process = subprocess.Popen(  # noqa: S603 - our own servers
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited; see {log.name}")
            try:
                if httpx.get(base + ready, timeout=5).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[0]} not ready; see {log.name}")
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the group we started: uvicorn's workers too
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def kuaishu_server(workers: int) -> Any:
    port = free_port()
    command = [str(VENV_BIN / "kuaishu"), "serve", "--port", str(port)]
    return serving(
        [*command, "--workers", str(workers)],
        port=port,
        ready="/readyz",
        env={"KUAISHU_DATA_DIR": str(PLATFORM)},
    )


def datasette_server(db: Path) -> Any:
    """Datasette as it serves a published database, facet suggestions off (they cost a query)."""
    port = free_port()
    command = [str(VENV_BIN / "datasette"), "serve", str(db), "-p", str(port)]
    return serving(
        [*command, "--setting", "suggest_facets", "off"], port=port, ready="/-/versions.json"
    )
