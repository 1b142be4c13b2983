"""The collection console: a cataloguer loads a file and watches it, maps a source's columns,
rolls back a version; other departments are refused; every form needs its CSRF token."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests import factories as f
from tests.functional.collect.conftest import API, Bureau, finished, load, ok

GOOD = "地区,人口\n贵阳市,598.7\n遵义市,660.6\n".encode()


def signed_in(app: FastAPI, username: str) -> tuple[TestClient, str]:
    client = TestClient(app, base_url="http://testserver")
    return client, f.sign_in(client, username).csrf


def post_upload(client: TestClient, entry_id: int, csrf: str, content: bytes, **data: str) -> Any:
    return client.post(
        f"/collect/entries/{entry_id}/upload",
        files={"file": ("人口.csv", content, "text/csv")},
        data={"csrf_token": csrf, **data},
        follow_redirects=False,
    )


def test_cataloguer_uploads_and_sees_the_run_and_the_version(
    collect_app: FastAPI, http: TestClient, bureau: Bureau
) -> None:
    eid = bureau.entry.id
    client, csrf = signed_in(collect_app, bureau.usernames["cataloguer"])
    catalog_page = client.get(f"/catalog/entries/{eid}")
    assert f'href="/collect/entries/{eid}"' in catalog_page.text
    empty = client.get(f"/collect/entries/{eid}")
    assert empty.status_code == 200
    assert "尚无已发布的数据" in empty.text and 'enctype="multipart/form-data"' in empty.text
    sent = post_upload(client, eid, csrf, GOOD)
    assert sent.status_code == 303
    run_url = sent.headers["location"]
    run_id = int(run_url.rsplit("/", 1)[1])
    run = finished(http, run_id, bureau.cataloguer)
    page = client.get(run_url)
    assert page.status_code == 200
    assert f"加载任务 #{run_id}" in page.text and "人口.csv" in page.text
    assert "成功" in page.text and "data-run-url" not in page.text  # finished: no polling
    assert 'value="100"' in page.text and "第 1 版" in page.text
    data = client.get(f"/collect/entries/{eid}")
    [v1] = ok(http.get(f"{API}/entries/{eid}/versions", headers=bureau.member))
    assert v1["sm3"] in data.text and "现行数据版本" in data.text
    assert f'href="/collect/runs/{run["id"]}"' in data.text
    runs = client.get(f"/collect/entries/{eid}/runs")
    assert runs.status_code == 200 and f"#{run_id}" in runs.text


def test_a_running_load_is_watched_live_and_refreshable(
    collect_app: FastAPI, http: TestClient, bureau: Bureau
) -> None:
    client, csrf = signed_in(collect_app, bureau.usernames["cataloguer"])

    class NoWorkerYet:
        def submit(self, run_id: int) -> None:
            return None

    previous = getattr(collect_app.state, "runner", None)
    collect_app.state.runner = NoWorkerYet()
    try:
        run_url = post_upload(client, bureau.entry.id, csrf, GOOD).headers["location"]
    finally:
        collect_app.state.runner = previous
    page = client.get(run_url)
    run_id = run_url.rsplit("/", 1)[1]
    assert f'data-run-url="/api/v1/collect/runs/{run_id}"' in page.text
    assert '<progress id="run-bar" max="100" value="0">' in page.text
    assert f'href="/collect/runs/{run_id}">刷新</a>' in page.text
    assert '<script src="/static/collect-progress.js" defer></script>' in page.text
    script = client.get("/static/collect-progress.js")
    assert script.status_code == 200 and "data-run-url" in script.text
    # The JSON the script polls answers the browser's own session.
    assert client.get(f"/api/v1/collect/runs/{run_id}").json()["status"] == "queued"
    cancelled = client.post(
        f"/collect/runs/{run_id}/cancel", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert cancelled.status_code == 303
    assert "已取消" in client.get(run_url).text


def test_failed_and_quarantined_runs_show_why(
    collect_app: FastAPI, http: TestClient, bureau: Bureau
) -> None:
    client, _csrf = signed_in(collect_app, bureau.usernames["cataloguer"])
    failed = load(http, bureau.entry.id, "地区,数量\n贵阳市,1\n".encode(), bureau.cataloguer)
    page = client.get(f"/collect/runs/{failed['id']}")
    assert 'data-code="mapping_incomplete"' in page.text and "加载失败" in page.text
    assert "此前发布的数据版本未受影响" in page.text
    content = "地区,人口\n贵阳市,598.7\n毕节市,很多\n".encode()
    partial = load(http, bureau.entry.id, content, bureau.cataloguer)
    page = client.get(f"/collect/runs/{partial['id']}")
    link = f"/api/v1/collect/runs/{partial['id']}/quarantine.csv?bom=1"
    assert link in page.text
    download = client.get(link)
    assert download.status_code == 200 and "很多" in download.content.decode("utf-8-sig")


def test_source_mapping_from_a_sample_then_saved(
    collect_app: FastAPI, http: TestClient, bureau: Bureau
) -> None:
    eid = bureau.entry.id
    client, csrf = signed_in(collect_app, bureau.usernames["cataloguer"])
    assert client.get(f"/collect/entries/{eid}/sources").status_code == 200
    made = client.post(
        f"/collect/entries/{eid}/sources",
        data={"csrf_token": csrf, "kind": "file", "name": "年鉴导出", "config": ""},
        follow_redirects=False,
    )
    assert made.status_code == 303
    source_url = made.headers["location"].split("?")[0]
    source_id = int(source_url.rsplit("/", 1)[1])
    bad = client.post(
        f"/collect/entries/{eid}/sources",
        data={"csrf_token": csrf, "kind": "database", "name": "库", "config": "{url"},
    )
    assert bad.status_code == 422 and 'data-code="config_invalid"' in bad.text
    sample = "行政区划,常住人口（万人）\n贵阳市,598.7\n".encode()
    proposed = client.post(
        f"/collect/sources/{source_id}/sample/upload",
        files={"file": ("样例.csv", sample, "text/csv")},
        data={"csrf_token": csrf},
    )
    assert proposed.status_code == 200
    assert "已读取样例文件的 2 个列名" in proposed.text
    assert re.search(r'<option value="常住人口（万人）" selected>', proposed.text)
    assert '<option value="行政区划">' in proposed.text  # offered, not chosen: 地区 is unmatched
    saved = client.post(
        f"/collect/sources/{source_id}/mapping",
        data={"csrf_token": csrf, "map-1": "行政区划", "map-2": "", "other-2": "常住人口（万人）"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    source = ok(http.get(f"{API}/sources/{source_id}", headers=bureau.member))
    assert source["mapping"] == {"地区": "行政区划", "人口": "常住人口（万人）"}
    run_url = post_upload(client, eid, csrf, sample, source_id=str(source_id)).headers["location"]
    run = finished(http, int(run_url.rsplit("/", 1)[1]), bureau.cataloguer)
    assert run["status"] == "succeeded" and run["rows_loaded"] == 1
    off = client.post(
        f"/collect/sources/{source_id}/disable", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert off.status_code == 303 and "停用" in client.get(source_url).text


def test_roll_back_from_the_console(collect_app: FastAPI, http: TestClient, bureau: Bureau) -> None:
    eid = bureau.entry.id
    load(http, eid, GOOD, bureau.cataloguer)
    load(http, eid, "地区,人口\n贵阳市,600\n".encode(), bureau.cataloguer)
    client, csrf = signed_in(collect_app, bureau.usernames["officer"])
    page = client.get(f"/collect/entries/{eid}")
    assert f'action="/collect/entries/{eid}/versions/1/publish"' in page.text
    assert "回退到此版本" in page.text
    no_reason = client.post(
        f"/collect/entries/{eid}/versions/1/publish", data={"csrf_token": csrf, "reason": " "}
    )
    assert no_reason.status_code == 422 and 'data-code="reason_required"' in no_reason.text
    back = client.post(
        f"/collect/entries/{eid}/versions/1/publish",
        data={"csrf_token": csrf, "reason": "第 2 版口径有误"},
        follow_redirects=False,
    )
    assert back.status_code == 303
    current = ok(http.get(f"{API}/entries/{eid}", headers=bureau.member))["current_version"]
    assert current["number"] == 1


def test_other_departments_are_refused(
    collect_app: FastAPI, http: TestClient, bureau: Bureau
) -> None:
    eid = bureau.entry.id
    run = load(http, eid, GOOD, bureau.cataloguer)
    client, csrf = signed_in(collect_app, bureau.usernames["outsider"])
    for url in (
        f"/collect/entries/{eid}",
        f"/collect/entries/{eid}/runs",
        f"/collect/runs/{run['id']}",
    ):
        page = client.get(url)
        assert page.status_code == 403 and "您没有执行此操作的权限" in page.text
    assert post_upload(client, eid, csrf, GOOD).status_code == 403
    # Whoever reads the catalog entry sees no link to data that is not theirs.
    assert f'href="/collect/entries/{eid}"' not in client.get(f"/catalog/entries/{eid}").text
    # A reviewer of the bureau may look, but gets no upload form and no roll-back buttons.
    member, _ = signed_in(collect_app, bureau.usernames["member"])
    page = member.get(f"/collect/entries/{eid}")
    assert (
        page.status_code == 200
        and "上传并加载" not in page.text
        and "回退到此版本" not in page.text
    )


def test_forms_need_their_csrf_token(
    collect_app: FastAPI, http: TestClient, bureau: Bureau
) -> None:
    eid = bureau.entry.id
    client, csrf = signed_in(collect_app, bureau.usernames["cataloguer"])
    forged = post_upload(client, eid, "forged", GOOD)
    assert forged.status_code == 403 and "CSRF" in forged.text
    no_token = client.post(f"/collect/entries/{eid}/sources", data={"kind": "file", "name": "x"})
    assert no_token.status_code == 403
    runs = ok(http.get(f"{API}/runs", params={"entry_id": eid}, headers=bureau.member))
    assert runs["total"] == 0
    assert ok(http.get(f"{API}/entries/{eid}/sources", headers=bureau.member)) == []
    assert csrf  # the real token works (the other tests use it)
