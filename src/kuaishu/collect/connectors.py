"""Sources other than an uploaded file: each kind validates its settings and stages ``raw``.

File sources read the file a run was given; database, HTTP API and web sources fetch their rows;
push sources receive theirs with the request.
"""

from __future__ import annotations

from typing import Any

import duckdb

from kuaishu.collect.enums import SourceKind
from kuaishu.collect.models import LoadRun, Source
from kuaishu.collect.raw import LoadError, Progress, RawTable
from kuaishu.errors import ValidationFailed


def validate_config(kind: SourceKind, config: dict[str, Any]) -> None:
    """Refuse settings a kind cannot run with, naming the setting."""
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


def read_source(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    run: LoadRun,
    *,
    secret: str | None,
    progress: Progress,
) -> RawTable:
    """Stage ``source``'s rows for ``run``."""
    raise LoadError(
        "暂不支持从“{kind}”类型的来源加载。", code="source_kind_unsupported", kind=str(source.kind)
    )
