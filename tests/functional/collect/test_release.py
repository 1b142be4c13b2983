"""The release check of opened data: below k on the declared quasi-identifiers a load's version is
kept but not served, the risky combinations are shown, only the operator may override (with a
reason, audited), and generalising the quasi-identifiers in the open channel lifts it over k."""

from __future__ import annotations

import random

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.accounts.roles import Role
from kuaishu.db import transaction
from tests import factories as f
from tests.functional.collect.conftest import API, Staff, audit_events, load, ok, refused

ITEMS = [("编号", "C"), ("年龄", "I"), ("性别", "C"), ("邮编", "C"), ("诊断", "C")]


def _patients(n: int) -> bytes:
    rng = random.Random(7)
    lines = ["编号,年龄,性别,邮编,诊断"]
    for i in range(n):
        age, sex = rng.randint(20, 69), rng.choice("男女")
        lines.append(f"P{i:04d},{age},{sex},55{rng.randint(0, 9)}00{rng.randint(1, 9)},感冒")
    return ("\n".join(lines) + "\n").encode()


def test_below_k_is_held_back_until_generalised_or_overridden(
    http: TestClient, staff: Staff, factory: sessionmaker[Session]
) -> None:
    with transaction(factory) as db:
        entry = f.published_entry(
            db, dept=db.merge(staff.department), name="门诊就诊记录", items=ITEMS, keys=("编号",)
        )
        operator = {"X-API-Key": f.api_key(db, f.user(db, roles=[Role.PLATFORM_OPERATOR]))}
        db.flush()
        db.expunge_all()
    h = staff.keys["cataloguer"]
    masking = f"/api/v1/clean/entries/{entry.id}/masking"
    ok(
        http.put(
            masking,
            json={"rules": [], "quasi_identifiers": ["年龄", "性别", "邮编"], "k": 5},
            headers=h,
        )
    )
    run = load(http, entry.id, _patients(200), h)
    assert run["status"] == "succeeded" and run["version_id"], run
    assert any("k 匿名检查未通过" in line["message"] for line in run["log"])
    [v1] = ok(http.get(f"{API}/entries/{entry.id}/versions", headers=h))
    assert v1["state"] == "ready" and v1["current"] is False
    release = v1["quality"]["release"]
    assert release["passed"] is False and release["k"] == 5
    smallest = release["combinations"][0]
    assert set(smallest) == {"年龄", "性别", "邮编", "count"} and smallest["count"] < 5
    assert ok(http.get(f"{API}/entries/{entry.id}", headers=h))["current_version"] is None
    assert audit_events(factory, "store.release_blocked")

    publish = f"{API}/entries/{entry.id}/versions/1/publish"
    error = refused(
        http.post(publish, json={"reason": "急需"}, headers=h), 409, "release_check_failed"
    )
    assert error["details"]["combinations"][0] == smallest
    refused(
        http.post(publish, json={"reason": "急需", "override_release": True}, headers=h),
        403,
        "permission_denied",
    )
    forced = ok(
        http.post(
            publish,
            json={"reason": "经评估为汇总口径，风险可接受", "override_release": True},
            headers=operator,
        )
    )
    assert forced["current"] is True
    override = audit_events(factory, "store.publish_override")[-1]
    assert override.details is not None
    assert override.details["reason"] == "经评估为汇总口径，风险可接受"

    # Generalised in the open channel (age to 20-year bands, postcode to 2 digits): over k.
    ok(
        http.put(
            masking,
            json={
                "rules": [
                    {
                        "item": "年龄",
                        "channel": "open",
                        "method": "generalise",
                        "params": {"to": "range", "width": 20},
                    },
                    {
                        "item": "邮编",
                        "channel": "open",
                        "method": "truncate",
                        "params": {"keep": 2},
                    },
                ],
                "quasi_identifiers": ["年龄", "性别", "邮编"],
                "k": 5,
            },
            headers=h,
        )
    )
    again = load(http, entry.id, _patients(200), h)
    versions = ok(http.get(f"{API}/entries/{entry.id}/versions", headers=h))
    assert versions[0]["number"] == 2 and versions[0]["current"] is True, again
    assert versions[0]["quality"]["release"]["passed"] is True
    assert versions[0]["lineage"]["masking_policy"] == 2  # the generalising policy made it pass
    assert versions[0]["quality"]["release"]["smallest"] >= 5


def test_data_that_is_not_opened_is_not_checked(
    http: TestClient, staff: Staff, factory: sessionmaker[Session]
) -> None:
    with transaction(factory) as db:
        entry = f.published_entry(
            db,
            dept=db.merge(staff.department),
            name="门诊就诊记录（内部）",
            items=ITEMS,
            open_type="not_open",
            open_basis="《中华人民共和国个人信息保护法》",
        )
        db.flush()
        db.expunge_all()
    h = staff.keys["cataloguer"]
    ok(
        http.put(
            f"/api/v1/clean/entries/{entry.id}/masking",
            json={"rules": [], "quasi_identifiers": ["年龄", "性别", "邮编"]},
            headers=h,
        )
    )
    load(http, entry.id, _patients(50), h)
    [v1] = ok(http.get(f"{API}/entries/{entry.id}/versions", headers=h))
    assert v1["current"] is True and "release" not in (v1["quality"] or {})
