"""The cleaning and masking console: a cataloguer saves rules (and sees every mistake named), sets
masking per item and channel with the quasi-identifiers, and reads the quality report and the
lineage timeline of the versions; a reviewer sees them but cannot change them."""

from __future__ import annotations

import html
import json

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.functional.collect.conftest import API, Bureau, load, ok
from tests.functional.collect.test_pages import signed_in

GOOD = "地区,人口\n贵阳市,598.7\n遵义市,/\n".encode()


def test_rules_and_masking_from_the_console(
    collect_app: FastAPI, http: TestClient, bureau: Bureau
) -> None:
    eid = bureau.entry.id
    client, csrf = signed_in(collect_app, bureau.usernames["cataloguer"])
    page = client.get(f"/clean/entries/{eid}")
    assert page.status_code == 200
    assert "清洗规则" in page.text and "脱敏策略" in page.text and 'name="m-0-share"' in page.text

    bad = client.post(
        f"/clean/entries/{eid}/rules",
        data={
            "csrf_token": csrf,
            "rules": '[{"kind": "range", "item": "人口", "min": 9, "max": 1},',
        },
    )
    assert bad.status_code == 422 and 'data-code="bad_json"' in bad.text
    assert '"min": 9' in html.unescape(bad.text)  # what was typed is kept for correcting
    wrong = client.post(
        f"/clean/entries/{eid}/rules",
        data={
            "csrf_token": csrf,
            "rules": '[{"kind": "range", "item": "人口", "min": 9, "max": 1}]',
        },
    )
    assert wrong.status_code == 422 and "bad_cleaning_rules" in wrong.text
    assert "rules[0]" in wrong.text
    rules = [{"kind": "null_tokens", "item": "*", "tokens": ["/"]}]
    saved = client.post(
        f"/clean/entries/{eid}/rules",
        data={"csrf_token": csrf, "rules": json.dumps(rules, ensure_ascii=False), "note": "占位符"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert (
        ok(http.get(f"/api/v1/clean/entries/{eid}/rules", headers=bureau.member))[0]["rules"]
        == rules
    )

    masked = client.post(
        f"/clean/entries/{eid}/masking",
        data={
            "csrf_token": csrf,
            "m-0-open": "truncate",
            "p-0-open": '{"keep": 2}',
            "quasi": "地区",
            "k": "3",
        },
        follow_redirects=False,
    )
    assert masked.status_code == 303, masked.text
    [policy] = ok(http.get(f"/api/v1/clean/entries/{eid}/masking", headers=bureau.member))
    assert policy["rules"] == [
        {"item": "地区", "channel": "open", "method": "truncate", "params": {"keep": 2}}
    ]
    assert (policy["quasi_identifiers"], policy["k"]) == (["地区"], 3)
    bad_params = client.post(
        f"/clean/entries/{eid}/masking",
        data={"csrf_token": csrf, "m-0-open": "truncate", "p-0-open": "keep=2"},
    )
    assert bad_params.status_code == 422 and "bad_json" in bad_params.text

    reviewer, _ = signed_in(collect_app, bureau.usernames["member"])
    seen = reviewer.get(f"/clean/entries/{eid}")
    assert seen.status_code == 200 and "保存为新版本" not in seen.text
    outsider, _ = signed_in(collect_app, bureau.usernames["outsider"])
    assert outsider.get(f"/clean/entries/{eid}").status_code == 403


def test_quality_and_lineage_pages(collect_app: FastAPI, http: TestClient, bureau: Bureau) -> None:
    eid = bureau.entry.id
    load(http, eid, GOOD, bureau.cataloguer)
    load(http, eid, GOOD, bureau.cataloguer)
    client, _ = signed_in(collect_app, bureau.usernames["member"])
    page = client.get(f"/clean/entries/{eid}/quality")
    assert page.status_code == 200
    [v2, v1] = ok(http.get(f"{API}/entries/{eid}/versions", headers=bureau.member))
    assert page.text.count("第 1 版") >= 2 and "第 2 版" in page.text  # trend and timeline
    assert f'href="/collect/runs/{v1["run_id"]}"' in page.text
    assert f'href="/collect/runs/{v2["run_id"]}"' in page.text
