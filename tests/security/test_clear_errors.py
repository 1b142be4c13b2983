"""Errors that name the problem (issue 10, class 13), each reproduced for real: a 10,000-column
CSV, a full disk, a read-only data folder, a huge offset or a wrongly typed paging value. Each
gets its own stable code and a Chinese message that says what is wrong (English in the catalog).

The full and read-only disks are small tmpfs mounts (the tests run as root in the container);
where mounting is not allowed those tests skip, and the error mapping is still checked on real
OSErrors (``/dev/full`` gives ENOSPC)."""

from __future__ import annotations

import base64
import errno
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.collect.enums import RunStatus
from kuaishu.collect.jobs import InlineRunner
from kuaishu.errors import DiskFull, StorageNotWritable, storage_problem
from kuaishu.i18n import current_locale, translations
from kuaishu.settings import get_settings
from tests.functional.collect.conftest import API, Bureau, load
from tests.functional.store.conftest import Served
from tests.http import ok, refused
from tests.unit.collect import jobs_support as js

Mount = Callable[..., Path]


# --- a file far too wide ---------------------------------------------------------------------------


def wide_csv(path: Path, columns: int, rows: int) -> bytes:
    lines = [",".join(f"指标{n}" for n in range(columns))]
    lines += [",".join(str(n * r % 997) for n in range(columns)) for r in range(rows)]
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(data)
    return data


def test_a_ten_thousand_column_csv_is_refused_naming_the_count_and_the_limit(
    http: TestClient, bureau: Bureau, data_dir: Path, tmp_path: Path
) -> None:
    content = wide_csv(tmp_path / "宽表.csv", 10_000, 200)
    run = load(http, bureau.entry.id, content, bureau.cataloguer, filename="宽表.csv")
    assert run["status"] == "failed"
    error = run["error"]
    assert error["code"] == "too_many_columns", error
    assert "文件有 10000 列，超过上限 2000 列" in error["message"]
    assert error["details"] == {"columns": 10000, "limit": 2000}
    assert "第 ? 行" not in error["message"]


def test_running_out_of_memory_names_memory_not_a_line(
    http: TestClient,
    bureau: Bureau,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the column limit raised past it, the same file runs DuckDB out of a load's memory:
    that is said as such, not as "line ? cannot be read as CSV"."""
    monkeypatch.setattr(get_settings(), "max_columns", 20_000)
    content = wide_csv(tmp_path / "宽表.csv", 10_000, 200)
    run = load(http, bureau.entry.id, content, bureau.cataloguer, filename="宽表.csv")
    assert run["status"] == "failed"
    assert run["error"]["code"] == "load_out_of_memory", run["error"]
    assert "内存" in run["error"]["message"] and "第 ? 行" not in run["error"]["message"]


# --- a full disk, a read-only folder ----------------------------------------------------------------


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Mount]:
    """``mount(kib, read_only=False)``: a tmpfs of that size; unmounted afterwards."""
    mounted: list[Path] = []

    def make(kib: int, *, read_only: bool = False) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={kib}k,mode=0700", "tmpfs", str(point)],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small file system here: {done.stderr.decode().strip()}")
        mounted.append(point)
        if read_only:
            remount_read_only(point)
        return point

    yield make
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], check=False)


def remount_read_only(point: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)


def use_data_dir(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setattr(get_settings(), "data_dir", folder)


def random_csv(path: Path, rows: int) -> Path:
    """Rows DuckDB cannot compress much (random hex), so the load's files fill a small disk."""
    with path.open("w", encoding="utf-8") as fh:
        fh.write("编号,地区,人口,日期\n")
        for i in range(rows):
            fh.write(f"{os.urandom(8).hex()},{os.urandom(8).hex()},{i},2020-01-01\n")
    return path


def test_an_upload_onto_a_full_disk_says_the_disk_is_full(
    http: TestClient, bureau: Bureau, mount: Mount, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_data_dir(monkeypatch, mount(256))
    content = b"\xe5\x9c\xb0\xe5\x8c\xba,\xe4\xba\xba\xe5\x8f\xa3\n" + b"x,1\n" * 200_000  # ~800 KB
    response = http.post(
        f"{API}/entries/{bureau.entry.id}/upload",
        files={"file": ("常住人口.csv", content, "text/csv")},
        headers=bureau.cataloguer,
    )
    error = refused(response, 507, "disk_full")
    assert error["message"].startswith("服务器磁盘空间不足")


def test_a_load_that_fills_the_disk_says_the_disk_is_full_not_bad_csv(
    factory: sessionmaker[Session],
    mount: Mount,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    source = random_csv(tmp_path / "人口.csv", 25_000)  # 1.2 MB
    # Room for the input and a little more: the disk fills while DuckDB stages the rows.
    use_data_dir(monkeypatch, mount(source.stat().st_size // 1024 + 1500))
    entry = js.make_entry(factory)
    run_id = js.queue_file(factory, entry, source)

    InlineRunner(factory).submit(run_id)

    run = js.run_of(factory, run_id)
    assert run.status == RunStatus.FAILED
    assert run.error_code == "disk_full", (run.error_code, run.error_message)
    assert (run.error_message or "").startswith("服务器磁盘空间不足")
    assert js.staging_folders(entry) == []  # and what it had written is gone


def test_an_upload_into_a_read_only_folder_says_so(
    http: TestClient, bureau: Bureau, mount: Mount, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_data_dir(monkeypatch, mount(1024, read_only=True))
    response = http.post(
        f"{API}/entries/{bureau.entry.id}/upload",
        files={"file": ("常住人口.csv", "地区,人口\n贵阳市,1\n".encode(), "text/csv")},
        headers=bureau.cataloguer,
    )
    error = refused(response, 503, "storage_not_writable")
    assert "只读" in error["message"]


def test_a_load_into_a_read_only_folder_says_so(
    factory: sessionmaker[Session],
    mount: Mount,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    disk = mount(4 * 1024)
    use_data_dir(monkeypatch, disk)
    entry = js.make_entry(factory)
    run_id = js.queue_file(factory, entry, js.write_csv(tmp_path / "人口.csv", 100))
    remount_read_only(disk)  # e.g. the file system went read-only after an I/O error

    InlineRunner(factory).submit(run_id)

    run = js.run_of(factory, run_id)
    assert run.status == RunStatus.FAILED
    assert run.error_code == "storage_not_writable", (run.error_code, run.error_message)


def test_real_operating_system_errors_map_to_their_own_codes(tmp_path: Path) -> None:
    """Always runs, mount or not: ENOSPC from /dev/full, and EROFS/EACCES as the OS raises them."""
    with pytest.raises(OSError) as full, open("/dev/full", "wb", buffering=0) as device:
        device.write(b"x")
    assert full.value.errno == errno.ENOSPC
    assert isinstance(storage_problem(full.value), DiskFull)
    wrapped = RuntimeError("while writing")
    wrapped.__cause__ = full.value
    assert isinstance(storage_problem(wrapped), DiskFull)
    for number in (errno.EROFS, errno.EACCES):
        problem = OSError(number, os.strerror(number), str(tmp_path))
        assert isinstance(storage_problem(problem), StorageNotWritable)
    assert storage_problem(OSError(errno.ENOENT, "gone")) is None
    # DuckDB says it in its message; a CSV error quoting a user's line that looks alike does not.
    assert isinstance(
        storage_problem(Exception('IO Error: Could not write file "x": No space left on device')),
        DiskFull,
    )
    assert (
        storage_problem(Exception("Invalid Input Error: CSV Error on Line: 2\nNo space left on"))
        is None
    )


def test_the_new_messages_have_english() -> None:
    catalog = translations("en")
    for error in (DiskFull(), StorageNotWritable()):
        assert catalog.gettext(error.message) != error.message
    token = current_locale.set("en")
    try:
        assert "disk" in DiskFull().localized().lower()
    finally:
        current_locale.reset(token)


# --- paging values: a clear 422, never an engine 500 ------------------------------------------------


def cursor_of(value: Any, sort: list[str], rowid: Any = 1) -> str:
    raw = json.dumps([1, sort, [value], rowid]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"offset": str(10**23)}, "offset_too_large"),
        ({"offset": str(2**63)}, "offset_too_large"),
        ({"offset": "-1"}, "validation_failed"),
        ({"offset": "abc"}, "validation_failed"),
        ({"limit": str(2**70)}, "limit_too_large"),
        ({"limit": "0"}, "validation_failed"),
        ({"limit": "1.5"}, "validation_failed"),
        ({"人口__gt": str(10**40)}, "bad_value"),
        ({"人口": str(-(10**30))}, "bad_value"),
    ],
)
def test_out_of_range_and_wrongly_typed_paging_values_are_a_clear_422(
    served: Served, params: dict[str, str], code: str
) -> None:
    response = served.client.get(served.url("query"), params=params, headers=served.member)
    error = refused(response, 422, code)
    assert error["message"]


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "人口", "cursor": cursor_of("not a number", ["人口"])},
        {"sort": "出生日期", "cursor": cursor_of(12, ["出生日期"])},
        {"sort": "人口", "cursor": cursor_of(3, ["人口"], rowid=2**80)},
    ],
)
def test_a_hand_made_or_wrongly_typed_cursor_is_a_clear_400(
    served: Served, params: dict[str, str]
) -> None:
    response = served.client.get(served.url("query"), params=params, headers=served.member)
    assert refused(response, 400, "bad_cursor")["message"]


@pytest.mark.parametrize("params", [{"limit": str(2**63)}, {"offset": str(2**63)}])
def test_a_download_with_a_huge_limit_or_offset_is_a_clear_422(
    served: Served, params: dict[str, str]
) -> None:
    response = served.client.get(served.url("download.csv"), params=params, headers=served.member)
    assert response.status_code == 422 and response.json()["error"]["code"] in (
        "limit_too_large",
        "offset_too_large",
    )


def test_a_real_cursor_still_pages(served: Served) -> None:
    first = ok(served.get("query", sort="人口", limit="50"))
    second = ok(served.get("query", sort="人口", limit="50", cursor=first["next_cursor"]))
    assert len(second["rows"]) == 50 and second["rows"][0] != first["rows"][0]
