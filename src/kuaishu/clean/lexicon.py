"""The vocabulary discovery and masking match against, read from ``lexicon.toml`` beside this file."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

LEXICON_FILE = Path(__file__).with_name("lexicon.toml")
_LATIN = re.compile(r"[A-Za-z0-9_\-]+")


@dataclass(frozen=True)
class HeaderWords:
    """Header words pointing to a kind (``headers``) and away from it (``against``)."""

    headers: tuple[str, ...]
    against: tuple[str, ...]


@cache
def lexicon() -> dict[str, Any]:
    with LEXICON_FILE.open("rb") as fh:
        return tomllib.load(fh)


def chars(name: str) -> str:
    """A character list from the lexicon, whitespace removed."""
    return "".join(str(lexicon()[name]).split())


def words(name: str) -> tuple[str, ...]:
    return tuple(str(w) for w in lexicon()[name])


def header_words(kind: str) -> HeaderWords:
    entry = lexicon()["headers"][kind]
    return HeaderWords(tuple(entry["headers"]), tuple(entry["against"]))


def context_words(subject: str) -> tuple[str, ...]:
    return tuple(lexicon()["context"][subject])


def header_has(header: str, candidates: tuple[str, ...]) -> str | None:
    """The first word of ``candidates`` found in ``header``: Chinese anywhere, Latin as a word."""
    lowered = header.lower()
    for word in candidates:
        if _LATIN.fullmatch(word):
            if re.search(rf"(?<![a-z0-9]){re.escape(word.lower())}(?![a-z0-9])", lowered):
                return word
        elif word in header:
            return word
    return None
