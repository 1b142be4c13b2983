"""Grant enforcement benchmark: what a share grant's checks cost a key lookup.

    .venv/bin/python bench/share.py [--rows 10000000] [--calls 500]

On the serving benchmark's platform (``bench/out/platform``, 10 M generated people), the same
random keys are looked up through the service layer by the owning department (``data.read_own``)
and by a consuming department under a grant that limits fields, binds a row filter, masks the ID
number by a per-grant override and has a rate limit — with the grant's state, expiry, method and
rate checked and the read audited, as on every request. Each call is one transaction, committed.
HTTP is left out on purpose: it is the same for both, and would hide the difference. Target: the
grant costs ≤ 20 % of the owner's lookups per second.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

from _common import KEY, OUT
from _servers import PLATFORM, loaded_people


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=Path, default=OUT / "share.json")
    args = parser.parse_args()
    loaded = loaded_people(args.rows)
    os.environ["KUAISHU_DATA_DIR"] = str(PLATFORM)
    from _common import open_platform

    from kuaishu.accounts.actor import Actor
    from kuaishu.accounts.roles import Role
    from kuaishu.catalog.models import CatalogEntry
    from kuaishu.db import transaction
    from kuaishu.share.enums import AccessMethod
    from kuaishu.share.grants import served_by_grant
    from kuaishu.store import reads

    factory = open_platform(PLATFORM)
    keys = [k.strip() for k in (OUT / f"keys-people-{args.rows}.txt").read_text().split()]
    rng = random.Random(7)
    chosen = [rng.choice(keys) for _ in range(args.calls)]
    with transaction(factory) as db:
        entry = db.get(CatalogEntry, loaded.entry_id)
        assert entry is not None
        owner = Actor(
            user_id=1,
            username="owner",
            roles=frozenset({(entry.department_id, Role.CATALOGUER)}),
            auth_method="cli",
        )
        grant = bench_grant(entry, AccessMethod.LOOKUP)
        db.add(grant)
        db.flush()
        grant_id = grant.id
    consumer = consumer_of(entry)

    def owner_lookup(key: str) -> int:
        with transaction(factory) as db:
            return len(
                reads.lookup(db, actor=owner, code=loaded.entry_code, keys={"key": key}).rows
            )

    def grant_lookup(key: str) -> int:
        with transaction(factory) as db:
            # As the API route does: the grant is read with its entry, version and policy.
            def locate(number: int | None) -> reads.Served:
                return served_by_grant(
                    db, actor=consumer, grant=grant_id, method=AccessMethod.LOOKUP, number=number
                )

            return len(
                reads.lookup(db, actor=consumer, code="", keys={"key": key}, locate=locate).rows
            )

    results: dict[str, Any] = {"rows": args.rows, "calls": args.calls, "owner": [], "grant": []}
    for key in chosen[:20]:
        owner_lookup(key)
        grant_lookup(key)
    for _round in range(args.rounds):  # alternated, so drift on the machine hits both alike
        for name, call in (("owner", owner_lookup), ("grant", grant_lookup)):
            started = time.perf_counter()
            hits = sum(call(key) for key in chosen)
            rate = args.calls / (time.perf_counter() - started)
            assert hits == args.calls, f"{name}: {hits} of {args.calls} keys found"
            results[name].append(rate)
            print(f"   {name:6} {rate:8.0f} lookups/s", flush=True)
    owner_rate = statistics.median(results["owner"])
    grant_rate = statistics.median(results["grant"])
    results["cost"] = 1 - grant_rate / owner_rate
    print(f"   median: owner {owner_rate:.0f}/s, grant {grant_rate:.0f}/s; "
          f"grant enforcement costs {results['cost']:.1%}")  # fmt: skip
    (args.output).write_text(json.dumps(results, indent=2))


def bench_grant(entry: Any, method: Any) -> Any:
    """The grant both sharing benchmarks read under: a field list, a row filter, a per-grant
    masking override of the ID number and a rate limit, to the department ``consumer_of``."""
    from kuaishu.share.enums import GrantState
    from kuaishu.share.models import ShareGrant

    return ShareGrant(
        entry_id=entry.id,
        provider_department_id=entry.department_id,
        consumer_department_id=entry.department_id + 1000,
        purpose="基准测试",
        fields=[KEY, "姓名", "所属地区", "补助金额"],
        row_filter=[["家庭人口__gte", "1"]],
        masking=[{"item": KEY, "method": "mask", "params": {"first": 6, "last": 4}}],
        methods=[method],
        rate_limit=1_000_000,
        state=GrantState.ACTIVE,
    )


def consumer_of(entry: Any) -> Any:
    from kuaishu.accounts.actor import Actor
    from kuaishu.accounts.roles import Role

    return Actor(
        user_id=2,
        username="consumer",
        roles=frozenset({(entry.department_id + 1000, Role.CONSUMER)}),
        auth_method="cli",
    )


if __name__ == "__main__":
    main()
