"""HTTP API sources against servers on 127.0.0.1: each paging style, the auth header, a server
too slow for the timeout, and responses that are not what the source expects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.collect.connectors import validate_config
from kuaishu.collect.enums import RunStatus, SourceKind
from kuaishu.errors import ValidationFailed
from tests.unit.collect.sources_support import (
    Reply,
    Seen,
    add_source,
    load,
    make_entry,
    rows,
    serve,
    served,
)

ITEMS = [("编号", "I"), ("姓名", "C"), ("金额", "Y")]
PEOPLE = [{"id": n, "name": f"张{n}", "amount": n * 1.5} for n in range(1, 8)]


def _page(seen: Seen) -> Reply:
    page, size = int(seen.query["pageNo"]), int(seen.query["pageSize"])
    chunk = PEOPLE[(page - 1) * size : page * size]
    return Reply(body={"code": 0, "data": {"list": chunk, "total": len(PEOPLE)}})


def _offset(seen: Seen) -> Reply:
    start, limit = int(seen.query["skip"]), int(seen.query["take"])
    return Reply(body={"rows": PEOPLE[:6][start : start + limit]})


def _cursor(seen: Seen) -> Reply:
    at = int(seen.query.get("after", "0"))
    chunk = PEOPLE[at : at + 3]
    following = at + 3 if at + 3 < len(PEOPLE) else None
    return Reply(body={"data": {"items": chunk, "next": following}})


PAGINGS: list[tuple[Any, dict[str, Any], int, int]] = [
    (
        _page,
        {
            "records_path": "data.list",
            "paging": {"type": "page", "page_param": "pageNo", "size_param": "pageSize", "size": 3},
        },
        7,
        3,  # 3 + 3 + 1: a short page ends it
    ),
    (
        _offset,
        {
            "records_path": "rows",
            "paging": {"type": "offset", "offset_param": "skip", "limit_param": "take", "size": 3},
        },
        6,
        3,  # 3 + 3 + an empty page
    ),
    (
        _cursor,
        {
            "records_path": "data.items",
            "paging": {"type": "cursor", "cursor_param": "after", "next_path": "data.next"},
        },
        7,
        3,  # until no next cursor
    ),
]


@pytest.mark.parametrize(("handler", "config", "expected", "requests"), PAGINGS)
def test_each_paging_style_reads_every_page(
    factory: sessionmaker[Session],
    data_dir: Path,
    handler: Any,
    config: dict[str, Any],
    expected: int,
    requests: int,
) -> None:
    setup = make_entry(factory, ITEMS)
    with serve(handler) as server:
        source_id = add_source(
            factory,
            setup,
            SourceKind.HTTP_API,
            {"url": server.url + "/api/people", **config},
            mapping={"编号": "id", "姓名": "name", "金额": "amount"},
        )
        run = load(factory, setup, source_id)
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert run.rows_loaded == expected
    assert len(server.seen) == requests
    got = rows(factory, setup.entry_id, "1")
    assert [r[0] for r in got] == list(range(1, expected + 1))
    assert got[1][1:] == ("张2", pytest.approx(3.0))


def _guarded(seen: Seen) -> Reply:
    if seen.headers.get("authorization") != "Bearer s3cret":
        return Reply(status=401, body={"message": "token required"})
    return Reply(body=[{"id": 1, "name": "李一", "amount": 2}])


def test_auth_header_carries_the_sealed_secret(
    factory: sessionmaker[Session], data_dir: Path
) -> None:
    setup = make_entry(factory, ITEMS)
    mapping = {"编号": "id", "姓名": "name", "金额": "amount"}
    with serve(_guarded) as server:
        config = {"url": server.url + "/people", "auth_header": "Authorization"}
        good = add_source(
            factory, setup, SourceKind.HTTP_API, config, secret="Bearer s3cret", mapping=mapping
        )
        bad = add_source(
            factory, setup, SourceKind.HTTP_API, config, secret="Bearer nope", mapping=mapping
        )
        assert load(factory, setup, good).status == RunStatus.SUCCEEDED
        refused = load(factory, setup, bad)
    assert refused.status == RunStatus.FAILED
    assert refused.error_code == "source_http_error"
    assert "401" in (refused.error_message or "")
    assert server.url in (refused.error_message or "")
    assert refused.error_details == {"url": server.url + "/people", "page": 1, "status": 401}
    assert "s3cret" not in str(refused.log)


def test_a_slow_server_times_out_and_the_served_version_stays(
    factory: sessionmaker[Session], data_dir: Path
) -> None:
    slow = {"on": False}

    def handler(seen: Seen) -> Reply:
        return Reply(body=[{"id": 1, "name": "王五", "amount": 1}], delay=2.0 if slow["on"] else 0)

    setup = make_entry(factory, ITEMS)
    with serve(handler) as server:
        source_id = add_source(
            factory,
            setup,
            SourceKind.HTTP_API,
            {"url": server.url + "/slow", "timeout": 0.3},
            mapping={"编号": "id", "姓名": "name", "金额": "amount"},
        )
        assert load(factory, setup, source_id).status == RunStatus.SUCCEEDED
        before = served(factory, setup.entry_id)
        slow["on"] = True
        run = load(factory, setup, source_id)
    assert run.status == RunStatus.FAILED
    assert run.error_code == "source_timeout"
    assert "/slow" in (run.error_message or "") and "0.3" in (run.error_message or "")
    after = served(factory, setup.entry_id)
    assert (after.id, after.checksum_sm3) == (before.id, before.checksum_sm3)


def test_records_keep_every_key_and_nested_values_as_json(
    factory: sessionmaker[Session], data_dir: Path
) -> None:
    records = [
        {"id": 1, "name": "甲", "tags": ["a", "b"]},
        {"id": 2, "name": "乙", "address": {"city": "贵阳"}, "ok": True},
    ]
    setup = make_entry(factory, [("编号", "I"), ("标签", "C"), ("地址", "C"), ("有效", "L")])
    with serve(lambda _seen: Reply(body={"result": records})) as server:
        source_id = add_source(
            factory,
            setup,
            SourceKind.HTTP_API,
            {"url": server.url, "records_path": "result"},
            mapping={"编号": "id", "标签": "tags", "地址": "address", "有效": "ok"},
        )
        run = load(factory, setup, source_id)
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert rows(factory, setup.entry_id, "1") == [
        (1, '["a","b"]', None, None),
        (2, None, '{"city":"贵阳"}', True),
    ]
    assert any("name" in line["message"] for line in run.log)  # unused column reported


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({"data": {"rows": []}}, "source_bad_response", "data.list"),
        ("<html>维护中</html>", "source_bad_response", "JSON"),
        ({"data": {"list": [1, 2]}}, "source_bad_response", "第 1 条"),
        ({"data": {"list": []}}, "no_rows", "没有返回任何记录"),
    ],
)
def test_unexpected_responses_are_named(
    factory: sessionmaker[Session], data_dir: Path, body: Any, code: str, words: str
) -> None:
    setup = make_entry(factory, ITEMS)
    with serve(lambda _seen: Reply(body=body)) as server:
        source_id = add_source(
            factory, setup, SourceKind.HTTP_API, {"url": server.url, "records_path": "data.list"}
        )
        run = load(factory, setup, source_id)
    assert run.status == RunStatus.FAILED
    assert run.error_code == code
    assert words in (run.error_message or "")


def test_an_unreachable_api_is_named(factory: sessionmaker[Session], data_dir: Path) -> None:
    with serve(lambda _seen: Reply(body=[])) as server:
        url = server.url
    setup = make_entry(factory, ITEMS)
    source_id = add_source(factory, setup, SourceKind.HTTP_API, {"url": url + "/gone"})
    run = load(factory, setup, source_id)
    assert run.error_code == "source_unreachable"
    assert url in (run.error_message or "")


@pytest.mark.parametrize(
    "config",
    [
        {"url": "ftp://example/data"},
        {"url": "http://x", "paging": "pages"},
        {"url": "http://x", "paging": {"type": "cursor"}},
        {"url": "http://x", "timeout": 0},
        {"url": "http://x", "method": "DELETE"},
        {"url": "http://x", "paging": {"type": "page", "size": "10"}},
    ],
)
def test_settings_an_api_source_cannot_run_with(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed):
        validate_config(SourceKind.HTTP_API, config)
