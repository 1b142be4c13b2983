"""Issue 10, class 5 — forged or stale paging cursors. A cursor is signed (HMAC-SM3, a key from
the master key) for the reader, the grant or channel, the version and the query it was made for:
forged, altered, borrowed by another reader, carried to another grant or query — each is a 400
``bad_cursor`` that reads nothing. Versions never published, held back by the k-anonymity check
or rolled back are read by the owner only, explicitly (``?version=``)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine

from kuaishu.accounts.models import User
from kuaishu.catalog.models import CatalogEntry
from kuaishu.clean.services import set_policy
from kuaishu.db import transaction
from kuaishu.errors import AppError
from kuaishu.share.enums import AccessMethod
from kuaishu.share.grants import served_by_grant
from kuaishu.store.services import publish_version
from tests import factories as f
from tests.functional.store.conftest import load_engine, load_file, module_data_dir, write_csv
from tests.http import ok, refused
from tests.security.masked_grants import Ground, build_ground, share_rule

__all__ = ["load_engine", "module_data_dir"]

ITEMS = [("编号", "C"), ("地区", "C"), ("姓名", "C"), ("年龄", "I")]
RULES = [share_rule("姓名", "mask", first=1)]


def person(i: int, version: int = 1) -> dict[str, Any]:
    return {
        "编号": f"P{i:04d}",
        "地区": ["南明区", "云岩区", "花溪区"][i % 3],
        "姓名": f"姓名{version}-{i}",
        "年龄": 20 + i,
    }


@pytest.fixture(scope="module")
def ground(load_engine: Engine, module_data_dir: Path) -> Iterator[Ground]:
    rows = [person(i) for i in range(1, 13)]
    yield from build_ground(
        load_engine,
        module_data_dir,
        ITEMS,
        ("姓名",),
        {"A": RULES, "B": RULES},
        {"A": rows, "B": rows},
    )


def first_cursor(ground: Ground, world: str = "A", who: str = "consumer", **params: Any) -> str:
    body = ok(ground.grant_get(world, "query", who=who, limit=4, **params))
    cursor: str = body["next_cursor"]
    assert cursor
    return cursor


def payload(cursor: str) -> list[Any]:
    body = cursor.split(".")[0]
    found: list[Any] = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return found


def token(content: list[Any], signature: str = "") -> str:
    body = base64.urlsafe_b64encode(orjson.dumps(content)).decode().rstrip("=")
    return f"{body}.{signature}" if signature else body


def test_a_cursor_walks_every_row_once(ground: Ground) -> None:
    seen, cursor = [], None
    while True:
        extra: dict[str, str] = {"cursor": cursor} if cursor else {}
        body = ok(ground.grant_get("A", "query", limit=5, sort="年龄", **extra))
        seen += [row[0] for row in body["rows"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"P{i:04d}" for i in range(1, 13)]


def test_a_forged_or_altered_cursor_is_refused(ground: Ground) -> None:
    made = first_cursor(ground, sort="年龄")
    version, sort, values, rowid = payload(made)
    signature = made.split(".")[1]
    for forged in (
        token([version, sort, values, rowid]),  # the old unsigned shape
        token([version, sort, values, 0], signature),  # back to the first row
        token([version, sort, [0], rowid], signature),  # another sort value
        token([version + 1, sort, values, rowid], signature),  # another version
        token([version, sort, ["不是数字"], rowid], signature),  # a value of the wrong type
        made[:-2] + ("AA" if not made.endswith("AA") else "BB"),  # a changed signature
        "不是游标",
        "1",
    ):
        refused(
            ground.grant_get("A", "query", limit=4, sort="年龄", cursor=forged), 400, "bad_cursor"
        )


def test_a_cursor_is_good_for_its_reader_grant_and_query_only(ground: Ground) -> None:
    made = first_cursor(ground, sort="年龄")
    ok(ground.grant_get("A", "query", limit=4, sort="年龄", cursor=made))
    # Another user of the same department, on the same grant.
    refused(
        ground.grant_get("A", "query", who="colleague", limit=4, sort="年龄", cursor=made),
        400,
        "bad_cursor",
    )
    # The same reader under another grant (same rows, same masking).
    refused(ground.grant_get("B", "query", limit=4, sort="年龄", cursor=made), 400, "bad_cursor")
    # The same grant, another query.
    for other in (
        {"sort": "-年龄"},
        {"sort": "年龄", "地区": "南明区"},
        {"sort": "年龄", "fields": "编号"},
    ):
        refused(ground.grant_get("A", "query", limit=4, cursor=made, **other), 400, "bad_cursor")
    # The owner's cursor over the share channel's preview does not page the raw view.
    preview = ok(ground.owner_get("A", "query", limit=4, channel="share"))["next_cursor"]
    refused(ground.owner_get("A", "query", limit=4, cursor=preview), 400, "bad_cursor")
    ok(ground.owner_get("A", "query", limit=4, channel="share", cursor=preview))


def test_huge_offsets_and_limits_are_clear_errors(ground: Ground) -> None:
    refused(ground.grant_get("A", "query", offset=10**20), 422, "offset_too_large")
    refused(ground.grant_get("A", "download.csv", offset=10**20), 422, "offset_too_large")
    refused(ground.grant_get("A", "download.csv", limit=10**20), 422, "limit_too_large")
    refused(ground.grant_get("A", "query", limit=10**20), 422, "limit_too_large")


def test_rolled_back_and_held_back_versions_are_the_owners_alone(
    ground: Ground, module_data_dir: Path
) -> None:
    a = ground.worlds["A"]
    old = first_cursor(ground)  # made on version 1
    load_file(
        ground.factory,
        a.entry_id,
        write_csv(module_data_dir / "v2.csv", [person(i, 2) for i in range(1, 13)]),
    )
    # A publish does not shift the pages of a cursor made before it.
    assert ok(ground.grant_get("A", "query", limit=4, cursor=old))["version"] == 1
    on_two = first_cursor(ground)
    owners = ok(ground.owner_get("A", "query", limit=4))["next_cursor"]
    with transaction(ground.factory) as db:
        entry = db.get(CatalogEntry, a.entry_id)
        assert entry is not None
        publish_version(db, actor=f.ROOT, entry=entry, number=1, reason="第 2 版有误，回退")
    # Version 2 was rolled back: the consumer's cursor on it reads nothing more ...
    refused(ground.grant_get("A", "query", limit=4, cursor=on_two), 409, "version_not_readable")
    # ... the owner's still pages it, and the owner reads it explicitly.
    assert ok(ground.owner_get("A", "query", limit=4, cursor=owners))["version"] == 2
    assert ok(ground.owner_get("A", "query", version=2))["version"] == 2

    # A version held back by the k-anonymity check.
    with transaction(ground.factory) as db:
        entry = db.get(CatalogEntry, a.entry_id)
        assert entry is not None
        set_policy(db, actor=f.ROOT, entry=entry, rules=RULES, quasi_identifiers=["编号"], k=2)
    load_file(
        ground.factory,
        a.entry_id,
        write_csv(module_data_dir / "v3.csv", [person(i, 3) for i in range(1, 13)]),
    )
    body = ok(ground.owner_get("A", "query", version=3, limit=4, shape="objects"))
    assert body["version"] == 3 and body["rows"][0]["姓名"] == "姓名3-1"
    assert (
        ok(ground.owner_get("A", "query", limit=4, cursor=body["next_cursor"], version=3))[
            "version"
        ]
        == 3
    )
    # The consumer cannot name it: ?version= is the owner's, and a cursor for it cannot be made.
    assert ok(ground.grant_get("A", "query", version=3))["version"] == 1
    made = payload(first_cursor(ground))
    refused(
        ground.grant_get("A", "query", limit=4, cursor=token([3, *made[1:]])), 400, "bad_cursor"
    )
    # Nor does the grant's resolver hand it out when asked for it by number.
    with transaction(ground.factory) as db:
        user = db.get(User, ground.users["consumer"])
        assert user is not None
        actor = f.actor(user)
        for number in (2, 3):
            with pytest.raises(AppError) as refusal:
                served_by_grant(
                    db, actor=actor, grant=a.grant, method=AccessMethod.QUERY, number=number
                )
            assert refusal.value.code == "version_not_readable"
