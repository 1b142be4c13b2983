"""Datasets and their immutable versions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kuaishu.db import Base, str_enum, utcnow


class VersionState(StrEnum):
    """A version is written, then published (one atomic pointer swap), then maybe retired."""

    READY = "ready"  # 已生成（未发布）
    PUBLISHED = "published"  # 已发布（现行或历史）
    RETIRED = "retired"  # 已清理（文件已删除）


class Dataset(Base):
    """The data of one catalog entry: which version is served, and who is loading it now."""

    __tablename__ = "datasets"
    __table_args__ = {"comment": "资源池数据集 — one per catalog entry that holds data"}

    entry_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_entries.id", ondelete="RESTRICT"), primary_key=True, comment="目录条目"
    )
    current_version_id: Mapped[int | None] = mapped_column(comment="version being served")
    keep_versions: Mapped[int] = mapped_column(default=5, comment="versions kept on disk")
    loading_run_id: Mapped[int | None] = mapped_column(comment="the load holding the lease")
    lease_until: Mapped[datetime | None] = mapped_column(comment="lease expiry (UTC)")
    last_number: Mapped[int] = mapped_column(default=0, comment="last version number given")


class DatasetVersion(Base):
    """An immutable snapshot: Parquet file, schema, row count and SM3 checksum."""

    __tablename__ = "dataset_versions"
    __table_args__ = (
        UniqueConstraint("entry_id", "number"),
        {"comment": "数据版本 — never changed once written"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_entries.id", ondelete="RESTRICT"), index=True, comment="目录条目"
    )
    number: Mapped[int] = mapped_column(comment="1, 2, … within the entry")
    state: Mapped[VersionState] = mapped_column(str_enum(VersionState, 16), comment="state")
    path: Mapped[str] = mapped_column(String(400), comment="folder, relative to the data dir")
    schema: Mapped[list[dict[str, Any]]] = mapped_column(JSON, comment="columns: name, type, item")
    key_columns: Mapped[list[str]] = mapped_column(JSON, default=list, comment="indexed keys")
    row_count: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    byte_size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    checksum_sm3: Mapped[str] = mapped_column(String(64), comment="SM3 of data.parquet")
    run_id: Mapped[int | None] = mapped_column(comment="the load that made it")
    revision_id: Mapped[int | None] = mapped_column(comment="catalog revision it conforms to")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, comment="(UTC)")
    published_at: Mapped[datetime | None] = mapped_column(comment="(UTC)")
    lineage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, comment="how it was made")
    quality: Mapped[dict[str, Any] | None] = mapped_column(JSON, comment="quality report")


class DatasetChange(Base):
    """One step of an entry's change feed: the served version moved from one version to another
    (a new load, or a roll back). Its changes — rows added, changed, removed, by key — are worked
    out from the two versions when first asked for, and before either version's files go."""

    __tablename__ = "dataset_changes"
    __table_args__ = (
        UniqueConstraint("entry_id", "position"),
        {"comment": "变更记录 — the served version's moves, in order"},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_entries.id", ondelete="RESTRICT"), index=True, comment="目录条目"
    )
    position: Mapped[int] = mapped_column(comment="1, 2, … within the entry")
    from_version_id: Mapped[int | None] = mapped_column(comment="served before (NULL: nothing)")
    to_version_id: Mapped[int] = mapped_column(comment="served after")
    to_number: Mapped[int] = mapped_column(comment="the version number served after")
    made_at: Mapped[datetime] = mapped_column(default=utcnow, comment="(UTC)")
    path: Mapped[str | None] = mapped_column(
        String(400), comment="changes file, relative to the data dir (NULL: not worked out yet)"
    )
    added: Mapped[int | None] = mapped_column(comment="rows added")
    changed: Mapped[int | None] = mapped_column(comment="rows changed")
    removed: Mapped[int | None] = mapped_column(comment="rows removed")
