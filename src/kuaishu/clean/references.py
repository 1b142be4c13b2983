"""What a ``reference`` cleaning rule may read of the entry it names: a cross-entry read like any
other, through that entry's channel.

The entry's own department reads its other entries as their owner. Another department's entry
is read only under an active share grant the rule's department holds on it, exactly as that grant
shows it: its fields, its row filter, its masking — a masked column answers no question about its
stored values, so it cannot be the column checked against. This is settled when the rule is
saved (a 422 naming the problem) and again at every load, since a grant can be suspended, revoked
or narrowed meanwhile (the load then fails, saying why; a rule is never skipped). Each load's read
is an audited ``data.read`` naming the grant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuaishu.accounts.actor import Actor
from kuaishu.accounts.roles import Role
from kuaishu.authz import Denied, Grant, authorize
from kuaishu.catalog.models import CatalogEntry
from kuaishu.clean.sqltext import literal
from kuaishu.collect.raw import quote
from kuaishu.errors import AppError, NotFound, ValidationFailed
from kuaishu.share.enums import AccessMethod, GrantState
from kuaishu.share.grants import effective_state, served_by_grant
from kuaishu.share.models import ShareGrant
from kuaishu.store import storage
from kuaishu.store.plan import ReadPlan
from kuaishu.store.reads import Served, record_read
from kuaishu.store.services import current_version

# A reference check asks whether values exist — what a lookup, a query or a download may ask.
READ_METHODS = (AccessMethod.LOOKUP, AccessMethod.QUERY, AccessMethod.DOWNLOAD)
# Who may have a rule read under the department's grant: those who set its cleaning rules.
RULE_AUTHORS = (Role.CATALOGUER, Role.DATA_OFFICER)


@dataclass(frozen=True)
class Reference:
    """How one referenced entry is read: by its owner, or under a grant."""

    code: str
    target: Served

    @property
    def columns(self) -> list[str]:
        """The columns a rule may check against: shown, and shown unmasked."""
        masked = set(self.target.masking.masks) if self.target.masking else set()
        return [c.name for c in self.target.columns if c.name not in masked]


class ReferenceRefused(AppError):
    """A reference rule that may not read the entry it names (or no longer may)."""

    status = 422


def referenced(rules: Sequence[Mapping[str, Any]]) -> dict[str, set[str]]:
    """Entry code → the columns the ``reference`` rules of ``rules`` check against."""
    found: dict[str, set[str]] = {}
    for rule in rules:
        if rule.get("kind") == "reference":
            found.setdefault(str(rule.get("entry", "")), set()).add(str(rule.get("column", "")))
    return found


def resolve(
    session: Session,
    *,
    actor: Actor,
    entry: CatalogEntry,
    rules: Sequence[Mapping[str, Any]],
) -> dict[str, Reference]:
    """How each entry the rules reference is read; an entry that does not exist or serves no data
    is left out (the rule check reports it). Raises :class:`ReferenceRefused` for a read the
    rule's department may not make: no active grant, a column not granted, a masked column."""
    decided = authorize(actor, "clean.manage_rules", entry)
    wanted = referenced(rules)
    if wanted and (decided[0] != entry.department_id or decided[1] not in RULE_AUTHORS):
        # The operator may set rules, but reads departments' data under no grant of its own.
        raise Denied("clean.read_reference", entry)
    found: dict[str, Reference] = {}
    for code, columns in wanted.items():
        other = session.scalar(select(CatalogEntry).where(CatalogEntry.code == code))
        if other is None or not _serves(session, other):
            continue
        if other.department_id == entry.department_id:
            target = _as_owner(session, other, decided)
        else:
            target = _under_grant(session, actor=actor, decided=decided, entry=entry, other=other)
        reference = Reference(code, target)
        for column in sorted(columns):
            _check_column(reference, column)
        found[code] = reference
    return found


def _serves(session: Session, entry: CatalogEntry) -> bool:
    try:
        current_version(session, entry.id)
    except NotFound:
        return False
    return True


def _as_owner(session: Session, other: CatalogEntry, decided: Grant) -> Served:
    """The rule's department owns both entries: its own, unmasked view."""
    return Served(entry=other, version=current_version(session, other.id), grant=decided)


def _under_grant(
    session: Session, *, actor: Actor, decided: Grant, entry: CatalogEntry, other: CatalogEntry
) -> Served:
    """The read the rule's department may make of ``other`` under its active grant."""
    grants = session.scalars(
        select(ShareGrant)
        .where(
            ShareGrant.entry_id == other.id,
            ShareGrant.consumer_department_id == entry.department_id,
        )
        .order_by(ShareGrant.id.desc())
    ).all()
    grant = next((g for g in grants if effective_state(g) == GrantState.ACTIVE), None)
    if grant is None:
        raise ReferenceRefused(
            "清洗规则引用的资源 {entry} 属于其他部门，本部门对它没有有效的共享授权，"
            "不能用它核对。请先申请共享。",
            code="reference_not_granted",
            entry=other.code,
        )
    method = next((m for m in READ_METHODS if m in grant.methods), None)
    if method is None:
        raise ReferenceRefused(
            "对资源 {entry} 的共享授权 #{grant} 不含查询、联机查询或下载方式，不能用它核对。",
            code="reference_not_granted",
            entry=other.code,
            grant=grant.id,
        )
    return replace(
        served_by_grant(session, actor=actor, grant=grant, method=method, reader=decided),
        grant=decided,
    )


def _check_column(reference: Reference, column: str) -> None:
    target = reference.target
    shown = {c.name for c in target.columns}
    if column not in shown and target.share_grant is not None:
        raise ReferenceRefused(
            "共享授权 #{grant} 不含资源 {entry} 的字段“{column}”，不能用它核对。",
            code="reference_field_not_granted",
            grant=target.share_grant,
            entry=reference.code,
            column=column,
        )
    if column in shown and column not in reference.columns:
        raise ReferenceRefused(
            "资源 {entry} 的字段“{column}”在共享授权 #{grant} 下是脱敏的，"
            "脱敏字段不能用于核对（否则可以据此推知原值）。",
            code="reference_masked",
            grant=target.share_grant,
            entry=reference.code,
            column=column,
        )


def prepared(
    session: Session,
    *,
    actor: Actor,
    entry: CatalogEntry,
    rules: Sequence[Mapping[str, Any]],
    rules_number: int,
) -> tuple[dict[tuple[str, str], str], list[tuple[str, list[Any]]], list[Path]]:
    """For a load: each referenced entry's relation of allowed values (``v``), the statements
    (with bound parameters) that make them on the load's connection, and the files those read
    (the only ones the load's connection may reach besides its own). Each read is audited."""
    try:
        found = resolve(session, actor=actor, entry=entry, rules=rules)
    except (ReferenceRefused, Denied) as error:
        raise AppError(
            "清洗规则第 {number} 版引用其他资源的核对不能执行：{why}加载未进行。",
            code="reference_refused",
            status=409,
            number=rules_number,
            why=error.localized(),
        ) from error
    relations: dict[tuple[str, str], str] = {}
    statements: list[tuple[str, list[Any]]] = []
    files: list[Path] = []
    for index, (code, columns) in enumerate(sorted(referenced(rules).items())):
        reference = found.get(code)
        if reference is None:
            raise ValidationFailed(
                "清洗规则引用的资源 {entry} 尚无已发布的数据，无法核对。",
                code="reference_unavailable",
                entry=code,
            )
        target = reference.target
        bound = target.scoped(ReadPlan(outputs=())).where
        file = storage.resolve(target.version.path) / storage.DATA_FILE
        files.append(file)
        data = literal(str(file))
        for number, column in enumerate(sorted(columns)):
            if column not in reference.columns:  # the entry's items changed since the rule
                raise ValidationFailed(
                    "清洗规则引用的资源 {entry} 已没有字段“{column}”，无法核对。",
                    code="reference_unavailable",
                    entry=code,
                    column=column,
                )
            name = f"ks_reference_{index}_{number}"
            relations[code, column] = name
            ref = f"data.{quote(column)}"
            inside = " AND ".join([f"{ref} IS NOT NULL", *(f"({c.sql})" for c in bound)])
            statements.append(
                (
                    f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT DISTINCT CAST({ref} AS "
                    f"VARCHAR) AS v FROM read_parquet({data}) AS data WHERE {inside}",
                    [p for c in bound for p in c.params],
                )
            )
        record_read(
            session,
            actor,
            "data.read",
            target,
            None,
            {
                "for": "cleaning_reference",
                "by_entry": entry.code,
                "rules": rules_number,
                "fields": sorted(columns),
            },
        )
    return relations, statements, files
