"""Settings from ``KUAISHU_*`` environment variables; with none set, the embedded mode."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything configurable, with embedded-mode defaults (SQLite + a local data folder)."""

    model_config = SettingsConfigDict(env_prefix="KUAISHU_", extra="ignore")

    data_dir: Path = Field(default=Path("kuaishu-data"), description="数据目录")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty = SQLite in data_dir")
    secret_key_file: Path | None = Field(
        default=None, description="master key file; default data_dir/secret.key"
    )
    site_name: str = "块数 · 政务数据共享开放平台"
    default_locale: str = "zh_CN"
    max_body_bytes: int = 1_048_576
    session_hours: int = 8
    password_min_length: int = 10
    lockout_threshold: int = Field(
        default=5, description="failed sign-ins for one name from one address before a pause"
    )
    lockout_minutes: int = Field(default=15, description="that pause, for that name and address")
    sign_in_address_limit: int = Field(
        default=20, description="failed sign-ins from one address (any names) before a pause"
    )
    sign_in_window_minutes: int = Field(
        default=15, description="the window those failures are counted in, and that pause"
    )
    api_key_default_days: int = 365
    cookie_secure: bool = Field(
        default=False, description="Secure cookies always (they are Secure over HTTPS anyway)"
    )
    trust_forwarded_proto: bool = Field(
        default=False,
        description="trust X-Forwarded-Proto from the reverse proxy in front (HTTPS detection)",
    )
    page_size_default: int = 20
    page_size_max: int = 200
    jobs: str = Field(default="thread", description="thread (in process) | queue (kuaishu worker)")
    job_threads: int = 2
    load_memory_mb: int = Field(default=640, description="DuckDB memory limit of one load")
    load_threads: int = 2
    index_memory_mb: int = Field(
        default=1024,
        description="DuckDB memory limit while a load builds its key index (in memory)",
    )
    keep_versions: int = 5
    max_columns: int = Field(
        default=2_000, ge=1, description="columns a loaded file may have; wider files are refused"
    )
    keep_inputs_hours: int = Field(
        default=0, ge=0, description="hours an uploaded input is kept after its load; 0: removed"
    )
    upload_max_bytes: int = 8 * 1024**3
    query_limit_max: int = Field(default=1000, description="rows one data-API page may return")
    serve_memory_mb: int = Field(default=1024, description="DuckDB memory limit per served version")
    objection_workdays: int = Field(default=5, description="working days to answer an objection")
    smtp_host: str = Field(
        default="", description="SMTP server for e-mail notices; empty: inbox only"
    )
    smtp_port: int = 25
    smtp_from: str = "kuaishu@localhost"
    push_timeout_seconds: float = Field(default=10.0, description="one push delivery's timeout")
    push_retry_seconds: float = Field(
        default=10.0, description="first retry of a failed delivery; doubles each time"
    )
    push_retry_max_seconds: float = Field(default=3600.0, description="longest wait between tries")
    lookup_rate_per_minute: int = Field(
        default=600,
        ge=1,
        description="key lookups per minute under a grant that sets no rate of its own "
        "(a lookup verifies a key; it must not enumerate them)",
    )
    k_anonymity: int = Field(
        default=5, ge=2, description="k below which opened data is not published (release check)"
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'kuaishu.db').resolve()}"

    @property
    def resolved_secret_key_file(self) -> Path:
        return self.secret_key_file or self.data_dir / "secret.key"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
