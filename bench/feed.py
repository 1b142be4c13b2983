"""Change feed benchmark: what working out a step and reading it under a grant cost.

    .venv/bin/python bench/feed.py [--rows 10000000] [--changed 0.01]

On the serving benchmark's platform (``bench/out/platform``, 10 M generated people), a next
version is made by DuckDB from the served one — ``--changed`` of the rows with a new amount, half
that share removed and as many added — and then:

1. the step is worked out (``store.changes.diff``: full outer join on the key, Parquet out),
   timed against DuckDB counting the same changes (``SELECT count(*)`` of the same join, every
   column compared, nothing written) — the floor any diff of the two files pays;
2. the changes are read page by page under a grant (fields, row filter, a masked ID number), as
   a pulling consumer or a push delivery reads them, in a transaction rolled back at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from _common import KEY, OUT
from _servers import PLATFORM, loaded_people
from share import bench_grant, consumer_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--page", type=int, default=5000)
    parser.add_argument("--output", type=Path, default=OUT / "feed.json")
    args = parser.parse_args()
    loaded = loaded_people(args.rows)
    os.environ["KUAISHU_DATA_DIR"] = str(PLATFORM)
    import duckdb
    from _common import open_platform

    from kuaishu.catalog.models import CatalogEntry
    from kuaishu.settings import get_settings
    from kuaishu.share import feed
    from kuaishu.share.enums import AccessMethod
    from kuaishu.store import changes, storage
    from kuaishu.store.models import DatasetChange, DatasetVersion

    factory = open_platform(PLATFORM)
    with factory() as db:
        old = db.get(DatasetVersion, loaded.version_id)
        assert old is not None
        db.expunge(old)
    folder = PLATFORM / "tmp" / "feed-bench"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    every = round(1 / args.changed)
    source = storage.resolve(old.path) / storage.DATA_FILE
    key = f'"{KEY}"'
    # The same memory limit as the diff's own connection, so the two are like for like.
    memory = f"{get_settings().serve_memory_mb}MB"
    con = duckdb.connect(config={"memory_limit": memory, "temp_directory": str(folder)})
    con.execute(
        f"""COPY (
            SELECT * REPLACE (CASE WHEN hash({key}) % {every} = 0 THEN "补助金额" + 1
                                   ELSE "补助金额" END AS "补助金额")
            FROM read_parquet('{source}') WHERE hash({key}) % {every * 2} <> 1
            UNION ALL
            SELECT * REPLACE ('X' || {key}[2:] AS {key})
            FROM read_parquet('{source}') WHERE hash({key}) % {every * 2} = 3
        ) TO '{folder / storage.DATA_FILE}' (FORMAT parquet)"""
    )
    new = DatasetVersion(
        entry_id=old.entry_id,
        number=old.number + 1,
        path=storage.relative(folder),
        key_columns=[KEY],
        schema=old.schema,
    )
    others = [c["name"] for c in old.schema if c["name"] != KEY]
    differs = " OR ".join(f'o."{c}" IS DISTINCT FROM n."{c}"' for c in others)
    started = time.perf_counter()
    floor = con.execute(
        f"""SELECT count(*) FROM read_parquet('{source}') AS o
            FULL OUTER JOIN read_parquet('{folder / storage.DATA_FILE}') AS n USING ({key})
            WHERE o.{key} IS NULL OR n.{key} IS NULL OR {differs}"""
    ).fetchone()
    floor_seconds = time.perf_counter() - started
    target = folder / "changes.parquet"
    started = time.perf_counter()
    added, changed, removed = changes.diff(old, new, target)
    diff_seconds = time.perf_counter() - started
    total = added + changed + removed
    assert floor and floor[0] == total, (floor, total)
    print(f"   diff: {total:,} changes ({added:,} added, {changed:,} changed, {removed:,} removed)")
    print(f"   diff {diff_seconds:.1f} s; DuckDB join alone {floor_seconds:.1f} s")

    with factory() as db, db.begin():
        entry = db.get(CatalogEntry, loaded.entry_id)
        assert entry is not None
        grant = bench_grant(entry, AccessMethod.SUBSCRIBE)
        db.add(grant)
        position = changes.last_position(db, entry.id) + 1
        db.add(
            DatasetChange(
                entry_id=entry.id,
                position=position,
                from_version_id=old.id,
                to_version_id=old.id,
                to_number=old.number,
                path=storage.relative(target),
                added=added,
                changed=changed,
                removed=removed,
            )
        )
        db.flush()
        consumer = consumer_of(entry)
        cursor, read, pages = feed.Cursor(position, 0), 0, 0
        started = time.perf_counter()
        while True:
            page = feed.read(
                db, actor=consumer, grant=grant, cursor=cursor, limit=args.page, purpose="基准"
            )
            read += len(page.changes)
            pages += 1
            cursor = page.next_cursor
            if page.up_to_date:
                break
        read_seconds = time.perf_counter() - started
        db.rollback()
    print(f"   read under a grant: {read:,} changes in {pages} pages, {read_seconds:.1f} s "
          f"({read / read_seconds:,.0f} changes/s)")  # fmt: skip
    results: dict[str, Any] = {
        "rows": args.rows,
        "changes": {"added": added, "changed": changed, "removed": removed},
        "diff_seconds": diff_seconds,
        "duckdb_join_seconds": floor_seconds,
        "read_changes": read,
        "read_pages": pages,
        "read_seconds": read_seconds,
    }
    args.output.write_text(json.dumps(results, indent=2))
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
