"""CSV export benchmark: kuaishu's streamed download of 1 million rows against DuckDB COPY … TO.

    .venv/bin/python bench/export.py [--rows 1000000] [--repeat 5]

kuaishu: ``GET /api/v1/data/<code>/download.csv`` on ``kuaishu serve --workers 1``, timed end to
end by curl reading the whole body. DuckDB: ``COPY (SELECT * FROM '<the version's data.parquet>')
TO 'x.csv' (HEADER)`` in a fresh connection — the same rows, from the same stored version.
Best and median of ``--repeat`` runs each. Target: kuaishu ≥ 50% of DuckDB's speed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

from _common import OUT, count_lines
from _servers import api_key, kuaishu_server, loaded_people


def duckdb_copy(parquet: Path, repeat: int) -> dict[str, Any]:
    import duckdb

    times: list[float] = []
    with tempfile.TemporaryDirectory(dir=OUT) as folder:
        out = Path(folder) / "export.csv"
        for _ in range(repeat):
            con = duckdb.connect()
            started = time.perf_counter()
            con.execute(f"COPY (SELECT * FROM read_parquet('{parquet}')) TO '{out}' (HEADER)")
            times.append(time.perf_counter() - started)
            con.close()
        return _summary(times, out.stat().st_size, count_lines(out))


def kuaishu_download(url: str, key: str, repeat: int) -> dict[str, Any]:
    curl = ["curl", "-sS", "--fail", "-H", f"Authorization: Bearer {key}"]
    with tempfile.TemporaryDirectory(dir=OUT) as folder:
        first = Path(folder) / "download.csv"
        subprocess.run([*curl, "-o", str(first), url], check=True)  # noqa: S603
        size, rows = first.stat().st_size, count_lines(first)
        head = first.open(encoding="utf-8-sig").readline().strip()
    times: list[float] = []
    for _ in range(repeat):
        out = subprocess.run(  # noqa: S603
            [*curl, "-o", "/dev/null", "-w", "%{time_total} %{size_download}", url],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        times.append(float(out[0]))
        if int(out[1]) != size:
            raise RuntimeError(f"download sizes differ: {out[1]} and {size}")
    return {**_summary(times, size, rows), "header": head}


def _summary(times: list[float], size: int, rows: int) -> dict[str, Any]:
    best = min(times)
    return {
        "seconds": times,
        "best_s": best,
        "median_s": statistics.median(times),
        "bytes": size,
        "rows": rows,
        "rows_per_s": rows / best,
        "mb_per_s": size / best / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", type=Path, default=OUT / "export.json")
    args = parser.parse_args()
    loaded = loaded_people(args.rows)
    key = api_key()
    print(f"\n== CSV export of {args.rows:,} rows, best of {args.repeat}", flush=True)
    duck = duckdb_copy(loaded.parquet, args.repeat)
    print(f"   duckdb COPY TO csv   {duck['best_s']:6.2f} s  {duck['rows_per_s']:11,.0f} rows/s  "
          f"{duck['mb_per_s']:6.1f} MB/s  ({duck['bytes'] / 1e6:.0f} MB)", flush=True)  # fmt: skip
    code = urllib.parse.quote(loaded.entry_code, safe="")
    with kuaishu_server(1) as base:
        mine = kuaishu_download(f"{base}/api/v1/data/{code}/download.csv", key, args.repeat)
    if mine["rows"] != args.rows or duck["rows"] != args.rows:
        raise RuntimeError(f"rows: kuaishu {mine['rows']}, duckdb {duck['rows']}")
    print(f"   kuaishu download.csv {mine['best_s']:6.2f} s  {mine['rows_per_s']:11,.0f} rows/s  "
          f"{mine['mb_per_s']:6.1f} MB/s  ({mine['bytes'] / 1e6:.0f} MB)", flush=True)  # fmt: skip
    ratio = duck["best_s"] / mine["best_s"]
    print(
        f"   kuaishu / duckdb speed: {ratio:.2f} (median {duck['median_s'] / mine['median_s']:.2f})"
    )
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "rows": args.rows, "duckdb": duck}
    result.update(kuaishu=mine, ratio_best=ratio, ratio_median=duck["median_s"] / mine["median_s"])
    args.output.write_text(json.dumps(result, ensure_ascii=False, indent=2))
    print(f"\nresults: {args.output}")


if __name__ == "__main__":
    main()
