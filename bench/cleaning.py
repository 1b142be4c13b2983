"""Cleaning and masking benchmark: what a realistic rule set costs a load, and masking an export.

    .venv/bin/python bench/cleaning.py [--rows 10000000] [--repeat 3]

On a generated people CSV (valid ID check digits, so the identifier check passes most rows):
  load     the plain load, then the same file with 11 cleaning rules — normalise, placeholders,
           a value map, an enumeration, two ranges, a regular expression, three identifier checks
           (citizen ID, mobile, postal code) and de-duplication by ID — each in a child process;
  export   the served version as CSV through the data API's own download code, unmasked and in
           with 2 masked columns: in the share channel (ID number kept-length mask, mobile keyed
           SM3 hash, computed in Python) and in the sandbox channel (both kept-length masks, pure
           SQL); best of ``--repeat``.
Targets: the cleaned load ≥ 30% of the plain load's rows/s; the masked export ≥ 70% of the
unmasked export's speed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import OUT, PYTHON, USERNAME, count_lines, generate_people, run_child

COMMON_SCRIPT = str(Path(__file__).resolve().parent / "_common.py")

RULES: list[dict[str, Any]] = [
    {"kind": "normalise", "item": "*"},
    {"kind": "null_tokens", "item": "*", "tokens": ["/", "暂无", "-", "无"]},
    {"kind": "map", "item": "性别", "values": {"1": "男", "2": "女", "男性": "男", "女性": "女"}},
    {"kind": "enum", "item": "性别", "values": ["男", "女"]},
    {"kind": "range", "item": "家庭人口", "min": 1, "max": 20},
    {"kind": "range", "item": "月收入", "min": 0, "max": 100000},
    {"kind": "regex", "item": "区划代码", "pattern": "[0-9]{6}"},
    {"kind": "identifier", "item": "公民身份号码", "identifier": "citizen_id"},
    {"kind": "identifier", "item": "联系电话", "identifier": "mobile"},
    {"kind": "identifier", "item": "区划代码", "identifier": "postal_code"},
    {"kind": "dedupe", "by": ["公民身份号码"], "keep": "first"},
]
MASKING: list[dict[str, Any]] = [
    {
        "item": "公民身份号码",
        "channel": "share",
        "method": "mask",
        "params": {"first": 6, "last": 4},
    },
    {"item": "联系电话", "channel": "share", "method": "hash", "params": {}},
]


def valid_people(rows: int) -> Path:
    """The generated people with their ID check digits made right (GB 11643)."""
    import duckdb

    from kuaishu.clean.identifiers import RIC_CHECK, RIC_WEIGHTS

    out = OUT / f"people-valid-{rows}.csv"
    marker = out.with_suffix(".rows")
    if out.exists() and marker.exists() and marker.read_text().strip() == str(rows):
        return out
    source = generate_people(OUT / f"people-{rows}.csv", rows)
    # Digits 7–14 become the person's birth date, and the 18th its check character.
    body = "left(公民身份号码, 6) || strftime(CAST(出生日期 AS DATE), '%Y%m%d') || substr(公民身份号码, 15, 3)"
    digits = " + ".join(
        f"CAST(substr(b, {i + 1}, 1) AS INTEGER) * {w}" for i, w in enumerate(RIC_WEIGHTS)
    )
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * EXCLUDE (b) REPLACE (b || substr('{RIC_CHECK}', (({digits}) % 11) + 1, 1) "
        f"AS 公民身份号码) FROM (SELECT *, {body} AS b FROM read_csv('{source}', all_varchar = true))) "
        f"TO '{out}' (HEADER)"
    )
    con.close()
    marker.write_text(str(rows))
    return out


def load(csv: Path, work: Path, setup: dict[str, Any] | None) -> dict[str, Any]:
    command = [PYTHON, COMMON_SCRIPT, "load", "--dataset", "people", "--csv", str(csv)]
    command += ["--data-dir", str(work)]
    if setup is not None:
        rules = work.parent / f"{work.name}-rules.json"
        rules.write_text(json.dumps(setup, ensure_ascii=False))
        command += ["--rules", str(rules)]
    child = run_child(command)
    result: dict[str, Any] = json.loads(child.stdout)
    if result["status"] != "succeeded":
        raise RuntimeError(f"load failed: {result['error']} {result.get('log')}")
    result["peak_rss_mb"] = child.peak_rss_mb
    return result


def export(work: Path, code: str, channel: str | None, repeat: int) -> dict[str, Any]:
    """The CSV download of the served version, through ``store.reads.download``, fully read."""
    from _common import open_platform

    from kuaishu.accounts.auth import actor_for
    from kuaishu.accounts.services import get_user_by_username
    from kuaishu.clean.services import Channel
    from kuaishu.db import transaction
    from kuaishu.store import reads
    from kuaishu.store.exports import Format
    from kuaishu.store.query import ReadRequest

    factory = open_platform(work)
    times: list[float] = []
    size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        with transaction(factory) as session:
            user = get_user_by_username(session, USERNAME)
            found = reads.download(
                session,
                actor=actor_for(user, auth_method="cli"),  # type: ignore[arg-type]
                code=code,
                request=ReadRequest(),
                fmt=Format.CSV,
                channel=Channel(channel) if channel else None,
            )
        size = sum(len(chunk) for chunk in found.body)
        times.append(time.perf_counter() - started)
    return {"seconds": times, "best_s": min(times), "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=OUT / "cleaning.json")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    csv = valid_people(args.rows)
    rows = count_lines(csv)
    print(f"== {csv.name}: {rows:,} rows", flush=True)
    with tempfile.TemporaryDirectory(dir=OUT) as folder:
        base = Path(folder)
        plain = load(csv, base / "plain", None)
        cleaned = load(csv, base / "cleaned", {"rules": RULES, "masking": MASKING})
        for name, result in (("plain", plain), ("cleaned", cleaned)):
            result["rows_per_s"] = rows / result["seconds"]
            print(f"   load {name:8} {result['seconds']:8.2f} s {result['rows_per_s']:12,.0f} rows/s "
                  f"(kept {result['rows_loaded']:,}, quarantined {result['rows_quarantined']:,}, "
                  f"duplicates {result['rows_duplicate']:,})", flush=True)  # fmt: skip
        unmasked = export(base / "cleaned", cleaned["entry_code"], None, args.repeat)
        masked = export(base / "cleaned", cleaned["entry_code"], "share", args.repeat)
        masked_sql = export(base / "cleaned", cleaned["entry_code"], "sandbox", args.repeat)
        exports = (("unmasked", unmasked), ("masked", masked), ("masked-sql", masked_sql))
        for name, result in exports:
            result["rows_per_s"] = cleaned["rows_loaded"] / result["best_s"]
            print(f"   export {name:8} {result['best_s']:8.2f} s {result['rows_per_s']:12,.0f} rows/s "
                  f"{result['bytes'] / 1e6:8.0f} MB", flush=True)  # fmt: skip
    ratios = {
        "cleaned/plain load": cleaned["rows_per_s"] / plain["rows_per_s"],
        "masked/unmasked export (SM3 hash + mask)": unmasked["best_s"] / masked["best_s"],
        "masked/unmasked export (two masks)": unmasked["best_s"] / masked_sql["best_s"],
    }
    for name, ratio in ratios.items():
        print(f"   {name:42} {ratio:6.2f}")
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "rows": rows,
        "rules": RULES,
        "masking": MASKING,
        "load": {"plain": plain, "cleaned": cleaned},
        "export": dict(exports),
        "ratios": ratios,
    }
    args.output.write_text(json.dumps(results, ensure_ascii=False, indent=2, default=str))
    print(f"\nresults: {args.output}")


if __name__ == "__main__":
    main()
