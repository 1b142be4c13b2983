"""Push sources at the service level: a department system's records become a run's input file."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from sqlalchemy.orm import Session, sessionmaker

from kuaishu.accounts.auth import actor_for, resolve_api_key
from kuaishu.accounts.models import User
from kuaishu.accounts.roles import Role
from kuaishu.authz import Denied
from kuaishu.collect.enums import RunStatus, SourceKind
from kuaishu.collect.jobs import InlineRunner
from kuaishu.collect.models import LoadRun, Source
from kuaishu.collect.push import push_records
from kuaishu.db import transaction
from kuaishu.errors import ValidationFailed
from kuaishu.store import storage
from tests import factories
from tests.unit.collect.sources_support import Setup, add_source, get_run, make_entry, rows

ITEMS = [("统一社会信用代码", "C"), ("企业名称", "C"), ("注册资本", "Y")]
RECORDS = [
    {"统一社会信用代码": "91520100MA6DKXXX01", "企业名称": "贵州甲公司", "注册资本": 100},
    {"统一社会信用代码": "91520100MA6DKXXX02", "企业名称": "贵州乙公司", "注册资本": 250.5},
]


def _push(
    factory: sessionmaker[Session],
    setup: Setup,
    source_id: int,
    body: bytes,
    content_type: str,
    *,
    api_key: bool = False,
) -> int:
    with transaction(factory) as session:
        user = session.get_one(User, setup.user_id)
        actor = actor_for(user)
        if api_key:  # as the route sees a department system calling with its key
            key, user = resolve_api_key(session, factories.api_key(session, user))
            actor = actor_for(user, auth_method="api_key", scopes=frozenset(key.scopes))
        run = push_records(
            session,
            actor=actor,
            source=session.get_one(Source, source_id),
            body=body,
            content_type=content_type,
        )
        return run.id


def test_pushed_json_is_stored_as_the_runs_input(
    factory: sessionmaker[Session], data_dir: Path
) -> None:
    setup = make_entry(factory, ITEMS)
    source_id = add_source(factory, setup, SourceKind.PUSH, {})
    body = orjson.dumps(RECORDS)
    run_id = _push(factory, setup, source_id, body, "application/json; charset=utf-8", api_key=True)
    run = get_run(factory, run_id)
    assert (run.status, run.trigger, run.input_name) == (RunStatus.QUEUED, "push", "push.json")
    assert run.input_path is not None
    assert storage.resolve(run.input_path).read_bytes() == body
    assert not list((data_dir / "runs").glob(".push-*"))


def test_records_under_a_path_are_taken_from_it(
    factory: sessionmaker[Session], data_dir: Path
) -> None:
    setup = make_entry(factory, ITEMS)
    source_id = add_source(factory, setup, SourceKind.PUSH, {"records_path": "data.items"})
    body = orjson.dumps({"code": 0, "data": {"items": RECORDS}})
    run = get_run(factory, _push(factory, setup, source_id, body, "application/json"))
    assert run.input_path is not None
    assert orjson.loads(storage.resolve(run.input_path).read_bytes()) == RECORDS


def test_pushed_csv_loads_end_to_end(factory: sessionmaker[Session], data_dir: Path) -> None:
    setup = make_entry(factory, ITEMS)
    source_id = add_source(factory, setup, SourceKind.PUSH, {})
    body = "统一社会信用代码,企业名称,注册资本\n91520100MA6DKXXX01,贵州甲公司,100\n".encode()
    run_id = _push(factory, setup, source_id, body, "text/csv")
    InlineRunner(factory).submit(run_id)
    run = get_run(factory, run_id)
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert run.input_name == "push.csv"
    assert [r[:2] for r in rows(factory, setup.entry_id)] == [("91520100MA6DKXXX01", "贵州甲公司")]


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"", "application/json", "push_empty"),
        (b"{not json", "application/json", "push_invalid_json"),
        (b'{"a": 1}', "application/json", "push_not_records"),
        (b"[1, 2]", "application/json", "push_not_records"),
        (b"[]", "application/json", "push_not_records"),
        (b"a,b\n1,2\n", "application/xml", "push_format_unsupported"),
    ],
)
def test_a_push_that_is_not_records_is_refused_at_once(
    factory: sessionmaker[Session], data_dir: Path, body: bytes, content_type: str, code: str
) -> None:
    setup = make_entry(factory, ITEMS)
    source_id = add_source(factory, setup, SourceKind.PUSH, {})
    with pytest.raises(ValidationFailed) as caught:
        _push(factory, setup, source_id, body, content_type)
    assert caught.value.code == code
    with transaction(factory) as session:
        assert session.query(LoadRun).filter_by(source_id=source_id).count() == 0


def test_only_push_sources_take_pushes(factory: sessionmaker[Session], data_dir: Path) -> None:
    setup = make_entry(factory, ITEMS)
    source_id = add_source(factory, setup, SourceKind.HTTP_API, {"url": "http://127.0.0.1:9/x"})
    with pytest.raises(ValidationFailed) as caught:
        _push(factory, setup, source_id, orjson.dumps(RECORDS), "application/json")
    assert caught.value.code == "source_not_push"


def test_another_departments_key_cannot_push(
    factory: sessionmaker[Session], data_dir: Path
) -> None:
    setup = make_entry(factory, ITEMS)
    source_id = add_source(factory, setup, SourceKind.PUSH, {})
    with transaction(factory) as session:
        outsider = factories.user(session, roles=[Role.CATALOGUER])
        outsider_setup = Setup(entry_id=setup.entry_id, user_id=outsider.id, actor=setup.actor)
    with pytest.raises(Denied):
        _push(factory, outsider_setup, source_id, orjson.dumps(RECORDS), "application/json")
    assert not (data_dir / "runs").exists() or not list((data_dir / "runs").iterdir())
