"""Versions: publish (one atomic pointer swap), roll back, keep the last N, find what is served."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from kuaishu.accounts.actor import Actor
from kuaishu.authz import authorize
from kuaishu.catalog.enums import OpenType
from kuaishu.catalog.models import CatalogEntry
from kuaishu.db import utcnow
from kuaishu.errors import Conflict, NotFound
from kuaishu.security import audit
from kuaishu.settings import get_settings
from kuaishu.store import changes
from kuaishu.store.models import Dataset, DatasetVersion, VersionState

LEASE = timedelta(seconds=60)


def dataset_for(session: Session, entry_id: int) -> Dataset:
    """The entry's dataset row, created on first use."""
    dataset = session.get(Dataset, entry_id)
    if dataset is None:
        keep = get_settings().keep_versions
        dataset = Dataset(entry_id=entry_id, keep_versions=keep, last_number=0)
        session.add(dataset)
        session.flush()
    return dataset


def acquire_lease(session: Session, entry_id: int, run_id: int) -> bool:
    """Take the entry's load lease for ``run_id`` unless a live load holds it."""
    dataset_for(session, entry_id)
    now = utcnow()
    result = session.execute(
        update(Dataset)
        .where(
            Dataset.entry_id == entry_id,
            or_(
                Dataset.loading_run_id.is_(None),
                Dataset.loading_run_id == run_id,
                Dataset.lease_until < now,
            ),
        )
        .values(loading_run_id=run_id, lease_until=now + LEASE)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def renew_lease(session: Session, entry_id: int, run_id: int) -> None:
    session.execute(
        update(Dataset)
        .where(Dataset.entry_id == entry_id, Dataset.loading_run_id == run_id)
        .values(lease_until=utcnow() + LEASE)
        .execution_options(synchronize_session=False)
    )


def release_lease(session: Session, entry_id: int, run_id: int) -> None:
    session.execute(
        update(Dataset)
        .where(Dataset.entry_id == entry_id, Dataset.loading_run_id == run_id)
        .values(loading_run_id=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )


def current_version(session: Session, entry_id: int) -> DatasetVersion:
    """The version being served for ``entry_id``."""
    version = session.scalar(
        select(DatasetVersion)
        .join(Dataset, Dataset.current_version_id == DatasetVersion.id)
        .where(Dataset.entry_id == entry_id)
    )
    if version is None:
        raise no_data()
    return version


def entry_and_version(
    session: Session, *, entry_id: int | None = None, code: str | None = None
) -> tuple[CatalogEntry, DatasetVersion | None]:
    """An entry (by id or code) and the version it serves (None: no data yet), in one query —
    every read asks. The caller authorizes before saying there is no data."""
    stmt = (
        select(CatalogEntry, DatasetVersion)
        .join(Dataset, Dataset.entry_id == CatalogEntry.id)
        .join(DatasetVersion, DatasetVersion.id == Dataset.current_version_id)
    )
    stmt = (
        stmt.where(CatalogEntry.id == entry_id)
        if code is None
        else stmt.where(CatalogEntry.code == code)
    )
    found = session.execute(stmt).first()
    if found is not None:
        return found[0], found[1]
    entry = session.scalar(
        select(CatalogEntry).where(
            CatalogEntry.id == entry_id if code is None else CatalogEntry.code == code
        )
    )
    if entry is None:
        raise NotFound("目录条目不存在。", code="entry_not_found")
    return entry, None


def no_data() -> NotFound:
    return NotFound("该资源尚无已发布的数据。", code="no_data")


def versions_of(session: Session, entry_id: int) -> Sequence[DatasetVersion]:
    return session.scalars(
        select(DatasetVersion)
        .where(DatasetVersion.entry_id == entry_id)
        .order_by(DatasetVersion.number.desc())
    ).all()


def get_version(session: Session, entry_id: int, number: int) -> DatasetVersion:
    version = session.scalar(
        select(DatasetVersion).where(
            DatasetVersion.entry_id == entry_id, DatasetVersion.number == number
        )
    )
    if version is None:
        raise NotFound("数据版本 {n} 不存在。", code="version_not_found", n=number)
    return version


def make_current(session: Session, version: DatasetVersion) -> None:
    """Serve ``version`` from now on: one UPDATE, in the caller's transaction."""
    dataset = dataset_for(session, version.entry_id)
    if version.state == VersionState.RETIRED:
        raise Conflict(
            "数据版本 {n} 的文件已清理，不能再发布。", code="version_retired", n=version.number
        )
    version.state = VersionState.PUBLISHED
    version.published_at = version.published_at or utcnow()
    previous = dataset.current_version_id
    dataset.current_version_id = version.id
    changes.record_step(session, version.entry_id, previous, version)


def publish_version(
    session: Session,
    *,
    actor: Actor,
    entry: CatalogEntry,
    number: int,
    reason: str = "",
    override_release: bool = False,
) -> DatasetVersion:
    """Publish version ``number`` of ``entry`` — a new one, or an earlier one (roll back).

    A version of opened data that failed its k-anonymity check is published only by the
    platform operator overriding it, with ``reason`` (recorded with the risky combinations)."""
    grant = authorize(actor, "store.publish", entry)
    version = get_version(session, entry.id, number)
    release = (version.quality or {}).get("release")
    if release and not release.get("passed") and entry.open_type != OpenType.NOT_OPEN:
        if not override_release:
            raise Conflict(
                "第 {n} 版未通过 k 匿名检查（最小组 {smallest} 行，k = {k}），不能发布；"
                "请泛化准标识符后重新加载，或由平台运营者说明理由后强制发布。",
                code="release_check_failed",
                details=release,
                n=number,
                smallest=release.get("smallest"),
                k=release.get("k"),
            )
        override = authorize(actor, "clean.override_release", entry)
        audit.record(
            session,
            actor,
            "store.publish_override",
            target_type="dataset_version",
            target_id=version.id,
            details={"code": entry.code, "number": number, "reason": reason, **release},
            as_role=override,
        )
    dataset = dataset_for(session, entry.id)
    previous = dataset.current_version_id
    make_current(session, version)
    audit.record(
        session,
        actor,
        "store.publish",
        target_type="dataset_version",
        target_id=version.id,
        details={"code": entry.code, "number": number, "previous": previous, "reason": reason},
        as_role=grant,
    )
    return version


def retire_old(session: Session, entry_id: int) -> list[str]:
    """Mark versions beyond the newest ``keep_versions`` retired (never the current one).

    Returns their folders, for the caller to delete once the transaction has committed. The
    change feed's steps that read them are worked out first, so no change is lost with them.
    """
    dataset = dataset_for(session, entry_id)
    live = [v for v in versions_of(session, entry_id) if v.state != VersionState.RETIRED]
    going = [v for v in live[max(dataset.keep_versions, 1) :] if v.id != dataset.current_version_id]
    changes.materialize_touching(session, {v.id for v in going})
    for version in going:
        version.state = VersionState.RETIRED
    return [v.path for v in going]


def referenced_paths(session: Session, entry_id: int) -> set[str]:
    return {v.path for v in versions_of(session, entry_id) if v.state != VersionState.RETIRED}
