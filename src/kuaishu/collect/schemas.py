"""Request and response bodies of the collection API (sources, runs, versions)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from kuaishu.collect.enums import FINISHED, RunStatus, SourceKind
from kuaishu.i18n import gettext_
from kuaishu.schemas import Input, Output
from kuaishu.store.models import VersionState

# Config keys whose values are credentials even when a department put them in config by mistake.
SECRET_KEYS = ("password", "passwd", "token", "secret", "api_key", "apikey", "authorization")


def redact(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as shown to people: credential values and URL passwords masked."""
    shown: dict[str, Any] = {}
    for key, value in config.items():
        if any(word in key.lower() for word in SECRET_KEYS):
            shown[key] = "***"
        elif isinstance(value, str) and "://" in value and "@" in value:
            parts = urlsplit(value)
            if parts.password:
                netloc = f"{parts.username}:***@{parts.hostname}"
                netloc += f":{parts.port}" if parts.port else ""
                value = urlunsplit(parts._replace(netloc=netloc))
            shown[key] = value
        elif isinstance(value, dict):
            shown[key] = redact(value)
        else:
            shown[key] = value
    return shown


# Source settings, one typed shape per kind: unknown settings, wrong types and values out of
# bounds are refused when the source is saved. None of them is ever pasted into the platform's
# SQL: a table or column name is quoted by the source database's own identifier quoting, a query
# runs on the department's database (read-only), everything else goes into HTTP requests.

Name = Annotated[str, Field(min_length=1, max_length=200)]
Seconds = Annotated[float, Field(gt=0, le=600)]


class SourceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class FileSettings(SourceSettings):
    """An uploaded file: nothing to set."""


class PushSettings(SourceSettings):
    records_path: str = Field(default="", max_length=200, description="JSON 中记录列表的路径")


class DatabaseSettings(SourceSettings):
    url: str = Field(min_length=1, max_length=2000, description="数据库地址")
    table: Name | None = None
    query: str | None = Field(default=None, max_length=100_000, description="一条 SELECT")
    incremental_column: Name | None = None
    batch_rows: int = Field(default=10_000, ge=1, le=1_000_000)


class PagingSettings(SourceSettings):
    type: Literal["none", "page", "offset", "cursor"] = "none"
    page_param: Name = "page"
    size_param: Name = "size"
    offset_param: Name = "offset"
    limit_param: Name = "limit"
    cursor_param: Name = "cursor"
    next_path: str = Field(default="", max_length=200)
    size: int = Field(default=100, ge=1, le=100_000)
    start: int = Field(default=1, ge=0, le=1_000_000_000)


Scalar = str | int | float | bool | None


class HttpApiSettings(SourceSettings):
    url: str = Field(min_length=1, max_length=2000)
    method: Literal["GET", "POST", "get", "post"] = "GET"
    records_path: str = Field(default="", max_length=200)
    paging: Literal["none", "page", "offset", "cursor"] | PagingSettings = "none"
    headers: dict[Name, Annotated[str, Field(max_length=4000)]] = Field(
        default_factory=dict, max_length=50
    )
    params: dict[Name, Scalar] = Field(default_factory=dict, max_length=100)
    body: dict[str, Any] | None = None
    auth_header: Name | None = None
    timeout: Seconds = 30.0
    max_pages: int = Field(default=10_000, ge=1, le=1_000_000)


class WebSettings(SourceSettings):
    url: str = Field(min_length=1, max_length=2000)
    table_index: int = Field(default=0, ge=0, le=10_000)
    table_match: str = Field(default="", max_length=200)
    timeout: Seconds = 30.0


SOURCE_SETTINGS: dict[SourceKind, type[SourceSettings]] = {
    SourceKind.FILE: FileSettings,
    SourceKind.PUSH: PushSettings,
    SourceKind.DATABASE: DatabaseSettings,
    SourceKind.HTTP_API: HttpApiSettings,
    SourceKind.WEB: WebSettings,
}


class SourceIn(Input):
    kind: SourceKind = Field(description="file / database / http_api / web / push")
    name: str = Field(min_length=1, max_length=200, description="来源名称")
    config: dict[str, Any] = Field(default_factory=dict, description="来源设置（因类型而异）")
    mapping: dict[str, str] = Field(
        default_factory=dict, description="信息项名称 → 源列名；空字符串表示此来源无此项"
    )
    schedule: str | None = Field(default=None, max_length=100, description="cron（北京时间）")
    secret: str | None = Field(
        default=None, max_length=4000, description="凭据（SM4 加密保存，永不返回）"
    )


class MappingIn(Input):
    mapping: dict[str, str] = Field(description="信息项名称 → 源列名")


class ColumnsIn(Input):
    columns: list[str] = Field(min_length=1, max_length=10_000, description="源数据的列名")


class ProposalOut(Output):
    """What a load would map: proposals for every item a column plainly names."""

    items: list[str]
    columns: list[str]
    mapping: dict[str, str]
    unmapped: list[str]


class PublishIn(Input):
    reason: str = Field(min_length=1, max_length=2000, description="发布或回退的原因")
    override_release: bool = Field(
        default=False, description="k 匿名检查未通过时仍发布（仅平台运营者，原因记入审计）"
    )


class SourceOut(Output):
    id: int
    entry_id: int
    name: str
    kind: SourceKind
    config: dict[str, Any]
    mapping: dict[str, str]
    schedule: str | None
    next_run_at: datetime | None
    enabled: bool
    has_secret: bool
    created_at: datetime

    @field_serializer("config")
    def _hide_credentials(self, config: dict[str, Any]) -> dict[str, Any]:
        return redact(config)

    @classmethod
    def of(cls, source: Any) -> SourceOut:
        return cls.model_validate(
            {
                **{k: getattr(source, k) for k in cls.model_fields if k != "has_secret"},
                "has_secret": bool(source.secret),
            }
        )


class RunError(Output):
    code: str
    message: str
    details: dict[str, Any] | None


class RunOut(Output):
    """A load as a job: status, progress, counts that reconcile, log and the error if any."""

    id: int
    entry_id: int
    source_id: int | None
    status: RunStatus
    status_label: str
    finished: bool
    trigger: str
    mode: str
    input_name: str | None
    percent: int
    phase: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int
    rows_total: int | None
    cancel_requested: bool
    version_id: int | None
    error: RunError | None
    log: list[dict[str, Any]]
    quarantine_url: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, run: Any) -> RunOut:
        from kuaishu.collect.enums import LABELS

        error = (
            RunError(
                code=run.error_code, message=run.error_message or "", details=run.error_details
            )
            if run.error_code
            else None
        )
        has_quarantine = (
            run.rows_quarantined + run.rows_duplicate > 0 and run.status == RunStatus.SUCCEEDED
        )
        return cls(
            id=run.id,
            entry_id=run.entry_id,
            source_id=run.source_id,
            status=run.status,
            status_label=gettext_(LABELS[RunStatus][run.status]),
            finished=run.status in FINISHED,
            trigger=run.trigger,
            mode=run.mode or "replace",
            input_name=run.input_name,
            percent=run.percent,
            # Phases are the pipeline's Chinese words; they are in the catalog, so translate.
            phase=gettext_(run.phase) if run.phase else "",
            rows_read=run.rows_read,
            rows_loaded=run.rows_loaded,
            rows_quarantined=run.rows_quarantined,
            rows_duplicate=run.rows_duplicate,
            rows_total=run.rows_total,
            cancel_requested=run.cancel_requested,
            version_id=run.version_id,
            error=error,
            log=list(run.log or []),
            quarantine_url=(
                f"/api/v1/collect/runs/{run.id}/quarantine.csv" if has_quarantine else None
            ),
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
        )


class VersionOut(Output):
    number: int
    state: VersionState
    current: bool
    rows: int
    size: int
    sm3: str
    run_id: int | None
    created_at: datetime
    published_at: datetime | None
    columns: list[dict[str, Any]]
    lineage: dict[str, Any] = Field(
        description="由来：加载任务、来源类型、编码、字段映射、目录修订号、清洗规则版本号"
    )
    quality: dict[str, Any] | None = Field(description="质量报告（完整性、有效性、唯一性等）")

    @classmethod
    def of(cls, version: Any, current_id: int | None) -> VersionOut:
        return cls(
            number=version.number,
            state=version.state,
            current=version.id == current_id,
            rows=version.row_count,
            size=version.byte_size,
            sm3=version.checksum_sm3,
            run_id=version.run_id,
            created_at=version.created_at,
            published_at=version.published_at,
            columns=list(version.schema or []),
            lineage=dict(version.lineage or {}),
            quality=version.quality,
        )


class CollectionOut(Output):
    """An entry's data at a glance: what is served, its sources, its latest load."""

    entry_id: int
    code: str
    name: str
    department_id: int
    published: bool
    current_version: VersionOut | None
    sources: list[SourceOut]
    latest_run: RunOut | None
