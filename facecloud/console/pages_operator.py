"""The operator's pages: accounts, top-ups, pack sales, settlement runs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.responses import Response

from facecloud.billing.periods import previous_month
from facecloud.console.pages_account import MONTH, pack_view, service_names, shown_size, wallet_view
from facecloud.console.web import Ctx, Pages
from facecloud.errors import ApiError

PAGES = Pages("operator")


@PAGES.get("/operator/accounts")
def accounts(ctx: Ctx) -> Response:
    return ctx.render("operator/accounts.html", accounts=ctx.runtime.accounts.list(), created=None)


@PAGES.post("/operator/accounts")
def create_account(ctx: Ctx) -> Response:
    name = ctx.param("name")
    if not name:
        return ctx.redirect("/console/operator/accounts", "error", "An account needs a name.")
    creds = ctx.runtime.accounts.create(name)
    return ctx.render("operator/accounts.html", accounts=ctx.runtime.accounts.list(), created=creds)


@PAGES.post("/operator/accounts/{account_id:int}/status")
def set_account_status(ctx: Ctx) -> Response:
    account_id = int(ctx.request.path_params["account_id"])
    status = "disabled" if ctx.param("status") == "disabled" else "active"
    ctx.runtime.accounts.set_status(account_id, status)
    info = ctx.runtime.accounts.get(account_id)
    return ctx.redirect(
        "/console/operator/accounts",
        "info",
        ctx._("Account {app_id} is now {status}.", app_id=info.app_id, status=ctx._(status)),
    )


def account_param(ctx: Ctx) -> int:
    value = ctx.param("account_id")
    if not value.isdigit():
        raise ApiError("InvalidParameterValue", "choose an account", "请选择账号。")
    return ctx.runtime.accounts.get(int(value)).id


@PAGES.get("/operator/topups")
def topups(ctx: Ctx) -> Response:
    billing = ctx.runtime.billing
    rows = [{"account": a, "wallet": wallet_view(billing.wallet(a.id))} for a in ctx.runtime.accounts.list()]
    return ctx.render("operator/topups.html", rows=rows, accounts=[r["account"] for r in rows])


@PAGES.post("/operator/topups")
def top_up(ctx: Ctx) -> Response:
    account_id = account_param(ctx)
    wallet = ctx.runtime.billing.top_up(account_id, ctx.param("amount"), reference=ctx.param("reference"))
    app_id = ctx.runtime.accounts.get(account_id).app_id
    return ctx.redirect(
        "/console/operator/topups",
        "ok",
        ctx._(
            "Topped up AppId {app_id} by {amount} CNY: balance {balance} CNY.",
            app_id=app_id,
            amount=ctx.param("amount"),
            balance=wallet["balance"],
        ),
    )


@PAGES.get("/operator/packs")
def pack_sales(ctx: Ctx) -> Response:
    billing = ctx.runtime.billing
    names = service_names(ctx)
    accounts_list = ctx.runtime.accounts.list()
    sold: list[dict[str, Any]] = []
    for account in accounts_list:
        sold += [{**pack_view(p, names), "account": account} for p in billing.packs(account.id)]
    sold.sort(key=lambda p: str(p["purchased_at"]), reverse=True)
    revenue = sum((Decimal(str(p["price"])) for p in sold), Decimal("0.00"))
    sizes = sorted({size for s in billing.catalog.services for size in s.packs})
    return ctx.render(
        "operator/packs.html",
        packs=sold,
        revenue=revenue,
        accounts=accounts_list,
        services=billing.catalog.services,
        sizes=[(size, shown_size(ctx, size)) for size in sizes],
    )


@PAGES.post("/operator/packs")
def sell_pack(ctx: Ctx) -> Response:
    account_id = account_param(ctx)
    size = int(ctx.param("size") or 0)
    pack = ctx.runtime.billing.buy_pack(account_id, ctx.param("service"), size)
    return ctx.redirect(
        "/console/operator/packs",
        "ok",
        ctx._(
            "Sold pack #{id} ({size} of {service}, {price} CNY).",
            id=pack["id"],
            size=shown_size(ctx, size),
            service=service_names(ctx).get(str(pack["service"]), pack["service"]),
            price=pack["price"],
        ),
    )


@PAGES.get("/operator/settlement")
def settlement(ctx: Ctx) -> Response:
    billing = ctx.runtime.billing
    accounts_list = ctx.runtime.accounts.list()
    issued: list[dict[str, Any]] = []
    for account in accounts_list:
        issued += [{**bill, "account": account} for bill in billing.bills(account.id)]
    issued.sort(key=lambda b: str(b["issued_at"]), reverse=True)
    current = billing.current_month()
    return ctx.render(
        "operator/settlement.html",
        bills=issued,
        accounts=accounts_list,
        current_month=current,
        previous_month=previous_month(current),
    )


@PAGES.post("/operator/settlement/run")
def run_settlement(ctx: Ctx) -> Response:
    issued = ctx.runtime.billing.settle_due()
    return ctx.redirect(
        "/console/operator/settlement",
        "ok",
        ctx._(
            "Settlement run: {n} bill(s) issued for {month}.",
            n=len(issued),
            month=previous_month(ctx.runtime.billing.current_month()),
        ),
    )


@PAGES.post("/operator/settlement/account")
def settle_account(ctx: Ctx) -> Response:
    account_id = account_param(ctx)
    month = ctx.param("month")
    if not MONTH.match(month):
        raise ApiError(
            "InvalidParameterValue", f"not a month (YYYY-MM): {month!r}", f"不是有效的月份（YYYY-MM）：{month!r}"
        )
    bill = ctx.runtime.billing.settle(account_id, month)
    app_id = ctx.runtime.accounts.get(account_id).app_id
    return ctx.redirect(
        "/console/operator/settlement",
        "ok",
        ctx._(
            "The bill of {month} for AppId {app_id} issued: {total} CNY."
            if bill["newly_issued"]
            else "The bill of {month} for AppId {app_id} was already issued: {total} CNY.",
            month=month,
            app_id=app_id,
            total=bill["total"],
        ),
    )
