"""Ingest benchmark: kuaishu's full load against three peers, in one run, on the same files.

    .venv/bin/python bench/ingest.py [--rows 10000000] [--memory-gb 2] [--postgres URL]
    .venv/bin/python bench/ingest.py --rows 1000000 --memory-gb 0   # a quick run

For the covid sample and a generated CSV of ``--rows`` rows, rows/s of:
  kuaishu  queue_load + InlineRunner on a fresh embedded platform (read, map, convert and
           quarantine, key index, Parquet, SM3, promote, publish), in a child process;
  (a)      DuckDB read_csv → Parquet, same column types and Parquet settings (the floor);
  (b)      ``sqlite-utils insert db t file.csv --csv`` (Datasette's loader), a child process;
  (c)      PostgreSQL ``COPY t FROM STDIN`` into text columns (CKAN xloader's method).
Then the peak RSS of kuaishu loading a generated CSV of about ``--memory-gb`` GB.
Targets: kuaishu ≥ 50% of (a), faster than (b) and (c); peak memory ≤ 1 GB.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    COVID,
    COVID_CSV,
    OUT,
    PEOPLE,
    PYTHON,
    VENV_BIN,
    Dataset,
    count_lines,
    generate_people,
    people_rows_for_bytes,
    run_child,
)

COMMON = str(Path(__file__).resolve().parent / "_common.py")


def kuaishu(dataset: Dataset, csv: Path, work: Path, profile: Path | None) -> dict[str, Any]:
    command = [PYTHON, COMMON, "load", "--dataset", dataset.name, "--csv", str(csv)]
    command += ["--data-dir", str(work / "kuaishu")]
    if profile is not None:
        command += ["--profile", str(profile)]
    child = run_child(command)
    result = json.loads(child.stdout)
    if result["status"] != "succeeded":
        raise RuntimeError(f"kuaishu load failed: {result['error']}")
    result["peak_rss_mb"] = child.peak_rss_mb
    result["child_seconds"] = child.seconds
    return result


def duckdb_floor(dataset: Dataset, csv: Path, work: Path) -> dict[str, Any]:
    out = work / "floor.parquet"
    command = [PYTHON, COMMON, "duckdb", "--dataset", dataset.name, "--csv", str(csv)]
    child = run_child([*command, "--out", str(out)])
    result = json.loads(child.stdout)
    result["peak_rss_mb"] = child.peak_rss_mb
    return result


def sqlite_utils(csv: Path, work: Path) -> dict[str, Any]:
    """Datasette's loader, as its users run it; the time includes its interpreter's start."""
    import sqlite3

    db = work / "sqlite-utils.db"
    child = run_child([str(VENV_BIN / "sqlite-utils"), "insert", str(db), "t", str(csv), "--csv"])
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
    return {"rows": rows, "seconds": child.seconds, "peak_rss_mb": child.peak_rss_mb}


def postgres_copy(csv: Path, url: str) -> dict[str, Any]:
    """CKAN xloader's way: a table of text columns, then COPY FROM STDIN streamed in 1 MB blocks."""
    import psycopg
    from psycopg import sql

    with csv.open(encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split(",")
    columns = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in header)
    with psycopg.connect(url) as con:
        con.execute("DROP TABLE IF EXISTS bench_ingest")
        started = time.perf_counter()
        con.execute(sql.SQL("CREATE TABLE bench_ingest ({})").format(columns))
        with (
            con.cursor() as cur,
            cur.copy("COPY bench_ingest FROM STDIN (FORMAT csv, HEADER true)") as copy,
            csv.open("rb") as fh,
        ):
            while block := fh.read(1 << 20):
                copy.write(block)
        con.commit()
        seconds = time.perf_counter() - started
        rows = con.execute("SELECT count(*) FROM bench_ingest").fetchone()[0]  # type: ignore[index]
        con.execute("DROP TABLE bench_ingest")
    return {"rows": rows, "seconds": seconds}


def postgres_url(given: str | None) -> str:
    """A database of the benchmark's own on the test server (created when missing)."""
    import os
    import subprocess

    import psycopg

    url = given or os.environ.get("KUAISHU_TEST_POSTGRES_URL")
    if not url:
        script = Path(__file__).resolve().parents[1] / "scripts" / "postgres.sh"
        url = (
            subprocess.run(  # noqa: S603 - our own script
                [str(script)], check=True, capture_output=True, text=True
            )
            .stdout.strip()
            .splitlines()[-1]
        )
    url = url.replace("postgresql+psycopg://", "postgresql://")
    base, _, _name = url.rpartition("/")
    with psycopg.connect(url, autocommit=True) as con:
        found = con.execute("SELECT 1 FROM pg_database WHERE datname = 'kuaishu_bench'").fetchone()
        if not found:
            con.execute("CREATE DATABASE kuaishu_bench")
    return f"{base}/kuaishu_bench"


def one_file(dataset: Dataset, csv: Path, pg: str, profile: Path | None) -> dict[str, Any]:
    rows = count_lines(csv)  # also brings the file into the page cache for every contender
    print(f"\n== {csv.name}: {rows:,} rows, {csv.stat().st_size / 1e6:,.0f} MB", flush=True)
    results: dict[str, Any] = {"file": str(csv), "rows": rows, "bytes": csv.stat().st_size}
    with tempfile.TemporaryDirectory(dir=OUT) as folder:
        work = Path(folder)
        steps = [
            ("kuaishu", lambda: kuaishu(dataset, csv, work, profile)),
            ("duckdb", lambda: duckdb_floor(dataset, csv, work)),
            ("sqlite_utils", lambda: sqlite_utils(csv, work)),
            ("postgres_copy", lambda: postgres_copy(csv, pg)),
        ]
        for name, step in steps:
            result = step()
            loaded = result.get("rows_loaded", result.get("rows"))
            if loaded != rows:
                raise RuntimeError(f"{name} loaded {loaded} rows of {rows}")
            result["rows_per_s"] = rows / result["seconds"]
            results[name] = result
            print(f"   {name:14} {result['seconds']:8.2f} s {result['rows_per_s']:12,.0f} rows/s",
                  flush=True)  # fmt: skip
    k = results["kuaishu"]["rows_per_s"]
    results["ratios"] = {
        "kuaishu/duckdb": k / results["duckdb"]["rows_per_s"],
        "kuaishu/sqlite_utils": k / results["sqlite_utils"]["rows_per_s"],
        "kuaishu/postgres_copy": k / results["postgres_copy"]["rows_per_s"],
    }
    for name, ratio in results["ratios"].items():
        print(f"   {name:24} {ratio:6.2f}")
    print("   kuaishu phases (s): " + ", ".join(
        f"{label} {seconds:.2f}" for label, seconds in results["kuaishu"]["phases"].items()
    ))  # fmt: skip
    return results


def memory(gigabytes: float, profile: Path | None) -> dict[str, Any]:
    rows = people_rows_for_bytes(int(gigabytes * 1e9))
    csv = generate_people(OUT / f"people-{gigabytes:g}gb.csv", rows)
    count_lines(csv)
    print(f"\n== memory: {csv.name}, {rows:,} rows, {csv.stat().st_size / 1e9:.2f} GB", flush=True)
    with tempfile.TemporaryDirectory(dir=OUT) as folder:
        result = kuaishu(PEOPLE, csv, Path(folder), profile)
    result.update(file=str(csv), rows=rows, bytes=csv.stat().st_size)
    result["rows_per_s"] = rows / result["seconds"]
    print(f"   kuaishu peak RSS {result['peak_rss_mb']:,.0f} MB, {result['seconds']:.1f} s, "
          f"{result['rows_per_s']:,.0f} rows/s", flush=True)  # fmt: skip
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the generated CSV")
    parser.add_argument("--memory-gb", type=float, default=2.0, help="0 skips the memory run")
    parser.add_argument("--covid", type=Path, default=COVID_CSV)
    parser.add_argument("--postgres", help="a PostgreSQL URL (default: ./scripts/postgres.sh)")
    parser.add_argument("--profile", action="store_true", help="pyinstrument text profiles")
    parser.add_argument("--output", type=Path, default=OUT / "ingest.json")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    pg = postgres_url(args.postgres)
    profile = OUT / "profile-ingest-{}.txt" if args.profile else None
    generated = generate_people(OUT / f"people-{args.rows}.csv", args.rows)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {_cores()} cores, {_memory_gib():.0f} GiB",
        "files": [
            one_file(COVID, args.covid, pg, _named(profile, "covid")),
            one_file(PEOPLE, generated, pg, _named(profile, f"people-{args.rows}")),
        ],
    }
    if args.memory_gb > 0:
        results["memory"] = memory(args.memory_gb, _named(profile, "memory"))
    args.output.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    print(f"\nresults: {args.output}")


def _named(pattern: Path | None, name: str) -> Path | None:
    return Path(str(pattern).format(name)) if pattern else None


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _memory_gib() -> float:
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


if __name__ == "__main__":
    main()
