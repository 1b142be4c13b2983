"""Sources other than an uploaded file: each kind validates its settings and stages ``raw``.

File sources read the file a run was given; database, HTTP API and web sources fetch their rows
here; push sources receive theirs with the request (:mod:`kuaishu.collect.push`), stored as the
run's input file.
"""

from __future__ import annotations

from typing import Any

import duckdb
from pydantic import ValidationError

from kuaishu.collect.connectors.database import parse_config as database_config
from kuaishu.collect.connectors.database import read_database
from kuaishu.collect.connectors.http_api import parse_config as api_config
from kuaishu.collect.connectors.http_api import read_http_api
from kuaishu.collect.connectors.previous import Previous, previous_of
from kuaishu.collect.connectors.web import check_config as web_config
from kuaishu.collect.connectors.web import read_web
from kuaishu.collect.enums import SourceKind
from kuaishu.collect.models import LoadRun, Source
from kuaishu.collect.raw import LoadError, Progress, RawTable
from kuaishu.collect.schemas import SOURCE_SETTINGS
from kuaishu.errors import PROBLEM_MESSAGES, ValidationFailed
from kuaishu.i18n import gettext_
from kuaishu.security.egress import AllowList

__all__ = ["Previous", "previous_of", "read_source", "validate_config"]


def validate_config(kind: SourceKind, config: dict[str, Any]) -> None:
    """Refuse settings a kind cannot run with, naming the setting: each kind's settings are a
    typed shape (:data:`kuaishu.collect.schemas.SOURCE_SETTINGS`), then checked further."""
    required: dict[SourceKind, tuple[str, ...]] = {
        SourceKind.FILE: (),
        SourceKind.PUSH: (),
        SourceKind.DATABASE: ("url",),
        SourceKind.HTTP_API: ("url",),
        SourceKind.WEB: ("url",),
    }
    missing = [key for key in required[kind] if not config.get(key)]
    if missing:
        raise ValidationFailed(
            "来源配置缺少：{keys}。",
            code="source_config_missing",
            details={"missing": missing},
            keys="、".join(missing),
        )
    try:
        SOURCE_SETTINGS[kind].model_validate(config)
    except ValidationError as error:
        found = error.errors(include_url=False)[0]
        key = ".".join(str(part) for part in found["loc"]) or "config"
        raise ValidationFailed(
            "来源配置项“{key}”的值无效。",
            code="source_config_invalid",
            details={
                "key": key,
                "problem": gettext_(PROBLEM_MESSAGES.get(found["type"], "取值无效")),
            },
            key=key,
        ) from None
    if kind == SourceKind.DATABASE:
        database_config(config)
    elif kind == SourceKind.HTTP_API:
        api_config(config)
    elif kind == SourceKind.WEB:
        web_config(config)


def read_source(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    run: LoadRun,
    *,
    secret: str | None,
    progress: Progress,
    previous: Previous | None = None,
    allowed: AllowList | None = None,
) -> RawTable:
    """Stage ``source``'s rows for ``run``; ``previous`` is the served version an incremental
    database load extends (see :mod:`kuaishu.collect.connectors.previous`); ``allowed`` is the
    outbound allow list a network or database source must be on (none: nothing is reached)."""
    allowed = allowed or AllowList()
    try:
        if source.kind == SourceKind.DATABASE:
            return read_database(
                con, source, secret=secret, progress=progress, previous=previous, allowed=allowed
            )
        if source.kind == SourceKind.HTTP_API:
            return read_http_api(con, source, secret=secret, progress=progress, allowed=allowed)
        if source.kind == SourceKind.WEB:
            return read_web(con, source, progress=progress, allowed=allowed)
    except ValidationFailed as error:
        # Settings stored before a check existed, or edited since: the run fails, naming them.
        params: dict[str, Any] = dict(error.params)
        raise LoadError(error.message, code=error.code, details=error.details, **params) from error
    raise LoadError(
        "“{kind}”类型的来源没有可读取的数据：请上传文件或由系统推送。",
        code="source_needs_input",
        kind=str(source.kind),
    )
