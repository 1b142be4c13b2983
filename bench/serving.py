"""Serving benchmark: kuaishu's data API against Datasette on the same 10 million rows.

    .venv/bin/python bench/serving.py [--rows 10000000] [--duration 30] [--connections 8]
    .venv/bin/python bench/serving.py --rows 1000000 --duration 10   # a quick run

One load generator (wrk, on loopback, a Lua script picking a random key or region per request)
drives each server in turn with the same workloads: a lookup by key (random existing keys) and a
filtered 100-row page (所属地区 = a random one of nine). Requests/s and p99 latency for each, and
kuaishu's ratio to Datasette. Target: ≥ 1.5× Datasette's requests/s with a lower p99.
kuaishu runs with ``--workers 1`` (one process) against Datasette's one process; ``--workers``
adds runs with more kuaishu processes, labelled as such.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _common import KEY, OUT, REGION, REGIONS
from _servers import api_key, datasette_db, datasette_server, kuaishu_server, loaded_people

LUA = """
local keys = {}
local prefix = %(prefix)s
local suffix = %(suffix)s
init = function(args)
  for line in io.lines(%(keys)s) do keys[#keys + 1] = line end
  math.randomseed(%(seed)d + tonumber(string.match(tostring({}), "0x(%%x+)"), 16) %% 100000)
end
%(headers)s
request = function()
  return wrk.format("GET", prefix .. keys[math.random(#keys)] .. suffix)
end
"""


@dataclass
class Workload:
    """One kind of request: a path made of a fixed prefix, a random value and a suffix."""

    name: str
    values: Path  # one URL-encoded value per line
    prefix: str
    suffix: str = ""


def kuaishu_workloads(code: str, keys: Path, regions: Path) -> list[Workload]:
    """kuaishu's data API (src/kuaishu/store/routes.py): lookup by key, a filtered page."""
    base = f"/api/v1/data/{urllib.parse.quote(code, safe='')}"
    return [
        Workload("key lookup", keys, f"{base}/lookup?key="),
        Workload("filtered page", regions, f"{base}/query?{_q(REGION)}=", "&limit=100"),
    ]


def datasette_workloads(db: Path, keys: Path, regions: Path) -> list[Workload]:
    """Datasette's table JSON, told to skip what kuaishu does not do here (count, facets)."""
    base = f"/{db.stem}/people.json?_shape=array&_nocount=1&_nofacet=1&_nosuggest=1"
    return [
        Workload("key lookup", keys, f"{base}&{_q(KEY)}="),
        Workload("filtered page", regions, f"{base}&_size=100&{_q(REGION)}="),
    ]


def _q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def value_files(csv: Path, sample: int) -> tuple[Path, Path]:
    """``sample`` random existing keys, and the regions, one URL-encoded value a line."""
    import duckdb

    keys = OUT / f"keys-{csv.stem}.txt"
    if not keys.exists():
        rows = duckdb.sql(
            f"SELECT {KEY} FROM read_csv('{csv}', all_varchar = true) "
            f"USING SAMPLE reservoir({sample} ROWS) REPEATABLE (7)"
        ).fetchall()
        keys.write_text("".join(_q(row[0]) + "\n" for row in rows))
    regions = OUT / "regions.txt"
    regions.write_text("".join(_q(r) + "\n" for r in REGIONS))
    return keys, regions


def wrk(
    base: str, workload: Workload, args: argparse.Namespace, headers: dict[str, str]
) -> dict[str, Any]:
    """Run wrk once (after a warm-up); requests/s, p99, errors."""
    script = OUT / "wrk.lua"
    header_lua = "\n".join(
        f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()
    )
    script.write_text(
        LUA
        % {
            "prefix": json.dumps(workload.prefix),
            "suffix": json.dumps(workload.suffix),
            "keys": json.dumps(str(workload.values)),
            "seed": random.randrange(1 << 20),
            "headers": header_lua,
        }
    )
    common = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-s", str(script)]
    subprocess.run([*common, "-d", f"{args.warmup}s", base], check=True, capture_output=True)  # noqa: S603
    out = subprocess.run(  # noqa: S603
        [*common, "-d", f"{args.duration}s", "--latency", "--timeout", "10s", base],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> dict[str, Any]:
    def seconds(text: str) -> float:
        value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]

    p = {
        m.group(1): seconds(m.group(2))
        for m in re.finditer(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)
    }
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": requests,
        "p50_ms": p["50"] * 1000,
        "p99_ms": p["99"] * 1000,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
        "raw": out,
    }


def check(base: str, workload: Workload, headers: dict[str, str], expect_rows: int) -> None:
    """One request of each workload returns what it should, before any timing."""
    value = workload.values.read_text().split("\n", 1)[0]
    response = httpx.get(
        base + workload.prefix + value + workload.suffix, headers=headers, timeout=60
    )
    if response.status_code != 200:
        raise RuntimeError(f"{workload.name}: {response.status_code} {response.text[:500]}")
    body = json.dumps(response.json(), ensure_ascii=False)
    if urllib.parse.unquote(value) not in body:
        raise RuntimeError(f"{workload.name}: value not in the response: {body[:500]}")
    rows = count_rows(response.json())
    if rows != expect_rows:
        raise RuntimeError(f"{workload.name}: {rows} rows, expected {expect_rows}: {body[:500]}")


def count_rows(body: Any) -> int:
    if isinstance(body, list):
        return len(body)
    for name in ("rows", "data", "items", "results"):
        if isinstance(body.get(name), list):
            return len(body[name])
    return 1 if isinstance(body.get("row") or body.get("record"), dict) else -1


def run_system(
    label: str,
    server: Any,
    workloads: list[Workload],
    args: argparse.Namespace,
    headers: dict[str, str],
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with server as base:
        for workload in workloads:
            check(base, workload, headers, 1 if workload.name == "key lookup" else 100)
            result = wrk(base, workload, args, headers)
            results[workload.name] = result
            print(f"   {label:28} {workload.name:14} {result['requests_per_s']:9,.0f} req/s  "
                  f"p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms  "
                  f"non-2xx {result['non_2xx']}", flush=True)  # fmt: skip
            if result["non_2xx"] or result["socket_errors"]:
                print(result["raw"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--duration", type=int, default=30, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of warm-up before each")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, nargs="*", default=[1], help="kuaishu processes")
    parser.add_argument("--keys", type=int, default=100_000, help="random keys to draw from")
    parser.add_argument("--output", type=Path, default=OUT / "serving.json")
    args = parser.parse_args()
    loaded = loaded_people(args.rows)
    db = datasette_db(args.rows)
    keys, regions = value_files(loaded.csv, args.keys)
    auth = {"Authorization": f"Bearer {api_key()}"}
    print(f"\n== serving {args.rows:,} rows; wrk -t{args.threads} -c{args.connections} "
          f"-d{args.duration}s (after {args.warmup}s warm-up)", flush=True)  # fmt: skip
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "rows": args.rows}
    results["datasette (1 process)"] = run_system(
        "datasette (1 process)",
        datasette_server(db),
        datasette_workloads(db, keys, regions),
        args,
        {},
    )
    for workers in args.workers:
        label = f"kuaishu (--workers {workers})"
        results[label] = run_system(
            label,
            kuaishu_server(workers),
            kuaishu_workloads(loaded.entry_code, keys, regions),
            args,
            auth,
        )
    print()
    for label, by_workload in results.items():
        if not label.startswith("kuaishu"):
            continue
        for name, result in by_workload.items():
            peer = results["datasette (1 process)"][name]
            ratio = result["requests_per_s"] / peer["requests_per_s"]
            print(f"   {label:28} {name:14} {ratio:5.2f}× Datasette's req/s; "
                  f"p99 {result['p99_ms']:.2f} ms vs {peer['p99_ms']:.2f} ms", flush=True)  # fmt: skip
    for by_workload in results.values():
        if isinstance(by_workload, dict):
            for result in by_workload.values():
                result.pop("raw", None)
    args.output.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    print(f"\nresults: {args.output}")


if __name__ == "__main__":
    main()
