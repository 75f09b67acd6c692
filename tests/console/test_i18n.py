"""The console's languages without a browser: the choice of locale, number and date formats, and a Chinese text
for every English one the pages and handlers use."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from facecloud.console.i18n import Translator, _catalog, choose_locale

CONSOLE = Path(__file__).resolve().parents[2] / "facecloud" / "console"
# Identifiers and commands the pages show as code, the same in both languages.
AS_IS = {"ResourceUnavailable.InArrears", "AuthFailure.SecretIdNotFound", "facecloud accounts create"}


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        (None, None, "zh-CN"),
        (None, "en-US,en;q=0.9", "en-US"),
        (None, "fr-FR,en-GB;q=0.8,zh-CN;q=0.5", "en-US"),
        (None, "de-DE,zh-TW;q=0.7,en;q=0.6", "zh-CN"),
        (None, "en;q=0.2,zh-CN;q=0.9", "zh-CN"),
        (None, "fr-FR", "zh-CN"),
        ("en-US", "zh-CN", "en-US"),
        ("xx-XX", "en-US", "en-US"),
    ],
)
def test_locale_from_cookie_then_browser_then_chinese(cookie: str | None, header: str | None, expected: str) -> None:
    assert choose_locale(cookie, header) == expected


def test_numbers_money_and_dates_per_locale() -> None:
    moment = datetime(2026, 11, 30, 16, 5, tzinfo=UTC)
    chinese, english = Translator("zh-CN"), Translator("en-US")
    assert chinese.count(1234567) == english.count(1234567) == "1,234,567"
    assert english.money("91200") == "91,200.00"
    assert chinese.when(moment) == "2026年11月30日 16:05 UTC"
    assert english.when(moment).startswith("Nov 30, 2026") and "4:05" in english.when(moment)
    assert chinese.text("Group {id} created.", id="staff") == "人员库 staff 已创建。"
    assert english.text("Group {id} created.", id="staff") == "Group staff created."


def _texts_in_use() -> set[str]:
    found = set()
    for path in [*CONSOLE.rglob("*.html"), *CONSOLE.glob("*.py")]:
        for match in re.finditer(r"""\b_\(\s*(["'])(.+?)\1""", path.read_text(encoding="utf-8")):
            found.add(match.group(2))
    return found


def test_every_text_has_a_chinese_version() -> None:
    chinese = _catalog("zh-CN")
    missing = sorted(t for t in _texts_in_use() - AS_IS if t not in chinese)
    assert not missing, missing
    for english, translated in chinese.items():
        assert set(re.findall(r"\{(\w+)\}", english)) == set(re.findall(r"\{(\w+)\}", translated)), english
