"""Browser fixtures: Debian's Chromium driven by Playwright against a real facecloud server on loopback.

Playwright never downloads a browser here: it drives /usr/bin/chromium (installed by .ci/run), and the browser
tests skip, saying why, where that is absent."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from facecloud.accounts import Credentials
from facecloud.billing import Billing
from facecloud.billing.catalog import CATALOG_FILE, Catalog
from facecloud.runtime import Runtime
from tests.conftest import LiveServer, _serve, test_settings

CHROMIUM = Path(os.environ.get("FACECLOUD_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Screenshots go to a temporary folder; FACECLOUD_SCREENSHOT_DIR=docs/screenshots refreshes the docs' pictures.
SCREENSHOTS = Path(os.environ.get("FACECLOUD_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="facecloud-screens-"))
OPERATOR_PASSWORD = "operator-test-password"


# The seed's prices, with a free pack of 3 calls a month and a 10-call detection pack beside the real sizes,
# so that a test crosses the free pack and a pack's 15% line with a dozen real API calls instead of a million.
FREE_CALLS = 3
SMALL_PACK = 10


def small_catalog() -> Catalog:
    data = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    data["free_calls_per_month"] = FREE_CALLS
    detect = next(s for s in data["services"] if s["id"] == "detect")
    detect["packs"] = {str(SMALL_PACK): "5", **detect["packs"]}
    return Catalog.model_validate(data)


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = test_settings(tmp_path_factory.mktemp("console-data"), operator_password=OPERATOR_PASSWORD)
    runtime = Runtime(settings)
    runtime.billing = Billing(runtime.db, settings, catalog=small_catalog())  # before anything builds the default
    yield from _serve(runtime)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _note_console_error(errors: list[str], page, message) -> None:  # type: ignore[no-untyped-def]
    if message.type == "error" and not _refusal(message.text):
        errors.append(f"{page.url}: {message.text} ({message.location.get('url')})")


def _refusal(text: str) -> bool:
    # Provoked on purpose (wrong key: 401, forged CSRF: 403, lock-out: 429); a missing asset (404) counts.
    return re.search(r"status of (401|403|429)", text) is not None


def _compact_png(path: Path) -> None:
    # The docs commit these pictures: a 64-colour palette keeps each one at a few tens of KB.
    from PIL import Image

    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


@dataclass
class ConsoleBrowser:
    """One browser context (its own cookies) on the console, with the steps the tests share."""

    page: object
    base: str

    def goto(self, path: str):  # type: ignore[no-untyped-def]
        return self.page.goto(self.base + path)

    def sign_in(self, creds: Credentials) -> None:
        self.goto("/console/signin")
        self.page.fill("input[name=secret_id]", creds.secret_id)
        self.page.fill("input[name=secret_key]", creds.secret_key)
        self.page.click("#account-form button[type=submit]")
        self.page.wait_for_url(re.compile(r".*/console/usage.*"))

    def sign_in_operator(self, password: str = OPERATOR_PASSWORD) -> None:
        self.goto("/console/signin?tab=operator")
        self.page.fill("input[name=password]", password)
        self.page.click("#operator-form button[type=submit]")
        self.page.wait_for_url(re.compile(r".*/console/operator/.*"))

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        _compact_png(path)
        return path

    def text(self, selector: str) -> str:
        return self.page.inner_text(selector)


@pytest.fixture
def open_console(browser, console_server: LiveServer) -> Iterator[Callable[[], ConsoleBrowser]]:  # type: ignore[no-untyped-def]
    """Opens browser contexts (each with its own cookies: an account and the operator side by side)."""
    contexts, errors = [], []

    def open_one(width: int = 1360, height: int = 860, locale: str | None = None) -> ConsoleBrowser:
        options = {"locale": locale} if locale else {}
        context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1, **options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: _note_console_error(errors, page, msg))
        page.on("dialog", lambda dialog: dialog.accept())
        return ConsoleBrowser(page, console_server.url)

    yield open_one
    for context in contexts:
        context.close()
    # Script errors, CSP refusals and missing assets all show up here: a page must load cleanly.
    assert not errors, errors


@pytest.fixture
def console(open_console: Callable[[], ConsoleBrowser]) -> ConsoleBrowser:
    return open_console()
