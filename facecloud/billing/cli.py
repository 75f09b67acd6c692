"""`facecloud billing ...`: quote and plan from the price list; top-ups, packs, settlement and bills for operators."""

from __future__ import annotations

from typing import Annotated

import typer

from facecloud.billing.catalog import default_catalog
from facecloud.billing.pricing import parse_pack_size, plan, quote
from facecloud.cli_common import (
    AccountRef,
    DatabaseUrl,
    DataDir,
    account_id_of,
    failing_on_errors,
    open_runtime,
    print_for_account,
    print_json,
)

billing_app = typer.Typer(no_args_is_help=True, help="Prices, packs, usage, settlement and bills.")
packs_app = typer.Typer(no_args_is_help=True, help="Prepaid packs of an account.")
bill_app = typer.Typer(no_args_is_help=True, help="Bills (invoices) of an account.")
billing_app.add_typer(packs_app, name="packs")
billing_app.add_typer(bill_app, name="bill")

Service = Annotated[
    str,
    typer.Option("--service", help="detect, landmarks, compare, verify, search, multi_search, person_mgmt or liveness"),
]
Month = Annotated[str | None, typer.Option("--month", help="YYYY-MM in the billing time zone")]


def register(app: typer.Typer) -> None:
    app.add_typer(billing_app, name="billing")


@billing_app.command("quote")
def quote_command(
    service: Service,
    calls: Annotated[int, typer.Option("--calls", help="Billable calls in one month.")],
    packs: Annotated[
        list[str] | None,
        typer.Option(
            "--packs",
            help="Pack bought for the month: 1M, 10M, 50M or 100M (repeat, or separate with commas).",
        ),
    ] = None,
) -> None:
    """The cost of one month of N calls with those packs bought (free pack -> packs -> postpaid tier)."""
    with failing_on_errors(bad_values=True):
        sizes = [parse_pack_size(p) for item in packs or [] for p in item.split(",") if p.strip()]
        print_json(quote(default_catalog(), service, calls, sizes))


@billing_app.command("plan")
def plan_command(
    service: Service,
    calls_per_year: Annotated[int, typer.Option("--calls-per-year", help="Billable calls expected in a year.")],
    shown: Annotated[int, typer.Option("--shown", help="How many of the cheapest alternatives to print.")] = 10,
) -> None:
    """The cheapest mix of packs and postpaid for a yearly volume, with the alternatives compared."""
    with failing_on_errors(bad_values=True):
        print_json(plan(default_catalog(), service, calls_per_year, shown))


@billing_app.command("topup")
def topup_command(
    account: AccountRef,
    amount: Annotated[str, typer.Option("--amount", help="CNY, e.g. 500.00")],
    reference: str = "",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add money to an account's balance (lifts arrears once it covers the debt and the freeze)."""
    print_for_account(
        account,
        data_dir,
        database_url,
        lambda runtime, account_id: runtime.billing.top_up(account_id, amount, reference),
    )


@billing_app.command("wallet")
def wallet_command(account: AccountRef, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Balance, freeze and arrears of an account."""
    print_for_account(account, data_dir, database_url, lambda runtime, account_id: runtime.billing.wallet(account_id))


@billing_app.command("usage")
def usage_command(
    account: AccountRef,
    month: Month = None,
    daily: bool = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Usage of a month per service (free / pack / postpaid), or per day with --daily."""
    runtime = open_runtime(data_dir, database_url)
    account_id = account_id_of(runtime, account)
    if daily:
        print_json(runtime.billing.usage_daily(account_id, month))
    else:
        print_json(runtime.billing.usage_summary(account_id, month))


@billing_app.command("alerts")
def alerts_command(
    account: Annotated[str | None, typer.Argument(help="AppId, SecretId or name")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The alert outbox (newest first)."""
    runtime = open_runtime(data_dir, database_url)
    print_json(runtime.billing.alerts(account_id_of(runtime, account) if account else None))


@packs_app.command("buy")
def packs_buy(
    account: AccountRef,
    service: Service,
    size: Annotated[str, typer.Option("--size", help="1M, 10M, 50M or 100M")],
    count: Annotated[int, typer.Option("--count", min=1, max=100)] = 1,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Buy prepaid packs from the account's available balance (valid one year; no refund)."""
    runtime = open_runtime(data_dir, database_url)
    account_id = account_id_of(runtime, account)
    with failing_on_errors(bad_values=True):
        calls = parse_pack_size(size)
        print_json([runtime.billing.buy_pack(account_id, service, calls) for _ in range(count)])


@packs_app.command("list")
def packs_list(account: AccountRef, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    print_for_account(account, data_dir, database_url, lambda runtime, account_id: runtime.billing.packs(account_id))


@billing_app.command("settle")
def settle_command(
    month: Month = None,
    account: Annotated[
        str | None, typer.Option("--account", help="Only this account (AppId, SecretId or name)")
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Issue the bills of a finished month (default: the previous month). Idempotent: run it as often as you like."""
    runtime = open_runtime(data_dir, database_url)
    billing = runtime.billing
    with failing_on_errors(bad_values=True):
        if account:
            bills = [billing.settle(account_id_of(runtime, account), month or billing.previous_month())]
        else:
            bills = billing.settle_month(month) if month else billing.settle_due()
    billing.webhook.deliver_pending()
    print_json(bills)


@bill_app.command("show")
def bill_show(
    account: AccountRef, month: Month = None, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """The bills of an account (one month with --month), each with one line per service."""
    print_for_account(
        account, data_dir, database_url, lambda runtime, account_id: runtime.billing.bills(account_id, month)
    )
