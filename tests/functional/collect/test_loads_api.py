"""Loading through the API: upload → run → version, failures that leave the served version
alone, the quarantine, mapping, roll back, cancel, and who may do it."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.store import storage
from tests.functional.collect.conftest import (
    API,
    Bureau,
    audit_events,
    finished,
    load,
    ok,
    refused,
    upload,
)

GOOD = "地区,人口\n贵阳市,598.7\n遵义市,660.6\n六盘水市,303.2\n".encode()


def versions(client: TestClient, bureau: Bureau) -> list[dict[str, Any]]:
    return list(ok(client.get(f"{API}/entries/{bureau.entry.id}/versions", headers=bureau.member)))


def served(client: TestClient, bureau: Bureau) -> dict[str, Any] | None:
    body = ok(client.get(f"{API}/entries/{bureau.entry.id}", headers=bureau.member))
    return body["current_version"]  # type: ignore[no-any-return]


def test_upload_with_a_chinese_name_becomes_version_1(
    http: TestClient, bureau: Bureau, data_dir: Path
) -> None:
    queued = ok(
        upload(http, bureau.entry.id, GOOD, bureau.cataloguer, filename="常住人口2023年.csv"), 202
    )
    assert queued["input_name"] == "常住人口2023年.csv"
    run = finished(http, queued["id"], bureau.cataloguer)
    assert run["status"] == "succeeded", run
    assert (run["rows_read"], run["rows_loaded"], run["rows_quarantined"]) == (3, 3, 0)
    assert run["percent"] == 100 and run["error"] is None and run["quarantine_url"] is None
    [v1] = versions(http, bureau)
    assert (v1["number"], v1["rows"], v1["current"], v1["run_id"]) == (1, 3, True, run["id"])
    assert re.fullmatch(r"[0-9a-f]{64}", v1["sm3"])
    # The checksum is the file's: anyone holding the Parquet can verify it.
    parquet = data_dir / "versions" / str(bureau.entry.id) / "1" / storage.DATA_FILE
    assert storage.sm3_file(parquet) == v1["sm3"]
    assert [c["name"] for c in v1["columns"]] == ["地区", "人口"]
    assert served(http, bureau)["number"] == 1  # type: ignore[index]
    listed = ok(
        http.get(f"{API}/runs", params={"entry_id": bureau.entry.id}, headers=bureau.member)
    )
    assert [r["id"] for r in listed["items"]] == [run["id"]] and listed["total"] == 1


def test_a_bad_file_fails_and_the_served_version_stays(http: TestClient, bureau: Bureau) -> None:
    assert load(http, bureau.entry.id, GOOD, bureau.cataloguer)["status"] == "succeeded"
    before = versions(http, bureau)
    wrong = "地区,数量\n贵阳市,1\n".encode()  # 人口 has no column
    run = load(http, bureau.entry.id, wrong, bureau.cataloguer, filename="错误.csv")
    assert run["status"] == "failed"
    assert run["error"]["code"] == "mapping_incomplete"
    assert "人口" in run["error"]["message"] and run["error"]["details"]["items"] == ["人口"]
    assert run["log"] and run["version_id"] is None
    assert versions(http, bureau) == before
    assert served(http, bureau)["number"] == 1  # type: ignore[index]
    failed = ok(
        http.get(
            f"{API}/runs",
            params={"entry_id": bureau.entry.id, "status": "failed"},
            headers=bureau.member,
        )
    )
    assert [r["id"] for r in failed["items"]] == [run["id"]]


def test_an_empty_upload_is_refused_before_any_run(http: TestClient, bureau: Bureau) -> None:
    refused(upload(http, bureau.entry.id, b"", bureau.cataloguer), 422, "empty_file")
    runs = ok(http.get(f"{API}/runs", params={"entry_id": bureau.entry.id}, headers=bureau.member))
    assert runs["total"] == 0


def test_quarantine_download_has_the_bad_rows_and_why(
    http: TestClient, bureau: Bureau, factory: sessionmaker[Session]
) -> None:
    content = '地区,人口\n贵阳市,598.7\n毕节市,很多\n=HYPERLINK("x"),abc\n安顺市,247.7\n'.encode()
    run = load(http, bureau.entry.id, content, bureau.cataloguer)
    assert run["status"] == "succeeded", run
    assert (run["rows_read"], run["rows_loaded"], run["rows_quarantined"]) == (4, 2, 2)
    response = http.get(run["quarantine_url"], params={"bom": 1}, headers=bureau.member)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "filename*=UTF-8''" in response.headers["content-disposition"]
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["源文件行号", "隔离原因", "地区", "人口"]
    by_place = {row[2]: row for row in rows[1:]}
    assert set(by_place) == {"毕节市", '\'=HYPERLINK("x")'}  # a formula cell is neutralised
    line, reason = by_place["毕节市"][:2]
    assert line == "3" and "人口" in reason and "很多" in reason
    [event] = [
        e for e in audit_events(factory, "collect.read_quarantine") if e.target_id == str(run["id"])
    ]
    assert event.details and event.details["rows"] == 2


def test_mapping_proposed_saved_and_used(http: TestClient, bureau: Bureau) -> None:
    eid = bureau.entry.id
    proposal = ok(
        http.post(
            f"{API}/entries/{eid}/mapping/propose",
            json={"columns": ["行政区划", "常住人口（万人）"]},
            headers=bureau.cataloguer,
        )
    )
    assert proposal["mapping"] == {"人口": "常住人口（万人）"}
    assert proposal["unmapped"] == ["地区"] and proposal["items"] == ["地区", "人口"]
    sample = "行政区划,常住人口（万人）,备注\n贵阳市,598.7,\n".encode()
    from_sample = ok(
        http.post(
            f"{API}/entries/{eid}/mapping/propose/upload",
            files={"file": ("样例.csv", sample, "text/csv")},
            headers=bureau.cataloguer,
        )
    )
    assert from_sample["columns"] == ["行政区划", "常住人口（万人）", "备注"]
    assert from_sample["mapping"] == proposal["mapping"]
    source = ok(
        http.post(
            f"{API}/entries/{eid}/sources",
            json={"kind": "file", "name": "年鉴导出", "mapping": proposal["mapping"]},
            headers=bureau.cataloguer,
        ),
        201,
    )
    # Without 地区 the load cannot know where the region is: it fails and says so.
    failed = load(http, eid, sample, bureau.cataloguer, source_id=source["id"])
    assert failed["error"]["code"] == "mapping_incomplete"
    saved = ok(
        http.put(
            f"{API}/sources/{source['id']}/mapping",
            json={"mapping": {**proposal["mapping"], "地区": "行政区划"}},
            headers=bureau.cataloguer,
        )
    )
    assert saved["mapping"] == {"人口": "常住人口（万人）", "地区": "行政区划"}
    run = load(http, eid, sample, bureau.cataloguer, source_id=source["id"])
    assert (
        run["status"] == "succeeded"
        and run["rows_loaded"] == 1
        and run["source_id"] == source["id"]
    )
    [v1] = versions(http, bureau)
    assert {c["name"]: c["source"] for c in v1["columns"]} == {
        "地区": "行政区划",
        "人口": "常住人口（万人）",
    }


def test_roll_back_to_version_1_after_version_2(
    http: TestClient, bureau: Bureau, factory: sessionmaker[Session]
) -> None:
    eid = bureau.entry.id
    load(http, eid, GOOD, bureau.cataloguer)
    second = load(http, eid, "地区,人口\n贵阳市,600\n".encode(), bureau.cataloguer)
    assert second["status"] == "succeeded"
    assert [(v["number"], v["current"], v["rows"]) for v in versions(http, bureau)] == [
        (2, True, 1),
        (1, False, 3),
    ]
    refused(
        http.post(
            f"{API}/entries/{eid}/versions/1/publish", json={"reason": ""}, headers=bureau.officer
        ),
        422,
        "validation_failed",
    )
    back = ok(
        http.post(
            f"{API}/entries/{eid}/versions/1/publish",
            json={"reason": "第 2 版口径有误"},
            headers=bureau.officer,
        )
    )
    assert back["number"] == 1 and back["current"] is True
    assert [(v["number"], v["current"]) for v in versions(http, bureau)] == [(2, False), (1, True)]
    assert served(http, bureau)["rows"] == 3  # type: ignore[index]
    refused(
        http.post(
            f"{API}/entries/{eid}/versions/9/publish", json={"reason": "x"}, headers=bureau.officer
        ),
        404,
        "version_not_found",
    )
    reasons = [e.details.get("reason") for e in audit_events(factory, "store.publish") if e.details]
    assert "第 2 版口径有误" in reasons


def test_cancel_a_queued_run(http: TestClient, bureau: Bureau) -> None:
    app = http.app
    held: list[int] = []

    class NoWorkerYet:
        """Production mode before a worker has picked the run up: it stays queued."""

        def submit(self, run_id: int) -> None:
            held.append(run_id)

    previous = getattr(app.state, "runner", None)  # type: ignore[attr-defined]
    app.state.runner = NoWorkerYet()  # type: ignore[attr-defined]
    try:
        queued = ok(upload(http, bureau.entry.id, GOOD, bureau.cataloguer), 202)
    finally:
        app.state.runner = previous  # type: ignore[attr-defined]
    assert held == [queued["id"]] and queued["status"] == "queued"
    refused(
        http.post(f"{API}/runs/{queued['id']}/cancel", headers=bureau.outsider),
        403,
        "permission_denied",
    )
    cancelled = ok(http.post(f"{API}/runs/{queued['id']}/cancel", headers=bureau.cataloguer))
    assert cancelled["status"] == "cancelled" and cancelled["finished"] is True
    refused(
        http.post(f"{API}/runs/{queued['id']}/cancel", headers=bureau.cataloguer),
        409,
        "run_finished",
    )
    assert versions(http, bureau) == []


def test_another_department_is_refused_and_audited(
    http: TestClient, bureau: Bureau, factory: sessionmaker[Session]
) -> None:
    eid = bureau.entry.id
    refused(upload(http, eid, GOOD, bureau.outsider), 403, "permission_denied")
    run = load(http, eid, GOOD, bureau.cataloguer)
    for url in (f"/runs/{run['id']}", f"/entries/{eid}/versions", f"/entries/{eid}/sources"):
        refused(http.get(API + url, headers=bureau.outsider), 403, "permission_denied")
    refused(
        http.post(
            f"{API}/entries/{eid}/versions/1/publish",
            json={"reason": "试试"},
            headers=bureau.outsider,
        ),
        403,
        "permission_denied",
    )
    # A member who only reviews may watch the loads but not start one.
    refused(upload(http, eid, GOOD, bureau.member), 403, "permission_denied")
    mine = ok(http.get(f"{API}/runs", headers=bureau.outsider))
    assert all(r["entry_id"] != eid for r in mine["items"])
    denied = [
        e
        for e in audit_events(factory, "collect.load")
        if e.outcome == "denied" and e.actor_username == bureau.usernames["outsider"]
    ]
    assert denied and denied[0].target_id == str(eid)


def test_an_unpublished_entry_takes_no_data(http: TestClient, bureau: Bureau) -> None:
    from tests.functional.catalog.conftest import entry_body

    draft = ok(
        http.post("/api/v1/catalog/entries", json=entry_body(), headers=bureau.cataloguer), 201
    )
    refused(upload(http, draft["id"], GOOD, bureau.cataloguer), 409, "entry_not_published")
    refused(
        http.post(
            f"{API}/entries/{draft['id']}/sources",
            json={"kind": "file", "name": "x"},
            headers=bureau.cataloguer,
        ),
        409,
        "entry_not_published",
    )


def test_sources_never_show_their_secret(http: TestClient, bureau: Bureau) -> None:
    eid = bureau.entry.id
    body = {
        "kind": "database",
        "name": "人口库前置机",
        "config": {"url": "postgresql://reader:hunter2@10.0.0.8:5432/stats", "table": "people"},
        "secret": "s3cret-口令",
        "schedule": "0 2 1 1 *",
    }
    made = ok(http.post(f"{API}/entries/{eid}/sources", json=body, headers=bureau.cataloguer), 201)
    for response in (
        http.get(f"{API}/sources/{made['id']}", headers=bureau.member),
        http.get(f"{API}/entries/{eid}/sources", headers=bureau.member),
        http.get(f"{API}/entries/{eid}", headers=bureau.member),
    ):
        assert response.status_code == 200
        assert "s3cret" not in response.text and "hunter2" not in response.text
    assert made["has_secret"] is True and made["next_run_at"]
    assert made["config"]["url"] == "postgresql://reader:***@10.0.0.8:5432/stats"
    refused(
        http.post(
            f"{API}/entries/{eid}/sources",
            json={**body, "schedule": "every day"},
            headers=bureau.cataloguer,
        ),
        422,
        "schedule_invalid",
    )
    # A file source needs its file; a disabled source does not run.
    file_source = ok(
        http.post(
            f"{API}/entries/{eid}/sources",
            json={"kind": "file", "name": "手工"},
            headers=bureau.cataloguer,
        ),
        201,
    )
    refused(
        http.post(f"{API}/sources/{file_source['id']}/run", headers=bureau.cataloguer),
        422,
        "source_needs_input",
    )
    off = ok(http.post(f"{API}/sources/{made['id']}/disable", headers=bureau.cataloguer))
    assert off["enabled"] is False
    refused(
        http.post(f"{API}/sources/{made['id']}/run", headers=bureau.cataloguer),
        409,
        "source_disabled",
    )
    assert ok(http.post(f"{API}/sources/{made['id']}/enable", headers=bureau.cataloguer))["enabled"]


def push_source(http: TestClient, bureau: Bureau, **config: Any) -> dict[str, Any]:
    body = {"kind": "push", "name": "人口系统推送", "config": config}
    return dict(
        ok(
            http.post(
                f"{API}/entries/{bureau.entry.id}/sources", json=body, headers=bureau.cataloguer
            ),
            201,
        )
    )


def test_a_department_system_pushes_csv(http: TestClient, bureau: Bureau) -> None:
    source = push_source(http, bureau)
    url = f"{API}/sources/{source['id']}/push"
    queued = ok(
        http.post(url, content=GOOD, headers={**bureau.cataloguer, "Content-Type": "text/csv"}), 202
    )
    assert queued["trigger"] == "push" and queued["source_id"] == source["id"]
    run = finished(http, queued["id"], bureau.cataloguer)
    assert run["status"] == "succeeded" and run["rows_loaded"] == 3, run
    assert versions(http, bureau)[0]["rows"] == 3
    refused(
        http.post(url, content=GOOD, headers={**bureau.outsider, "Content-Type": "text/csv"}),
        403,
        "permission_denied",
    )
    refused(
        http.post(
            url, content=b"<a/>", headers={**bureau.cataloguer, "Content-Type": "application/xml"}
        ),
        422,
        "push_format_unsupported",
    )


def test_a_pushed_json_body_that_is_not_records_is_refused_at_once(
    http: TestClient, bureau: Bureau
) -> None:
    source = push_source(http, bureau)
    url = f"{API}/sources/{source['id']}/push"
    refused(
        http.post(url, json={"地区": "贵阳市"}, headers=bureau.cataloguer), 422, "push_not_records"
    )
    refused(
        http.post(
            url, content=b"[{", headers={**bureau.cataloguer, "Content-Type": "application/json"}
        ),
        422,
        "push_invalid_json",
    )
    runs = ok(http.get(f"{API}/runs", params={"entry_id": bureau.entry.id}, headers=bureau.member))
    assert runs["total"] == 0
