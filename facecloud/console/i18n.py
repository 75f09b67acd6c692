"""The console's languages: zh-CN (the API's default) and en-US.

The language comes from the `facecloud_lang` cookie (set by the switch in the top bar), else from the browser's
Accept-Language, else zh-CN. Texts are written in English in the templates and code; locales/zh-CN.json maps them
to Chinese (a text it lacks stays English). Numbers and dates are formatted per locale by Babel."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from babel.dates import format_skeleton, format_time
from babel.numbers import format_decimal

LOCALES = ("zh-CN", "en-US")
DEFAULT_LOCALE = "zh-CN"
COOKIE = "facecloud_lang"
LANGUAGE_NAMES = {"zh-CN": "中文", "en-US": "English"}
HERE = Path(__file__).resolve().parent


def choose_locale(cookie: str | None, accept_language: str | None) -> str:
    if cookie in LOCALES:
        return str(cookie)
    for tag in _by_preference(accept_language or ""):
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en-US"
    return DEFAULT_LOCALE


def _by_preference(header: str) -> list[str]:
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag and weight > 0:
            ranked.append((-weight, position, tag.strip().lower()))
    return [tag for _, _, tag in sorted(ranked)]


@cache
def _catalog(locale: str) -> dict[str, str]:
    path = HERE / "locales" / f"{locale}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


class Translator:
    """Texts, numbers and dates in one locale."""

    def __init__(self, locale: str) -> None:
        self.locale = locale if locale in LOCALES else DEFAULT_LOCALE
        self._babel = self.locale.replace("-", "_")
        self._texts = _catalog(self.locale)

    def text(self, english: str, **values: Any) -> str:
        """The text in this locale, with {name} placeholders filled."""
        chosen = self._texts.get(english, english)
        return chosen.format(**values) if values else chosen

    def count(self, value: Any) -> str:
        return format_decimal(int(value or 0), locale=self._babel)

    def money(self, value: Any) -> str:
        amount = Decimal(str(value or 0)).quantize(Decimal("0.01"))
        return format_decimal(amount, format="#,##0.00", locale=self._babel)

    def percent(self, value: Any) -> str:
        return format_decimal(float(value or 0), format="0.0", locale=self._babel) + "%"

    def when(self, value: Any) -> str:
        """A moment as the locale writes it (2026年11月30日 16:05 / Nov 30, 2026 4:05 PM), in UTC."""
        if isinstance(value, str) and value:
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value
        if isinstance(value, datetime) and value.utcoffset() is not None:
            moment = value.astimezone(UTC)
            day = format_skeleton("yMMMd", moment, tzinfo=UTC, locale=self._babel)
            return f"{day} {format_time(moment, 'short', tzinfo=UTC, locale=self._babel)} UTC"
        return str(value or "")
