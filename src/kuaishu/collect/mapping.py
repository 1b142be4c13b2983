"""Proposing which source column feeds which data item: by name, then by a normalised name."""

from __future__ import annotations

import re
import unicodedata

from kuaishu.collect.raw import LoadError

_NOISE = re.compile(r"[\s_\-（）()【】\[\]:：·.]+")


def normalise(name: str) -> str:
    """Full-width to half-width, lower case, spaces and brackets out."""
    return _NOISE.sub("", unicodedata.normalize("NFKC", name)).lower()


def propose(items: list[str], columns: list[str]) -> dict[str, str]:
    """item → column for every item a column plainly names; unmatched items are left out."""
    proposed: dict[str, str] = {}
    taken: set[str] = set()
    by_norm: dict[str, str] = {}
    for column in columns:
        by_norm.setdefault(normalise(column), column)
    for item in items:
        if item in columns and item not in taken:
            proposed[item] = item
            taken.add(item)
    for item in items:
        if item in proposed:
            continue
        found = by_norm.get(normalise(item))
        if found is not None and found not in taken:
            proposed[item] = found
            taken.add(found)
    for item in items:
        if item in proposed:
            continue
        key = normalise(item)
        candidates = [
            c
            for c in columns
            if c not in taken and key and (key in normalise(c) or normalise(c) in key)
        ]
        if len(candidates) == 1:
            proposed[item] = candidates[0]
            taken.add(candidates[0])
    return proposed


def resolve(items: list[str], columns: list[str], saved: dict[str, str]) -> dict[str, str]:
    """The mapping a load uses: the saved one where given, proposals for the rest.

    An item the saved mapping sets to "" is declared absent from this source (loaded as empty);
    an item with no column at all is an error: data is never silently nulled.
    """
    mapping = {item: column for item, column in saved.items() if item in items}
    proposals = propose([i for i in items if i not in mapping], columns)
    mapping.update(proposals)
    unmapped = [item for item in items if item not in mapping]
    if unmapped:
        raise LoadError(
            "信息项 {items} 在源数据中找不到对应的列；源数据的列为：{cols}。请在来源的字段映射中指定。",
            code="mapping_incomplete",
            details={"items": unmapped, "columns": columns},
            items="、".join(f"“{i}”" for i in unmapped),
            cols="、".join(columns[:30]),
        )
    return mapping
