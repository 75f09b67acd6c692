"""Every page in zh-CN and en-US (chosen from the browser, switchable), and usable at 375, 768 and 1280 px:
navigation that collapses, tables that scroll inside their card, charts that fit. Screenshots of each page at 375
and 1280 px (FACECLOUD_SCREENSHOT_DIR=docs/screenshots refreshes the docs' copies)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from facecloud.accounts import Credentials
from tests.conftest import DATA, LiveServer, need_data
from tests.console.conftest import ConsoleBrowser

ACCOUNT_PAGES = ("usage", "packs", "bills", "quote", "groups", "groups/staff", "try", "keys", "alerts")
OPERATOR_PAGES = ("operator/accounts", "operator/topups", "operator/packs", "operator/settlement")
WIDTHS = (375, 768, 1280)


@pytest.fixture(scope="module")
def populated(console_server: LiveServer) -> Credentials:
    """An account with a group of two persons, API calls of several services, a pack and a balance."""
    need_data("verify-johns")
    creds = console_server.new_account("Layout Ltd")
    sdk = console_server.client(creds)
    sdk.call_json("CreateGroup", {"GroupId": "staff", "GroupName": "Staff"})
    for person in ("John_Salley", "John_Savage"):
        photo = sorted((DATA / "verify-johns" / "images" / person).glob("*.jpg"))[0]
        image = base64.b64encode(photo.read_bytes()).decode()
        sdk.call_json("CreatePerson", {"GroupId": "staff", "PersonId": person, "PersonName": person, "Image": image})
        sdk.call_json("DetectFace", {"Image": image})
    account_id = console_server.runtime.accounts.find(creds.secret_id).id
    billing = console_server.runtime.billing
    billing.top_up(account_id, "500")
    billing.buy_pack(account_id, "detect", 10)
    for calls in range(1, 11):  # past the free pack and most of the 10-call pack: its low-pack alert
        sdk.call_json("DetectFace", {"Image": image, "MaxFaceNum": calls})  # a new body: no replay
    current = billing.current_month()
    year, month = int(current[:4]), int(current[5:])
    billing.settle(account_id, f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}")
    return creds


def _no_page_overflow(console: ConsoleBrowser, width: int) -> None:
    scroll_width = console.page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{console.page.url} is {scroll_width} px wide at {width} px"


def _tables_inside_cards(console: ConsoleBrowser) -> None:
    overflowing = console.page.evaluate(
        """() => [...document.querySelectorAll('.card table')].filter(t => {
             const scroller = t.closest('.table-scroll') || t;
             const card = t.closest('.card').getBoundingClientRect(), box = scroller.getBoundingClientRect();
             return box.right > card.right + 1 || box.left < card.left - 1;
           }).map(t => t.id || t.className)"""
    )
    assert not overflowing, f"{console.page.url}: tables wider than their card: {overflowing}"


def _charts_fit(console: ConsoleBrowser) -> None:
    too_wide = console.page.evaluate(
        """() => [...document.querySelectorAll('canvas')].filter(c =>
             c.getBoundingClientRect().right > c.closest('.card').getBoundingClientRect().right + 1).map(c => c.id)"""
    )
    assert not too_wide, f"{console.page.url}: charts wider than their card: {too_wide}"


def _run_detect(console: ConsoleBrowser) -> None:
    photo = sorted((DATA / "verify-johns" / "images" / "John_Salley").glob("*.jpg"))[1]
    console.page.select_option("#try-action", "DetectFace")
    console.page.set_input_files("#try-image-a", str(photo))
    console.page.click("#try-run")
    expect(console.page.locator("svg.drawn rect.face-box").first).to_be_visible()


def _check_navigation(console: ConsoleBrowser, width: int) -> None:
    if width < 800:
        expect(console.page.locator("#nav")).to_be_hidden()
        console.page.click("#nav-burger")
        expect(console.page.locator("#nav")).to_be_visible()
        console.page.click("#nav-burger")
        expect(console.page.locator("#nav")).to_be_hidden()
    else:
        expect(console.page.locator("#nav")).to_be_visible()
        expect(console.page.locator("#nav-burger")).to_be_hidden()


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_the_width(
    width: int,
    populated: Credentials,
    open_console: Callable[..., ConsoleBrowser],
) -> None:
    locale = "zh-CN" if width == 375 else "en-US"  # the phone-width pictures show the Chinese pages
    console = open_console(width=width, height=800, locale=locale)
    console.goto("/console/signin")
    _no_page_overflow(console, width)
    if width in (375, 1280):
        console.screenshot(f"signin-{width}")
    console.sign_in(populated)
    for page in ACCOUNT_PAGES:
        console.goto(f"/console/{page}")
        if page == "try":
            _run_detect(console)
        console.page.wait_for_load_state("networkidle")
        _no_page_overflow(console, width)
        _tables_inside_cards(console)
        _charts_fit(console)
        if page == "usage":
            _check_navigation(console, width)
        if width in (375, 1280):
            console.screenshot(f"{page.replace('/', '-').replace('groups-staff', 'persons')}-{width}")

    operator = open_console(width=width, height=800, locale=locale)
    operator.sign_in_operator()
    for page in OPERATOR_PAGES:
        operator.goto(f"/console/{page}")
        _no_page_overflow(operator, width)
        _tables_inside_cards(operator)
        if width in (375, 1280):
            operator.screenshot(f"{page.replace('/', '-')}-{width}")


@pytest.mark.browser
def test_language_from_the_browser_and_switchable(
    populated: Credentials, console_server: LiveServer, open_console: Callable[..., ConsoleBrowser]
) -> None:
    catalog = {s.id: s for s in console_server.runtime.billing.catalog.services}
    console = open_console(locale="zh-CN")
    console.goto("/console/signin")
    assert console.page.get_attribute("html", "lang") == "zh-CN"
    assert console.text("#account-form button[type=submit]") == "登录"
    console.page.fill("input[name=secret_id]", populated.secret_id)
    console.page.fill("input[name=secret_key]", populated.secret_key)
    console.page.click("#account-form button[type=submit]")
    console.page.wait_for_url(re.compile(r".*/console/usage.*"))

    assert console.text(".topbar h1") == "用量"
    assert console.text("#usage-table tr[data-service='detect'] td:first-child") == catalog["detect"].name_zh
    console.goto("/console/groups/staff")
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", console.text("#persons tbody tr td:nth-child(6)"))
    console.goto("/console/quote")
    assert console.text("#price-list tbody tr:first-child td:first-child").strip() == catalog["detect"].name_zh

    console.page.click("#language-switch a[data-locale='en-US']")
    console.page.wait_for_url(re.compile(r".*/console/quote.*"))
    assert console.page.get_attribute("html", "lang") == "en-US"
    assert console.text(".topbar h1") == "Quote & plan"
    console.goto("/console/usage")  # the choice is kept (cookie) over the browser's zh-CN
    assert console.text(".topbar h1") == "Usage"
    assert console.text("#usage-table tr[data-service='detect'] td:first-child") == catalog["detect"].name_en
    console.goto("/console/groups/staff")
    assert re.search(r"[A-Z][a-z]{2} \d{1,2}, \d{4}", console.text("#persons tbody tr td:nth-child(6)"))

    console.page.click("#language-switch a[data-locale='zh-CN']")
    console.page.wait_for_url(re.compile(r".*/console/groups/staff.*"))
    assert console.page.get_attribute("html", "lang") == "zh-CN"
    assert "人员" in console.text(".grid")


@pytest.mark.browser
def test_english_browser_gets_english(populated: Credentials, open_console: Callable[..., ConsoleBrowser]) -> None:
    console = open_console(locale="en-GB")
    console.sign_in(populated)
    assert console.page.get_attribute("html", "lang") == "en-US"
    assert console.text(".topbar h1") == "Usage"
