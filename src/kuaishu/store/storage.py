"""Where versions live on disk, and how a folder becomes a version without ever being half-seen.

A load writes into ``versions/<entry>/.staging-<run>/``; when every file is complete and synced the
folder is renamed to ``versions/<entry>/<number>/`` (one atomic rename), and only then does the
database start pointing at it. A process killed at any moment leaves either a staging folder or an
unreferenced version folder, both removed by :func:`sweep`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes

from kuaishu.settings import get_settings

DATA_FILE = "data.parquet"
SERVE_FILE = "serve.duckdb"
QUARANTINE_FILE = "quarantine.parquet"
STAGING_PREFIX = ".staging-"
INPUT_FILE = "input"
# Files and folders the process creates are its own alone: 0600 and 0700.
PRIVATE_UMASK = 0o077
# Spooled uploads and exports a killed process left behind are removed after a day.
LEFTOVER_SECONDS = 86_400

log = logging.getLogger(__name__)


def data_root() -> Path:
    return get_settings().data_dir.resolve()


def prepare_data_dir() -> Path:
    """The data folder, 0700; and from here on every file the process creates is 0600 and every
    folder 0700 (umask 077) — versions, keys, the SQLite file, uploads, spill and change files,
    whoever writes them (DuckDB, SQLite, Python)."""
    os.umask(PRIVATE_UMASK)
    root = get_settings().data_dir
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if root.stat().st_mode & 0o077:  # made earlier, by hand or by an older kuaishu
        try:
            root.chmod(0o700)
        except OSError as error:  # read-only: every write will say so, with its own code
            log.warning("could not make the data folder private: %s", error)
    return root


def versions_dir(entry_id: int) -> Path:
    return data_root() / "versions" / str(entry_id)


def staging_path(entry_id: int, run_id: int) -> Path:
    return versions_dir(entry_id) / f"{STAGING_PREFIX}{run_id}"


def staging_dir(entry_id: int, run_id: int) -> Path:
    """A fresh, empty staging folder for ``run_id``."""
    path = staging_path(entry_id, run_id)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def pseudonym_map() -> Path:
    """The sealed pseudonym map: under ``keys/``, apart from every version's data (GB/T 35273)."""
    return data_root() / "keys" / "pseudonyms.duckdb"


def run_dir(run_id: int) -> Path:
    """Files a run keeps after it ends: its staged input and its quarantine."""
    path = data_root() / "runs" / str(run_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def discard(path: Path) -> bool:
    """Remove a run's file, and its run folder once nothing else (a quarantine) is in it; False
    when the file system refused (read-only, say): a later sweep tries again."""
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        log.warning("could not remove %s: %s", path, error)
        return False
    with contextlib.suppress(OSError):  # not empty, or already gone
        path.parent.rmdir()
    return True


def sweep_leftovers(now: float | None = None) -> list[Path]:
    """Spooled uploads, staged command-line inputs, pushed bodies and export scratch folders
    older than a day: a process killed while holding them never removed them."""
    cutoff = (now if now is not None else time.time()) - LEFTOVER_SECONDS
    root = data_root()
    found = [
        *_children(root / "uploads"),
        *_children(root / "incoming"),
        *_children(root / "tmp"),
        *(root / "runs").glob(".push-*"),
    ]
    removed = []
    for path in found:
        try:
            if path.lstat().st_mtime >= cutoff:
                continue
        except FileNotFoundError:
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _children(folder: Path) -> list[Path]:
    return list(folder.iterdir()) if folder.is_dir() else []


def resolve(relative: str) -> Path:
    return data_root() / relative


def relative(path: Path) -> str:
    return str(path.resolve().relative_to(data_root()))


def sm3_file(path: Path, chunk: int = 1 << 20) -> str:
    """SM3 of a file, read in chunks (versions can be gigabytes)."""
    digest = hashes.Hash(hashes.SM3())
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.finalize().hex()


def _fsync_tree(path: Path) -> None:
    for child in path.iterdir():
        if child.is_file():
            with child.open("rb") as fh:
                os.fsync(fh.fileno())
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def promote(staging: Path, entry_id: int, number: int) -> Path:
    """Make ``staging`` version ``number``: sync every file, then one atomic rename."""
    _fsync_tree(staging)
    final = versions_dir(entry_id) / str(number)
    if final.exists():  # left by a process killed after its rename, before its commit
        shutil.rmtree(final)
    os.replace(staging, final)
    _fsync_tree(final.parent)
    return final


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def sweep(entry_id: int, referenced: set[str]) -> list[Path]:
    """Remove an entry's staging folders and version folders no version row points at."""
    removed: list[Path] = []
    folder = versions_dir(entry_id)
    if not folder.exists():
        return removed
    for child in folder.iterdir():
        if child.is_dir() and relative(child) not in referenced:
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    return removed
