"""Translation: Chinese (zh-CN) is the source language; other locales come from .po catalogs.

The .po files are compiled in memory at first use, so no binary .mo file is committed and no
build step is needed.
"""

from __future__ import annotations

import gettext
from contextvars import ContextVar
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
SUPPORTED = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"

current_locale: ContextVar[str] = ContextVar("current_locale", default=DEFAULT_LOCALE)


@lru_cache(maxsize=8)
def translations(locale: str) -> gettext.NullTranslations:
    """The gettext translations for ``locale`` (zh_CN is the identity)."""
    po_path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == DEFAULT_LOCALE or not po_path.exists():
        return gettext.NullTranslations()
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def gettext_(message: str, **params: object) -> str:
    """Translate ``message`` into the current locale, then fill ``{name}`` placeholders."""
    text = translations(current_locale.get()).gettext(message)
    return text.format(**params) if params else text


_ = gettext_


def negotiate(accept_language: str | None, cookie_locale: str | None = None) -> str:
    """Pick a supported locale: an explicit cookie wins, then Accept-Language order."""
    if cookie_locale in SUPPORTED:
        return cookie_locale
    if not accept_language:
        return DEFAULT_LOCALE
    ranked: list[tuple[float, str]] = []
    for part in accept_language.split(","):
        piece = part.strip()
        if not piece:
            continue
        tag, _sep, q = piece.partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        ranked.append((weight, tag.strip().lower()))
    for _weight, tag in sorted(ranked, key=lambda item: -item[0]):
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LOCALE
