"""What the collection benchmarks share: the datasets, a platform to load into, timed children.

Also a small command line run as a child process by the benchmarks, so that the peak memory of
one load (or one peer) is that process's own high-water mark:

    .venv/bin/python bench/_common.py load --data-dir DIR --dataset people --csv FILE
    .venv/bin/python bench/_common.py duckdb --dataset people --csv FILE --out FILE.parquet
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
# The recorded figures are on the full 229,084-row file: KUAISHU_SAMPLES names a folder holding it.
# Without it the benchmark runs on the trimmed copy shipped with the package (24,159 rows).
COVID_CSV = (
    Path(os.environ["KUAISHU_SAMPLES"]) / "covid_daily_229k.csv"
    if os.environ.get("KUAISHU_SAMPLES")
    else ROOT / "src/kuaishu/demo_data/covid_daily_24k.csv"
)
PYTHON = sys.executable
VENV_BIN = Path(PYTHON).parent


@dataclass(frozen=True)
class Dataset:
    """A CSV's columns as the catalog entry's data items: (name, item type code), and the keys."""

    name: str
    title: str
    items: tuple[tuple[str, str], ...]
    keys: tuple[str, ...] = ()


COVID = Dataset(
    "covid",
    "新冠肺炎疫情每日统计",
    (
        ("date", "D"),
        ("country", "C"),
        ("countryCode", "C"),
        ("province", "C"),
        ("provinceCode", "C"),
        ("city", "C"),
        ("cityCode", "C"),
        ("confirmed", "I"),
        ("suspected", "I"),
        ("cured", "I"),
        ("dead", "I"),
    ),
)
PEOPLE = Dataset(
    "people",
    "城乡居民社会救助对象名册",
    (
        ("公民身份号码", "C"),
        ("姓名", "C"),
        ("性别", "C"),
        ("所属地区", "C"),
        ("区划代码", "C"),
        ("出生日期", "D"),
        ("登记日期", "D"),
        ("家庭人口", "I"),
        ("月收入", "Y"),
        ("补助金额", "Y"),
        ("联系电话", "C"),
        ("备注", "C"),
    ),
    keys=("公民身份号码",),
)
DATASETS = {d.name: d for d in (COVID, PEOPLE)}
KEY = "公民身份号码"
REGION = "所属地区"
REGIONS = [
    "贵阳市",
    "遵义市",
    "六盘水市",
    "安顺市",
    "毕节市",
    "铜仁市",
    "黔东南州",
    "黔南州",
    "黔西南州",
]
REGION_CODES = [
    "520100",
    "520300",
    "520200",
    "520400",
    "520500",
    "520600",
    "522600",
    "522700",
    "522300",
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何罗高林龙吕蒙韦田"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
         "明", "超", "秀英", "华", "建国", "春梅", "志强", "桂兰", "海燕", "玉兰", "德明", "文", "霞"]  # fmt: skip
# The key's first 17 characters are a permutation of 0..10^15 (a multiplier prime to 10), so
# keys are unique and in no order in the file (a sorted file would flatter a Parquet scan); the
# last is a check character, 'X' in one of eleven, as in real ID numbers.
KEY_MULTIPLIER = 3_141_592_653_589_793


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v + "'" for v in values) + "]"


def _pick(values: list[str], salt: int) -> str:
    return f"list_element({_sql_list(values)}, (hash(i, {salt}) % {len(values)})::INT + 1)"


def people_sql(rows: int) -> str:
    """A SELECT of ``rows`` generated people (ids, Chinese names, regions, dates, money, gaps)."""
    return f"""
    SELECT
      '52' || lpad((((i + 1)::HUGEINT * {KEY_MULTIPLIER}) % 1000000000000000)::VARCHAR, 15, '0')
        || {_pick(list("0123456789X"), 16)} AS 公民身份号码,
      {_pick(list(SURNAMES), 1)} || {_pick(GIVEN, 2)} AS 姓名,
      CASE WHEN hash(i, 3) % 2 = 0 THEN '男' ELSE '女' END AS 性别,
      {_pick(REGIONS, 4)} AS 所属地区,
      {_pick(REGION_CODES, 4)} AS 区划代码,
      DATE '1940-01-01' + (hash(i, 5) % 25000)::INT AS 出生日期,
      DATE '2015-01-01' + (hash(i, 6) % 3650)::INT AS 登记日期,
      (1 + hash(i, 7) % 8)::INT AS 家庭人口,
      ((hash(i, 8) % 2000000) / 100)::DECIMAL(12, 2) AS 月收入,
      CASE WHEN hash(i, 9) % 4 = 0 THEN NULL
           ELSE ((hash(i, 10) % 100000) / 100)::DECIMAL(10, 2) END AS 补助金额,
      CASE WHEN hash(i, 11) % 10 = 0 THEN NULL
           ELSE '1' || {_pick(["3", "5", "8", "9"], 12)}
                || lpad((hash(i, 13) % 1000000000)::VARCHAR, 9, '0') END AS 联系电话,
      CASE WHEN hash(i, 14) % 20 = 0
           THEN {_pick(["低保户", "特困供养", "残疾人", "退役军人", "独居老人"], 15)} END AS 备注
    FROM range({rows}) t(i)
    """


def generate_people(path: Path, rows: int) -> Path:
    """Write ``rows`` generated people to ``path`` (skipped when a file of that size exists)."""
    import duckdb

    marker = path.with_suffix(".rows")
    if path.exists() and marker.exists() and marker.read_text().strip() == str(rows):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"COPY ({people_sql(rows)}) TO '{path}' (HEADER, DELIMITER ',')")
    con.close()
    marker.write_text(str(rows))
    return path


def people_rows_for_bytes(target: int) -> int:
    """How many generated rows make a CSV of about ``target`` bytes."""
    sample = OUT / "people-sample.csv"
    generate_people(sample, 200_000)
    per_row = sample.stat().st_size / 200_000
    return int(target / per_row) + 1


def count_lines(path: Path) -> int:
    """Data rows in a CSV with a header and no embedded newlines."""
    with path.open("rb") as fh:
        return sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 24), b"")) - 1


# Running and measuring children ----------------------------------------------------------------


@dataclass
class ChildResult:
    seconds: float
    peak_rss_mb: float
    stdout: str


def run_child(
    command: list[str], *, env: dict[str, str] | None = None, stdin: Path | None = None
) -> ChildResult:
    """Run ``command``, wall-clock timed, with its peak RSS (its own and its children's).

    ``os.wait4`` reaps the child and gives its resource usage, so the figure is that process's
    high-water mark, not the largest of every child this benchmark ever ran.
    """
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        stdin.open("rb") if stdin else open(os.devnull, "rb") as feed,
    ):
        started = time.perf_counter()
        child = subprocess.Popen(  # noqa: S603 - our own tools, argument lists
            command, stdin=feed, stdout=out, stderr=err, env={**os.environ, **(env or {})}
        )
        _pid, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} exited {child.returncode}:\n{stderr[-4000:]}")
    return ChildResult(seconds=seconds, peak_rss_mb=usage.ru_maxrss / 1024, stdout=stdout)


# The platform side (run inside a child process) --------------------------------------------------

USERNAME = "bench.loader"
DEPARTMENT_CODE = "52006"


def open_platform(data_dir: Path) -> Any:
    """A migrated embedded platform (SQLite + data folder) in ``data_dir``; its sessionmaker."""
    os.environ["KUAISHU_DATA_DIR"] = str(data_dir)
    from kuaishu.db import make_engine, make_sessionmaker
    from kuaishu.migrate import upgrade
    from kuaishu.settings import get_settings
    from kuaishu.web.app import load_domains

    get_settings.cache_clear()
    data_dir.mkdir(parents=True, exist_ok=True)
    load_domains()
    engine = make_engine(get_settings().resolved_database_url)
    upgrade(engine)
    return make_sessionmaker(engine)


def _bench_actor() -> Any:
    from kuaishu.accounts.actor import Actor
    from kuaishu.accounts.roles import Role

    return Actor(
        user_id=None,
        username="bench",
        auth_method="cli",
        roles=frozenset({(0, Role.PLATFORM_OPERATOR)}),
    )


def _loader(session: Any) -> Any:
    """The department's cataloguer who runs the loads (created on first use)."""
    from stdnum.cn import uscc

    from kuaishu.accounts import services
    from kuaishu.accounts.roles import LevelKind, Role

    user = services.get_user_by_username(session, USERNAME)
    if user is not None:
        return user
    actor = _bench_actor()
    region = services.create_region(
        session, actor=actor, code="520000", name="贵州省", level=LevelKind.PROVINCE
    )
    body = "11520000MB1234567"
    department = services.create_department(
        session,
        actor=actor,
        code=DEPARTMENT_CODE,
        name="贵州省民政厅",
        credit_code=body + uscc.calc_check_digit(body),
        region_id=region.id,
    )
    return services.create_staff_user(
        session,
        actor=actor,
        username=USERNAME,
        display_name="基准测试编目员",
        password=secrets.token_urlsafe(16) + "-Aa1",  # nobody signs in: API keys only
        department_id=department.id,
        roles=[Role.CATALOGUER, Role.DATA_OFFICER],
    )


def _entry(session: Any, dataset: Dataset, department_id: int, title: str) -> Any:
    from kuaishu.catalog.schemas import DataItemIn, RevisionIn
    from kuaishu.catalog.services import import_published

    data = RevisionIn(
        name=title,
        summary="性能基准测试数据（生成）",
        resource_class="3",
        share_type="unconditional",
        share_methods=["api", "file"],
        open_type="unconditional",
        update_cycle="daily",
        domain="社保就业",
        items=[
            DataItemIn(name=name, type_code=kind, is_key=name in dataset.keys)
            for name, kind in dataset.items
        ],
    )
    return import_published(session, actor=_bench_actor(), department_id=department_id, data=data)


class TimedConnection:
    """A DuckDB connection that adds each statement's time to ``timings`` (by its first words)."""

    def __init__(self, con: Any, timings: dict[str, float]) -> None:
        self._con = con
        self._timings = timings

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._con.execute(sql, *args, **kwargs)
        finally:
            label = "sql: " + " ".join(sql.split()[:3])[:48]
            self._timings[label] += time.perf_counter() - started

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


@contextmanager
def timed_pipeline(timings: dict[str, float]) -> Iterator[None]:
    """Time the pipeline's phases by wrapping its steps (the pipeline itself is unchanged)."""
    from kuaishu.collect import pipeline
    from kuaishu.store import storage

    def wrap(owner: Any, name: str, label: str) -> tuple[Any, str, Any]:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = original(*args, **kwargs)
            finally:
                timings[label] += time.perf_counter() - started
            if name == "_connect":
                return TimedConnection(result, timings)
            return result

        setattr(owner, name, timed)
        return owner, name, original

    saved = [
        wrap(pipeline, "_wait_for_lease", "lease"),
        wrap(pipeline, "_connect", "open work.duckdb"),
        wrap(pipeline, "read_file", "read (file → raw)"),
        wrap(pipeline, "convert", "convert + quarantine"),
        wrap(pipeline, "_load", "load total"),
        wrap(storage, "sm3_file", "SM3 checksum"),
        wrap(storage, "promote", "fsync + rename"),
        wrap(pipeline, "_publish", "publish total"),
    ]
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def load(
    data_dir: Path,
    dataset: Dataset,
    csv: Path,
    *,
    profile: Path | None = None,
    rules: list[dict[str, Any]] | None = None,
    masking: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Load ``csv`` into a new entry through the real pipeline; what happened, and how long.

    ``rules`` and ``masking`` are the entry's cleaning rules and masking policy, set first."""
    from kuaishu.accounts.auth import actor_for
    from kuaishu.collect.jobs import InlineRunner
    from kuaishu.collect.models import LoadRun
    from kuaishu.collect.services import queue_load
    from kuaishu.db import transaction

    factory = open_platform(data_dir)
    with transaction(factory) as session:
        user = _loader(session)
        entry = _entry(
            session, dataset, user.roles[0].department_id, f"{dataset.title}（{csv.stem}）"
        )
        if rules or masking:
            from kuaishu.clean.services import set_policy, set_rules

            owner = actor_for(user, auth_method="cli")
            if rules:
                set_rules(session, actor=owner, entry=entry, rules=rules)
            if masking:
                set_policy(session, actor=owner, entry=entry, rules=masking)
        entry_id, entry_code, user_id = entry.id, entry.code, user.id
    # The upload is moved into the run's folder: hand it a hard link, keep the bench's file.
    upload = data_dir / f"upload-{csv.name}"
    upload.unlink(missing_ok=True)
    try:
        os.link(csv, upload)
    except OSError:
        shutil.copyfile(csv, upload)
    timings: dict[str, float] = defaultdict(float)
    profiler = _profiler(profile)
    started = time.perf_counter()
    with timed_pipeline(timings):
        with transaction(factory) as session:
            from kuaishu.accounts.models import User
            from kuaishu.catalog.models import CatalogEntry

            loader = actor_for(session.get(User, user_id), auth_method="cli")
            run = queue_load(
                session,
                actor=loader,
                entry=session.get(CatalogEntry, entry_id),
                upload=upload,
                filename=csv.name,
            )
            run_id = run.id
        InlineRunner(factory).submit(run_id)
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.stop()
        profile.write_text(profiler.output_text(unicode=True, color=False))  # type: ignore[union-attr]
    with transaction(factory) as session:
        run = session.get(LoadRun, run_id)
        result = {
            "status": str(run.status),
            "error": run.error_message,
            "rows_read": run.rows_read,
            "rows_loaded": run.rows_loaded,
            "rows_quarantined": run.rows_quarantined,
            "rows_duplicate": run.rows_duplicate,
            "seconds": seconds,
            "phases": dict(timings),
            "entry_id": entry_id,
            "entry_code": entry_code,
            "username": USERNAME,
            "version_id": run.version_id,
            # A failed load says why in its log (the user-facing message hides internals).
            "log": [] if run.version_id else list(run.log or [])[-3:],
        }
    return result


def _profiler(path: Path | None) -> Any:
    if path is None:
        return None
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.01)
    profiler.start()
    return profiler


def version_parquet(data_dir: Path, version_id: int) -> Path:
    """The data file of a version (read from the platform database)."""
    from kuaishu.db import transaction
    from kuaishu.store import storage
    from kuaishu.store.models import DatasetVersion

    factory = open_platform(data_dir)
    with transaction(factory) as session:
        version = session.get(DatasetVersion, version_id)
        return storage.resolve(version.path) / storage.DATA_FILE


def duckdb_floor(dataset: Dataset, csv: Path, out: Path) -> dict[str, Any]:
    """Peer (a): DuckDB alone, CSV → typed Parquet with the same types and Parquet settings."""
    import duckdb

    from kuaishu.catalog.enums import ItemType
    from kuaishu.collect.convert import DUCK_TYPES

    columns = (
        "{"
        + ", ".join(f"'{name}': '{DUCK_TYPES[ItemType(kind)]}'" for name, kind in dataset.items)
        + "}"
    )
    con = duckdb.connect()
    started = time.perf_counter()
    con.execute(
        f"COPY (SELECT * FROM read_csv('{csv}', header = true, columns = {columns})) "
        f"TO '{out}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
    )
    seconds = time.perf_counter() - started
    rows = con.execute(f"SELECT count(*) FROM '{out}'").fetchone()[0]
    return {"rows": rows, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["load", "duckdb"])
    parser.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--rules", type=Path, help='JSON {"rules": [...], "masking": [...]}')
    args = parser.parse_args()
    dataset = DATASETS[args.dataset]
    if args.what == "load":
        setup = json.loads(args.rules.read_text()) if args.rules else {}
        result = load(
            args.data_dir,
            dataset,
            args.csv,
            profile=args.profile,
            rules=setup.get("rules"),
            masking=setup.get("masking"),
        )
    else:
        result = duckdb_floor(dataset, args.csv, args.out)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
