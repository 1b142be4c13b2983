"""An objection runs to a corrected version and another to a rejection; both sides are told,
through the inbox and through a real SMTP server on loopback, and both see the history."""

from __future__ import annotations

import time
from email.header import decode_header, make_header
from pathlib import Path

from sqlalchemy import update

from kuaishu.accounts.models import User
from kuaishu.notify.services import deliver
from tests.functional.share.conftest import API, Exchange
from tests.functional.share.test_notifications import Inbox, smtp
from tests.functional.store.conftest import load_file, write_csv
from tests.http import ok

__all__ = ["smtp"]


def test_objection_corrected_then_another_rejected(
    exchange: Exchange, smtp: Inbox, module_data_dir: Path
) -> None:
    x = exchange
    with x.factory() as db:
        db.execute(update(User).values(email=User.username + "@gov.example"))
        db.commit()
    grant = ok(
        x.client.post(
            f"{API}/entries/{x.entries['unconditional']['id']}/applications",
            json={"purpose": "待遇核验", "methods": ["query", "lookup"]},
            headers=x.keys["consumer"],
        ),
        201,
    )["grant"]["id"]
    wrong = x.rows[4]["身份证号"]
    raised = ok(
        x.client.post(
            f"{API}/grants/{grant}/objections",
            json={
                "records": [wrong],
                "fields": ["补助金额"],
                "description": "补助金额与发放台账不符",
                "evidence": "2026 年 11 月发放台账第 12 页",
            },
            headers=x.keys["consumer"],
        ),
        201,
    )
    assert raised["state"] == "submitted" and raised["version_number"] == 1
    url = f"{API}/objections/{raised['id']}"
    officer = x.keys["provider_officer"]
    bad = x.client.post(f"{url}/answer", json={"corrected_in": 1}, headers=officer)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "not_a_later_version"
    assert (
        x.client.post(
            f"{url}/answer", json={"corrected_in": 2}, headers=x.keys["consumer"]
        ).status_code
        == 403
    )

    # The provider fixes the amount and loads version 2, then answers naming it.
    fixed = [dict(r, 补助金额=999) if r["身份证号"] == wrong else r for r in x.rows]
    load_file(
        x.factory, x.entries["unconditional"]["id"], write_csv(module_data_dir / "fixed.csv", fixed)
    )
    answered = ok(
        x.client.post(
            f"{url}/answer", json={"corrected_in": 2, "reason": "已按台账更正"}, headers=officer
        )
    )
    assert (answered["state"], answered["corrected_in"]) == ("corrected", 2)
    row = ok(
        x.client.get(
            f"{API}/grants/{grant}/lookup", params={"key": wrong}, headers=x.keys["consumer"]
        )
    )
    assert row["rows"][0][3] == 999 and row["version"] == 2

    second = ok(
        x.client.post(
            f"{API}/grants/{grant}/objections",
            json={"records": [x.rows[6]["身份证号"]], "description": "区划代码有误"},
            headers=x.keys["consumer"],
        ),
        201,
    )
    surl = f"{API}/objections/{second['id']}"
    assert x.client.post(f"{surl}/answer", json={}, headers=officer).status_code == 422
    rejected = ok(
        x.client.post(f"{surl}/answer", json={"reason": "经核实区划代码无误"}, headers=officer)
    )
    assert rejected["state"] == "rejected"
    assert (
        x.client.post(f"{surl}/answer", json={"reason": "再答"}, headers=officer).status_code == 409
    )

    for who in ("consumer", "provider_officer"):
        seen = {
            o["id"]: o["state"] for o in ok(x.client.get(f"{API}/objections", headers=x.keys[who]))
        }
        assert seen[raised["id"]] == "corrected" and seen[second["id"]] == "rejected"
    assert x.client.get(url, headers=x.keys["other"]).status_code == 403

    assert deliver(x.factory) >= 4
    deadline = time.monotonic() + 5
    while len(smtp.messages) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    subjects = [str(make_header(decode_header(m["Subject"]))) for _, m in smtp.messages]
    assert sum("数据疑义：" in s for s in subjects) >= 2  # the provider, twice
    assert any("已在第 2 版更正" in s for s in subjects)
    assert any("未予更正" in s for s in subjects)
    assert x.audit("share.objection_corrected") and x.audit("share.objection_rejected")
