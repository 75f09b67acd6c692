"""Usage, packs, alerts, bills and the quote in a real browser, after real API calls with the official SDK."""

from __future__ import annotations

import base64
import itertools
import re
import uuid
from datetime import datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from tests.conftest import DATA, LiveServer, need_data
from tests.console.conftest import FREE_CALLS, SMALL_PACK, ConsoleBrowser

_distinct = itertools.count()


@cache
def face_image() -> str:
    need_data("verify-johns")
    path = sorted((DATA / "verify-johns" / "images").rglob("*.jpg"))[0]
    return base64.b64encode(path.read_bytes()).decode()


def detect_faces(server: LiveServer, creds, calls: int) -> None:  # type: ignore[no-untyped-def]
    client = server.client(creds)
    for _ in range(calls):
        # Distinct bodies: two identical requests signed within the same second would be refused as a replay.
        client.call_json("DetectFace", {"Image": face_image(), "MaxFaceNum": next(_distinct) % 120 + 1})


def account_id(server: LiveServer, creds) -> int:  # type: ignore[no-untyped-def]
    return server.runtime.accounts.find(creds.secret_id).id


def cell(console: ConsoleBrowser, selector: str) -> int:
    return int(console.text(selector).replace(",", "").strip())


def test_usage_after_real_api_calls(console: ConsoleBrowser, console_server: LiveServer) -> None:
    creds = console_server.new_account("usage")
    detect_faces(console_server, creds, 5)
    console.sign_in(creds)
    assert cell(console, "#total-calls") == 5
    row = "#usage-table tr[data-service=detect]"
    numbers = [c.replace(",", "") for c in console.page.locator(f"{row} td.num").all_inner_texts()]
    assert numbers[:4] == ["5", str(FREE_CALLS), "0", str(5 - FREE_CALLS)]  # calls, free, pack, postpaid
    # Both charts were drawn by Chart.js from the page's data.
    console.page.wait_for_selector("#canvas-daily[data-drawn='1']")
    console.page.wait_for_selector("#canvas-monthly[data-drawn='1']")


def test_buy_a_pack_and_see_the_15_percent_alert(open_console, console_server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    creds = console_server.new_account("packs")
    operator, customer = open_console(), open_console()
    operator.sign_in_operator()
    operator.goto("/console/operator/topups")
    operator.page.select_option("#topup-form select[name=account_id]", str(account_id(console_server, creds)))
    operator.page.fill("#topup-form input[name=amount]", "100")
    operator.page.fill("#topup-form input[name=reference]", "bank transfer 42")
    operator.page.click("#topup-form button[type=submit]")
    assert "balance 100.00 CNY" in operator.text(".notice-ok")

    customer.sign_in(creds)
    customer.goto("/console/packs")
    customer.page.select_option("#buy-service", "detect")
    customer.page.select_option("#buy-size", str(SMALL_PACK))
    customer.page.click("#buy-form button[type=submit]")
    assert "Bought pack" in customer.text(".notice-ok")
    assert customer.text("#balance").strip() == "95.00"
    assert cell(customer, "#packs td.remaining") == SMALL_PACK

    # The free pack first, then the pack down to 2 of 10 calls left (20%): no alert yet.
    detect_faces(console_server, creds, FREE_CALLS + SMALL_PACK - 2)
    customer.goto("/console/packs")
    assert cell(customer, "#packs td.remaining") == 2
    assert customer.page.locator(".pack-alert").count() == 0
    # One more call: 1 left (10%), below 15%.
    detect_faces(console_server, creds, 1)
    customer.goto("/console/packs")
    assert cell(customer, "#packs td.remaining") == 1
    assert "below 15%" in customer.text(".pack-alert")
    customer.goto("/console/alerts")
    assert "pack low" in customer.text("#alerts")

    operator.goto("/console/operator/packs")
    assert creds.secret_id not in operator.text("#sold-packs")  # the operator sees AppIds, never keys
    assert str(creds.app_id) in operator.text("#sold-packs")


def test_bill_after_settlement(open_console, console_server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    creds = console_server.new_account("bills")
    billing = console_server.runtime.billing
    # A bill is issued only for a finished month: these calls are metered (through the gateway's own metering
    # entry point) at a moment of the previous month in the billing time zone.
    zone = ZoneInfo(console_server.runtime.settings.billing_timezone)
    last_month_day = datetime.now(zone).replace(day=1, hour=12) - timedelta(days=2)
    month = last_month_day.strftime("%Y-%m")
    for _ in range(120):
        billing.record_call(
            account_id(console_server, creds), "compare", "CompareFace", str(uuid.uuid4()), at=last_month_day
        )
    operator, customer = open_console(), open_console()
    operator.sign_in_operator()
    operator.goto("/console/operator/settlement")
    operator.page.select_option("#settle-account-form select[name=account_id]", str(account_id(console_server, creds)))
    operator.page.fill("#settle-account-form input[name=month]", month)
    operator.page.click("#settle-account-form button[type=submit]")
    assert f"The bill of {month} for AppId {creds.app_id} issued: 0.37 CNY" in operator.text(".notice-ok")

    customer.sign_in(creds)
    customer.goto("/console/bills")
    bill = customer.page.locator(f".bill[data-month='{month}']")
    # (120 - 3 free) x 0.003 CNY = 0.351 -> 0.35; the balance (0) cannot pay it: arrears.
    assert bill.locator(".bill-total").inner_text().strip() == "0.37"
    assert customer.text("#balance").strip() == "-0.37"
    assert "in arrears" in customer.text("#arrears")
    # A top-up that covers the debt and the freeze (120% of the bill: 0.44) lifts the arrears.
    operator.goto("/console/operator/topups")
    operator.page.select_option("#topup-form select[name=account_id]", str(account_id(console_server, creds)))
    operator.page.fill("#topup-form input[name=amount]", "10")
    operator.page.click("#topup-form button[type=submit]")
    customer.goto("/console/bills")
    assert customer.page.locator("#arrears").count() == 0
    assert customer.text("#balance").strip() == "9.63"
    assert customer.text("#frozen").strip() == "0.44"


def test_quote_and_plan(console: ConsoleBrowser, console_server: LiveServer) -> None:
    console.sign_in(console_server.new_account("quote"))
    console.goto("/console/quote")
    console.page.select_option("#quote-form select[name=service]", "compare")
    console.page.fill("#quote-form input[name=calls]", "3,500,000")
    console.page.click("#quote-form button[type=submit]")
    # The seed's example, but with this server's free pack of 3 calls: (3,500,000 - 3) x 0.003.
    assert console.text("#quote-total").strip() == "10,499.99"
    console.page.select_option("#plan-form select[name=plan_service]", "compare")
    console.page.fill("#plan-form input[name=calls_per_year]", "30M")
    console.page.click("#plan-form button[type=submit]")
    assert console.text("#plan-total").strip() == "91,200.00 CNY"  # the seed: 3 x 10M compare packs
    assert re.search(r"3 × 10,000,000", console.text("#plan-result"))


def test_operator_creates_an_account(console: ConsoleBrowser) -> None:
    console.sign_in_operator()
    console.page.fill("input[name=name]", "Example Co")
    console.page.click("#accounts ~ * button, form.inline button.btn-primary")
    assert "Account created" in console.text("#created-account")
    assert "Example Co" in console.text("#accounts")
