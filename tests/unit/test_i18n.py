"""Language negotiation and translation of messages with parameters."""

from __future__ import annotations

import pytest

from kuaishu.i18n import current_locale, gettext_, negotiate


@pytest.mark.parametrize(
    ("header", "cookie", "expected"),
    [
        (None, None, "zh_CN"),
        ("en-US,en;q=0.9", None, "en"),
        ("fr-FR, en;q=0.5, zh-CN;q=0.8", None, "zh_CN"),
        ("en", "zh_CN", "zh_CN"),
        ("de", None, "zh_CN"),
        ("en;q=bogus, zh", None, "zh_CN"),
    ],
)
def test_negotiation(header: str | None, cookie: str | None, expected: str) -> None:
    assert negotiate(header, cookie) == expected


def test_untranslated_language_falls_back_to_chinese_with_params() -> None:
    token = current_locale.set("zh_CN")
    try:
        assert gettext_("每页条数不能超过 {n}。", n=200) == "每页条数不能超过 200。"
    finally:
        current_locale.reset(token)
