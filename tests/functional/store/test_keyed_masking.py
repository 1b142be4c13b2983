"""Keyed masking across datasets: an SM3 hash of an ID number is the same in every dataset, so two
departments' shared data still join; SM4-encrypted values come back only to the key holder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from faker import Faker
from sqlalchemy import Engine, select

from kuaishu.accounts.roles import Role
from kuaishu.catalog.models import CatalogEntry
from kuaishu.clean.services import set_policy
from kuaishu.db import transaction
from kuaishu.security.models import AuditEvent
from tests import factories as f
from tests.functional.store.conftest import Served, load_file, make_served, write_csv

PEOPLE = [("身份证号", "C"), ("姓名", "C"), ("地区", "C")]
BENEFITS = [("身份证号", "C"), ("待遇", "N")]


def _people(n: int) -> list[dict[str, Any]]:
    fake = Faker("zh_CN")
    Faker.seed(42)
    ids = list(dict.fromkeys(fake.ssn() for _ in range(n * 2)))[:n]
    return [{"身份证号": i, "姓名": fake.name(), "地区": fake.province()} for i in ids]


@pytest.fixture(scope="module")
def two_datasets(load_engine: Engine, module_data_dir: Path) -> Iterator[tuple[Served, str, int]]:
    """A population dataset, and a benefits dataset of another entry sharing some ID numbers."""
    rows = _people(120)
    for served in make_served(
        load_engine, module_data_dir, rows, "人口信息", PEOPLE, sensitive=("身份证号", "姓名")
    ):
        with transaction(served.factory) as db:
            people = db.get(CatalogEntry, served.entry_id)
            assert people is not None
            benefits = f.published_entry(
                db, dept=people.department, name="社保待遇", items=BENEFITS, keys=("身份证号",)
            )
            for entry in (people, benefits):
                set_policy(
                    db,
                    actor=f.ROOT,
                    entry=entry,
                    rules=[
                        {"item": "身份证号", "channel": "share", "method": "hash"},
                        {"item": "身份证号", "channel": "sandbox", "method": "encrypt"},
                        *(
                            [{"item": "姓名", "channel": "sandbox", "method": "pseudonym"}]
                            if entry is people
                            else []
                        ),
                    ],
                )
            benefits_id, benefits_code = benefits.id, benefits.code
        paid = [{"身份证号": r["身份证号"], "待遇": 1000 + i} for i, r in enumerate(rows[::3])]
        load_file(served.factory, benefits_id, write_csv(module_data_dir / "benefits.csv", paid))
        yield served, benefits_code, benefits_id


def _rows(served: Served, code: str, channel: str) -> list[dict[str, Any]]:
    answer = served.client.get(
        f"/api/v1/data/{quote(code, safe='')}/query",
        params={"channel": channel, "shape": "objects", "limit": 1000},
        headers=served.member,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["rows"]  # type: ignore[no-any-return]


def test_consistent_hashes_join_across_two_datasets(two_datasets: tuple[Served, str, int]) -> None:
    served, benefits_code, _ = two_datasets
    people = _rows(served, served.code, "share")
    paid = _rows(served, benefits_code, "share")
    by_hash = {p["身份证号"]: p["地区"] for p in people}
    joined = [by_hash[b["身份证号"]] for b in paid if b["身份证号"] in by_hash]
    # Every benefit row finds its person through the hash alone, as through the real IDs.
    assert len(joined) == len(paid) == 40
    expected = {r["身份证号"]: r["地区"] for r in served.rows}
    truth = [expected[r["身份证号"]] for r in served.rows[::3]]
    assert joined == truth
    assert all(len(p["身份证号"]) == 64 for p in people)


def test_encrypted_values_decrypt_only_with_the_key_permission(
    two_datasets: tuple[Served, str, int],
) -> None:
    served, _, _ = two_datasets
    tokens = [r["身份证号"] for r in _rows(served, served.code, "sandbox")[:5]]
    assert not set(tokens) & {r["身份证号"] for r in served.rows}
    with transaction(served.factory) as db:
        dept = db.get(CatalogEntry, served.entry_id).department  # type: ignore[union-attr]
        officer = {"X-API-Key": f.api_key(db, f.user(db, roles=[Role.DATA_OFFICER], dept=dept))}
    url = f"/api/v1/clean/entries/{served.entry_id}/decrypt"
    body = {"tokens": [*tokens, "不是密文"], "purpose": "核实待遇发放对象"}
    for refused in (served.member, served.operator, served.outsider):
        answer = served.client.post(url, json=body, headers=refused)
        assert answer.status_code == 403, answer.text
    answer = served.client.post(url, json=body, headers=officer)
    assert answer.status_code == 200, answer.text
    assert answer.json()["values"] == [r["身份证号"] for r in served.rows[:5]] + [None]
    with transaction(served.factory) as db:
        events = list(db.scalars(select(AuditEvent).where(AuditEvent.action == "clean.decrypt")))
        assert [(e.outcome, e.purpose) for e in events][-1] == ("success", "核实待遇发放对象")
        assert events[-1].details == {"code": served.code, "tokens": 6, "decrypted": 5}
        assert any(e.outcome == "denied" for e in events)


def test_pseudonyms_are_re_identified_from_the_sealed_map_by_the_key_holder(
    two_datasets: tuple[Served, str, int], module_data_dir: Path
) -> None:
    served, _, _ = two_datasets
    rows = _rows(served, served.code, "sandbox")[:4]
    tokens = [r["姓名"] for r in rows]
    assert all(t.startswith("P") for t in tokens)
    with transaction(served.factory) as db:
        dept = db.get(CatalogEntry, served.entry_id).department  # type: ignore[union-attr]
        officer = {"X-API-Key": f.api_key(db, f.user(db, roles=[Role.DATA_OFFICER], dept=dept))}
    answer = served.client.post(
        f"/api/v1/clean/entries/{served.entry_id}/decrypt",
        json={"tokens": tokens, "purpose": "沙箱结果复核"},
        headers=officer,
    )
    assert answer.json()["values"] == [r["姓名"] for r in served.rows[:4]]
    # The map is kept apart from the data, and holds no name in the clear.
    kept = module_data_dir / "keys" / "pseudonyms.duckdb"
    assert kept.exists() and served.rows[0]["姓名"].encode() not in kept.read_bytes()
