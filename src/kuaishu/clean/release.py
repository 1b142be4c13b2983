"""Release check (开放前检查): k-anonymity over the declared quasi-identifiers, as they will be
released — through the open channel's masks, so generalising an item (age → range, date → year)
is what lifts a small group above the threshold.

A group of fewer than k rows sharing the same quasi-identifier values singles people out; the
check lists the riskiest combinations (smallest first) so the department sees what to generalise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
from sqlalchemy.orm import Session

from kuaishu.catalog.enums import OpenType
from kuaishu.catalog.models import CatalogEntry
from kuaishu.clean.services import Channel, Mask, current_policy, masks_for
from kuaishu.collect.raw import quote
from kuaishu.settings import get_settings

SHOWN_GROUPS = 20


@dataclass(frozen=True)
class ReleaseCheck:
    """The outcome of a k-anonymity check of one version."""

    k: int
    quasi_identifiers: tuple[str, ...]
    smallest: int  # the smallest group's size (0: no rows)
    risky_groups: int  # groups smaller than k
    risky_rows: int  # rows in those groups
    combinations: tuple[dict[str, Any], ...]  # the smallest groups: values and "count"

    @property
    def passed(self) -> bool:
        return self.risky_groups == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "quasi_identifiers": list(self.quasi_identifiers),
            "passed": self.passed,
            "smallest": self.smallest,
            "risky_groups": self.risky_groups,
            "risky_rows": self.risky_rows,
            "combinations": list(self.combinations),
        }


def k_anonymity(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    quasi_identifiers: Sequence[str],
    types: Mapping[str, str],
    *,
    k: int,
    masks: Mapping[str, Mask] | None = None,
    row_key: str | None = None,
) -> ReleaseCheck:
    """Group ``relation`` by the released values of ``quasi_identifiers`` (``types`` gives each
    column's DuckDB type) and count the groups under ``k`` — in one pass of the engine.
    ``row_key`` identifies a row as reads do (``store.plan.row_key_sql``), so a mask drawn per
    row is checked with the values it will be released with."""
    masks = masks or {}
    shown = [
        masks[name].sql(quote(name), types[name], row_key) if name in masks else quote(name)
        for name in quasi_identifiers
    ]
    keys = ", ".join(
        f"CAST({sql} AS VARCHAR) AS {quote(name)}"
        for sql, name in zip(shown, quasi_identifiers, strict=True)
    )
    groups = f"SELECT {keys}, count(*) AS _n FROM {relation} GROUP BY ALL"
    summary = con.execute(
        f"SELECT coalesce(min(_n), 0), count(*) FILTER (_n < ?), coalesce(sum(_n) FILTER (_n < ?), 0) "
        f"FROM ({groups})",
        [k, k],
    ).fetchone()
    assert summary is not None
    names = ", ".join(quote(name) for name in quasi_identifiers)
    rows = con.execute(
        f"SELECT {names}, _n FROM ({groups}) WHERE _n < ? ORDER BY _n, {names} LIMIT {SHOWN_GROUPS}",
        [k],
    ).fetchall()
    combinations = tuple(
        {**dict(zip(quasi_identifiers, row[:-1], strict=True)), "count": int(row[-1])}
        for row in rows
    )
    return ReleaseCheck(
        k=k,
        quasi_identifiers=tuple(quasi_identifiers),
        smallest=int(summary[0]),
        risky_groups=int(summary[1]),
        risky_rows=int(summary[2]),
        combinations=combinations,
    )


def plan_release(
    session: Session, entry: CatalogEntry
) -> tuple[list[str], int, dict[str, Mask]] | None:
    """What the k-anonymity check of opened data needs: quasi-identifiers, k, the open masks."""
    if entry.open_type in (None, OpenType.NOT_OPEN):
        return None
    policy = current_policy(session, entry.id)
    if policy is None or not policy.quasi_identifiers:
        return None
    masks = masks_for(session, entry, Channel.OPEN).masks
    return list(policy.quasi_identifiers), policy.k or get_settings().k_anonymity, dict(masks)
