"""Masking policies: set and read an entry's rules, and resolve what each column shows in a
channel (share, open, sandbox) — the one answer every read of that channel is rendered from.

A data item marked sensitive (any level but 非敏感) and without a rule for a channel is shown
as NULL there: forgetting a rule hides data, it never leaks it. ``none`` is the explicit,
audited choice to show an item as stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar

import duckdb
from cryptography.exceptions import InvalidTag
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kuaishu.accounts.actor import Actor
from kuaishu.authz import Grant, authorize
from kuaishu.catalog.enums import SECURITY_LEVELS
from kuaishu.catalog.models import CatalogEntry, DataItem
from kuaishu.clean.discovery import Finding, discover
from kuaishu.clean.keyed import Keyed, extend_pseudonym_map, lookup_pseudonyms
from kuaishu.clean.masking import (
    ROW_KEY,
    MaskingError,
    MaskMethod,
    mask_sql,
    output_type,
    parse_params,
)
from kuaishu.clean.models import CleaningRuleSet, EntryRules, MaskingPolicy
from kuaishu.clean.rules import Compiled, check_rules, compile_rules
from kuaishu.clean.schemas import RowKeyed
from kuaishu.clean.sqltext import literal
from kuaishu.collect.raw import quote
from kuaishu.collect.services import entry_items
from kuaishu.errors import NotFound, ValidationFailed
from kuaishu.i18n import gettext_
from kuaishu.security import audit
from kuaishu.store import storage
from kuaishu.store.engine import confine
from kuaishu.store.services import current_version

Versioned = TypeVar("Versioned", bound=EntryRules)

NOT_SENSITIVE = SECURITY_LEVELS[0]  # 非敏感
SHOW = "none"  # a rule's method that shows the item as stored


class Channel(StrEnum):
    """Where data goes out: each has its own masking (脱敏渠道)."""

    SHARE = "share"  # 共享（部门间）
    OPEN = "open"  # 开放（社会公众）
    SANDBOX = "sandbox"  # 沙箱（授权运营）


CHANNEL_LABELS = {Channel.SHARE: "共享", Channel.OPEN: "开放", Channel.SANDBOX: "沙箱"}


@dataclass(frozen=True)
class Mask:
    """How one column shows in a channel."""

    method: MaskMethod
    params: Mapping[str, Any]
    source: str  # "policy" (a rule), "default" (a sensitive item without a rule), "invalid"

    def sql(self, column_sql: str, column_type: str, row_key: str | None = None) -> str:
        return mask_sql(
            self.method, column_sql, self.params, column_type=column_type, row_key=row_key
        )

    def type(self, column_type: str) -> str:
        return output_type(self.method, self.params, column_type)

    @property
    def windowed(self) -> bool:
        return self.method == MaskMethod.SHUFFLE


@dataclass(frozen=True)
class ChannelMasks:
    """The masks of one channel for one entry, and the policy version they come from."""

    channel: Channel
    policy_number: int | None
    masks: Mapping[str, Mask]


def current(session: Session, model: type[Versioned], entry_id: int) -> Versioned | None:
    """The version in force of an entry's rule set or masking policy (the newest), or None."""
    return session.scalar(
        select(model).where(model.entry_id == entry_id).order_by(model.number.desc()).limit(1)
    )


def current_policy(session: Session, entry_id: int) -> MaskingPolicy | None:
    return current(session, MaskingPolicy, entry_id)


def history(
    session: Session, model: type[Versioned], *, actor: Actor, entry: CatalogEntry
) -> list[Versioned]:
    """Every version of the entry's rule set or masking policy, newest first."""
    authorize(actor, "clean.view", entry)
    return list(
        session.scalars(
            select(model).where(model.entry_id == entry.id).order_by(model.number.desc())
        )
    )


def _add_version(
    session: Session,
    *,
    actor: Actor,
    entry: CatalogEntry,
    made: Versioned,
    action: str,
    grant: Grant,
) -> Versioned:
    """Number ``made`` after the entry's last version, keep it, and record the change."""
    model = type(made)
    last = session.scalar(select(func.max(model.number)).where(model.entry_id == entry.id))
    made.entry_id, made.number, made.created_by = entry.id, (last or 0) + 1, actor.user_id
    session.add(made)
    session.flush()
    audit.record(
        session,
        actor,
        action,
        target_type=action.removeprefix("clean.set_"),
        target_id=made.id,
        details={"code": entry.code, "number": made.number, "rules": made.rules, "note": made.note},
        as_role=grant,
    )
    return made


def set_policy(
    session: Session,
    *,
    actor: Actor,
    entry: CatalogEntry,
    rules: Sequence[Mapping[str, Any]],
    note: str = "",
    quasi_identifiers: Sequence[str] = (),
    k: int | None = None,
) -> MaskingPolicy:
    """A new version of the entry's masking policy; every rule is checked before any is kept."""
    grant = authorize(actor, "clean.manage_masking", entry)
    checked = _checked_rules(session, entry, rules, quasi_identifiers)
    made = MaskingPolicy(rules=checked, note=note, quasi_identifiers=list(quasi_identifiers), k=k)
    policy = _add_version(
        session, actor=actor, entry=entry, made=made, action="clean.set_masking", grant=grant
    )
    try:  # data served before the rule: its pseudonyms join the map now
        served = current_version(session, entry.id)
    except NotFound:
        return policy
    parquet = storage.resolve(served.path) / storage.DATA_FILE
    remember_pseudonyms(
        f"read_parquet({literal(str(parquet))})", pseudonym_items(policy), reach=[parquet]
    )
    return policy


def pseudonym_items(policy: MaskingPolicy | None) -> list[str]:
    """The items some channel of ``policy`` shows as pseudonyms."""
    if policy is None:
        return []
    return sorted({r["item"] for r in policy.rules if r["method"] == MaskMethod.PSEUDONYM})


def remember_pseudonyms(
    relation: str,
    items: Sequence[str],
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    reach: Sequence[Path] = (),
) -> int:
    """Seal each new value of ``items`` in ``relation`` into the pseudonym map, so the key
    holder can re-identify a token later; returns how many were added. Without ``con``, a
    connection of its own reads ``relation``, reaching only the files in ``reach``."""
    if not items:
        return 0
    own = con is None
    reader = duckdb.connect() if con is None else con
    if own:
        confine(reader, reach)
    try:
        union = " UNION ".join(
            f"SELECT CAST({quote(item)} AS VARCHAR) AS v FROM {relation}" for item in items
        )
        rows = reader.execute(f"SELECT v FROM ({union}) WHERE v IS NOT NULL").fetchall()
    finally:
        if own:
            reader.close()
    return extend_pseudonym_map(storage.pseudonym_map(), (str(row[0]) for row in rows))


def set_rules(
    session: Session,
    *,
    actor: Actor,
    entry: CatalogEntry,
    rules: Sequence[Mapping[str, Any]],
    note: str = "",
) -> CleaningRuleSet:
    """A new version of the entry's cleaning rules, used by every load from now on."""
    grant = authorize(actor, "clean.manage_rules", entry)
    items = {item.name: str(item.type_code) for item in entry_items(session, entry)}
    found = check_rules(rules, items, _reference_columns(session, actor, entry, rules))
    if found:
        raise ValidationFailed(
            "清洗规则有 {n} 处错误，未保存。",
            code="bad_cleaning_rules",
            details=[
                {"field": p.field, "code": p.code, "message": gettext_(p.message)} for p in found
            ],
            n=len(found),
        )
    made = CleaningRuleSet(rules=[dict(rule) for rule in rules], note=note)
    return _add_version(
        session, actor=actor, entry=entry, made=made, action="clean.set_rules", grant=grant
    )


def _reference_columns(
    session: Session, actor: Actor, entry: CatalogEntry, rules: Sequence[Mapping[str, Any]]
) -> dict[str, list[str]]:
    """For each entry a ``reference`` rule names: the columns the rule's department may check
    against — through that entry's channel (clean.references; refused with a 422 when not)."""
    from kuaishu.clean import references  # it reads through share grants, which import us

    found = references.resolve(session, actor=actor, entry=entry, rules=rules)
    return {code: reference.columns for code, reference in found.items()}


def compiled_rules(session: Session, entry_id: int) -> tuple[Compiled, int] | None:
    """The entry's cleaning rules in force, compiled for a load, and their version number. A
    reference is read as the rules' author may read it now (a revoked grant fails the load)."""
    from kuaishu.accounts.auth import actor_for
    from kuaishu.accounts.models import User
    from kuaishu.clean import references

    found = current(session, CleaningRuleSet, entry_id)
    if found is None or not found.rules:
        return None
    entry = session.get(CatalogEntry, entry_id)
    assert entry is not None
    items = {item.name: str(item.type_code) for item in entry_items(session, entry)}
    relations: dict[tuple[str, str], str] = {}
    statements: list[tuple[str, list[Any]]] = []
    files: list[Path] = []
    if references.referenced(found.rules):
        author = session.get(User, found.created_by) if found.created_by else None
        actor = (
            actor_for(author, auth_method="job")
            if author is not None and author.is_active
            else Actor(user_id=None, username="system", auth_method="job")
        )
        relations, statements, files = references.prepared(
            session, actor=actor, entry=entry, rules=found.rules, rules_number=found.number
        )
    compiled = compile_rules(found.rules, items, references=relations)
    compiled.prepare = statements
    compiled.reads = files
    return compiled, found.number


NO_PARAMS = "参数应为 JSON 对象；原样显示（none）不带参数。"
PROBLEMS = {
    "unknown_item": "没有这个信息项。",
    "unknown_channel": "渠道应为 share（共享）、open（开放）或 sandbox（沙箱）。",
    "duplicate_rule": "同一信息项在同一渠道只能有一条规则。",
    "unknown_method": "未知的脱敏方法。",
    "unknown_row_key": "row_key 应为 rowid 或本资源的信息项。",
}


def checked_overrides(
    session: Session, entry: CatalogEntry, overrides: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """A share grant's masking overrides (``{item, method, params}``), checked as a policy's
    share-channel rules are, so a wrong one is refused when granted, not at the first read."""
    rules = [{**dict(o), "channel": Channel.SHARE} for o in overrides]
    try:
        checked = _checked_rules(session, entry, rules)
    except ValidationFailed as error:
        raise ValidationFailed(
            "授权的脱敏覆盖有 {n} 处错误，未生成授权。",
            code="bad_masking_override",
            details=error.details,
            n=len(error.details or []),
        ) from error
    return [{k: v for k, v in rule.items() if k != "channel"} for rule in checked]


def _checked_rules(
    session: Session,
    entry: CatalogEntry,
    rules: Sequence[Mapping[str, Any]],
    quasi_identifiers: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The rules in their stored shape; every problem of every rule is reported at once."""
    items = {item.name for item in entry_items(session, entry)}
    problems: list[dict[str, Any]] = []
    checked: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()

    def problem(field: str, code: str, value: Any, message: str | None = None) -> None:
        text = message or gettext_(PROBLEMS[code])
        problems.append({"field": field, "code": code, "value": value, "message": text})

    for index, rule in enumerate(rules):
        item, channel = str(rule.get("item", "")), str(rule.get("channel", ""))
        method, given = str(rule.get("method", "")), rule.get("params") or {}
        params = dict(given) if isinstance(given, Mapping) else {}
        where = f"rules[{index}]"
        if item not in items:
            problem(f"{where}.item", "unknown_item", item)
        if channel not in set(Channel):
            problem(f"{where}.channel", "unknown_channel", channel)
        if (item, channel) in seen:
            problem(where, "duplicate_rule", [item, channel])
        seen.add((item, channel))
        if not isinstance(given, Mapping) or (method == SHOW and params):
            problem(f"{where}.params", MaskingError.code, given, gettext_(NO_PARAMS))
        elif method != SHOW:
            try:
                parsed = parse_params(MaskMethod(method), params)
            except ValueError:
                problem(f"{where}.method", "unknown_method", method)
            except MaskingError as error:
                problem(f"{where}.params", error.code, params, error.localized())
            else:
                # A row key is a name, checked here against the entry's items and quoted in SQL.
                if isinstance(parsed, RowKeyed) and parsed.row_key not in {ROW_KEY, *items}:
                    problem(f"{where}.params.row_key", "unknown_row_key", parsed.row_key)
        checked.append({"item": item, "channel": channel, "method": method, "params": params})
    for index, name in enumerate(quasi_identifiers):
        if name not in items:
            problem(f"quasi_identifiers[{index}]", "unknown_item", name)
    if problems:
        raise ValidationFailed(
            "脱敏策略有 {n} 处错误，未保存。",
            code="bad_masking_policy",
            details=problems,
            n=len(problems),
        )
    return checked


def masks_for(
    session: Session,
    entry: CatalogEntry,
    channel: Channel,
    *,
    overrides: Sequence[Mapping[str, Any]] = (),
    policy: MaskingPolicy | Literal["current"] | None = "current",
) -> ChannelMasks:
    """What each column of ``entry`` shows in ``channel``: the policy's rules, then a grant's
    ``overrides`` (same shape, channel implied), then NULL for sensitive items left without.
    ``policy`` is the entry's policy in force, when the caller has already read it."""
    if policy == "current":
        policy = current_policy(session, entry.id)
    rules: dict[str, Mapping[str, Any]] = {
        rule["item"]: rule
        for rule in (policy.rules if policy else [])
        if rule["channel"] == channel
    }
    rules.update({str(rule["item"]): rule for rule in overrides})
    masks: dict[str, Mask] = {}
    items = _sensitivities(session, entry)
    names = {name for name, _ in items}
    for name, sensitivity in items:
        rule = rules.get(name)
        if rule is not None:
            if rule["method"] != SHOW:
                masks[name] = _stored_mask(rule, names)
        elif sensitivity and sensitivity != NOT_SENSITIVE:
            masks[name] = Mask(MaskMethod.NULL, {}, "default")
    return ChannelMasks(channel, policy.number if policy else None, masks)


def _stored_mask(rule: Mapping[str, Any], names: set[str]) -> Mask:
    """A stored rule's mask; a rule that would not pass today's checks (kept before a check
    existed, or written around the service) shows the item as NULL: it hides, never leaks."""
    try:
        method = MaskMethod(rule["method"])
        parsed = parse_params(method, dict(rule.get("params") or {}))
    except (ValueError, TypeError, MaskingError):
        return Mask(MaskMethod.NULL, {}, "invalid")
    if isinstance(parsed, RowKeyed) and parsed.row_key not in {ROW_KEY, *names}:
        return Mask(MaskMethod.NULL, {}, "invalid")
    return Mask(method, dict(rule.get("params") or {}), "policy")


def _sensitivities(session: Session, entry: CatalogEntry) -> list[tuple[str, str]]:
    """Each data item's name and sensitivity in the revision in force: one query (every read
    under a grant asks, and loading the revision would also load its items and comments)."""
    if entry.published_revision_id is None:
        return []
    rows = session.execute(
        select(DataItem.name, DataItem.sensitivity)
        .where(DataItem.revision_id == entry.published_revision_id)
        .order_by(DataItem.position)
    )
    return [(str(name), str(sensitivity or "")) for name, sensitivity in rows]


def channel_view(session: Session, *, actor: Actor, entry: CatalogEntry) -> dict[str, Any]:
    """Per channel, what each data item shows: its mask, or None when shown as stored."""
    authorize(actor, "clean.view", entry)
    names = [item.name for item in entry_items(session, entry)]
    channels: dict[str, dict[str, dict[str, Any] | None]] = {}
    number: int | None = None
    for channel in Channel:
        found = masks_for(session, entry, channel)
        number = found.policy_number
        channels[channel] = {
            name: (
                {
                    "method": str(mask.method),
                    "params": dict(mask.params),
                    "source": mask.source,
                }
                if (mask := found.masks.get(name))
                else None
            )
            for name in names
        }
    return {"policy_number": number, "channels": channels}


def decrypt_values(
    session: Session,
    *,
    actor: Actor,
    entry: CatalogEntry,
    tokens: Sequence[str],
    purpose: str,
) -> list[str | None]:
    """The values behind SM4-encrypted or pseudonymised ``tokens`` of ``entry`` (None for a token
    that is neither); only with the key permission, every use recorded with purpose and count."""
    grant = authorize(actor, "clean.decrypt", entry)
    keyed = Keyed()
    known = lookup_pseudonyms(storage.pseudonym_map(), tokens)
    values: list[str | None] = []
    for token in tokens:
        if token in known:
            values.append(known[token])
            continue
        try:
            values.append(keyed.decrypt(token))
        except (InvalidTag, ValueError):
            values.append(None)
    audit.record(
        session,
        actor,
        "clean.decrypt",
        target_type="catalog_entry",
        target_id=entry.id,
        purpose=purpose,
        details={
            "code": entry.code,
            "tokens": len(tokens),
            "decrypted": sum(v is not None for v in values),
        },
        as_role=grant,
    )
    return values


# Sensitive-data discovery ---------------------------------------------------------------------------

DISCOVERY_CHANNELS = (Channel.SHARE, Channel.OPEN, Channel.SANDBOX)


def discover_sensitive(session: Session, *, actor: Actor, entry: CatalogEntry) -> list[Finding]:
    """Scan the served version's columns (header, sampled values, neighbours) for personal and
    other sensitive data; each finding proposes a sensitivity level and a masking method."""
    authorize(actor, "clean.view", entry)
    version = current_version(session, entry.id)
    parquet = storage.resolve(version.path) / storage.DATA_FILE
    with duckdb.connect() as con:
        confine(con, [parquet])
        return discover(
            con, f"read_parquet({literal(str(parquet))})", [c["name"] for c in version.schema]
        )


def confirm_findings(
    session: Session,
    *,
    actor: Actor,
    entry: CatalogEntry,
    columns: Sequence[str],
    note: str = "",
) -> MaskingPolicy:
    """The cataloguer confirms findings: a new masking-policy version applying each confirmed
    column's proposed method in every channel; the other rules of the policy stay as they were."""
    found = {f.column: f for f in discover_sensitive(session, actor=actor, entry=entry)}
    unknown = [c for c in columns if c not in found]
    if unknown:
        raise ValidationFailed(
            "这些字段没有发现结果，不能确认：{names}。",
            code="not_a_finding",
            details={"columns": unknown},
            names="、".join(unknown),
        )
    policy = current_policy(session, entry.id)
    confirmed = set(columns)
    rules = [dict(r) for r in (policy.rules if policy else []) if r["item"] not in confirmed]
    for column in columns:
        finding = found[column]
        method = str(finding.method) if finding.method is not None else SHOW
        rules += [
            {"item": column, "channel": str(c), "method": method, "params": dict(finding.params)}
            for c in DISCOVERY_CHANNELS
        ]
    return set_policy(
        session,
        actor=actor,
        entry=entry,
        rules=rules,
        note=note or "确认敏感数据发现结果",
        quasi_identifiers=list(policy.quasi_identifiers) if policy else [],
        k=policy.k if policy else None,
    )
