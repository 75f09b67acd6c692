"""Pages of an account: usage, packs, bills, quote and plan, API keys, alerts (figures: runtime.billing)."""

from __future__ import annotations

import calendar
import re
from decimal import Decimal
from typing import Any

from starlette.responses import Response

from facecloud.console.web import Ctx, Pages
from facecloud.errors import ApiError

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
SPLIT = (
    ("free_calls", "free", "Free pack"),
    ("pack_calls", "pack", "Prepaid packs"),
    ("postpaid_calls", "postpaid", "Postpaid"),
)

PAGES = Pages("account")
CHART_MONTHS = 12


def service_names(ctx: Ctx) -> dict[str, str]:
    # The price list's own Chinese names in zh-CN.
    chinese = ctx.locale == "zh-CN"
    return {s.id: s.name_zh if chinese else s.name_en for s in ctx.runtime.billing.catalog.services}


def wallet_view(wallet: dict[str, Any]) -> dict[str, Any]:
    money = ("balance", "frozen", "available", "freeze_target")
    return {**wallet, **{k: Decimal(str(wallet[k])) for k in money}}


def month_param(ctx: Ctx) -> str:
    month = ctx.param("month") or ctx.runtime.billing.current_month()
    if not MONTH.match(month):
        raise ApiError(
            "InvalidParameterValue", f"not a month (YYYY-MM): {month!r}", f"不是有效的月份（YYYY-MM）：{month!r}"
        )
    return month


def months_back(month: str, count: int) -> list[str]:
    year, number = int(month[:4]), int(month[5:])
    index = year * 12 + number - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1)]


@PAGES.get("/usage")
def usage(ctx: Ctx) -> Response:
    account, billing = ctx.account, ctx.runtime.billing
    month = month_param(ctx)
    names = service_names(ctx)
    summary = billing.usage_summary(account.id, month)
    months = months_back(month, CHART_MONTHS)
    monthly = billing.usage_monthly(account.id, first=months[0], last=months[-1])
    rows = [
        {**row, "name": names.get(str(row["service"]), row["service"]), "amount": row["postpaid_amount"]}
        for row in summary["services"]
    ]
    return ctx.render(
        "usage.html",
        month=month,
        this_month=billing.current_month(),
        timezone=billing.zone.key,
        totals={**summary["totals"], "amount": summary["postpaid_amount"]},
        rows=rows,
        daily_chart=daily_chart(month, billing.usage_daily(account.id, month), names),
        split_chart=_translated(ctx, split_chart(rows)),
        monthly_chart=_translated(ctx, monthly_chart(months, monthly)),
    )


def _translated(ctx: Ctx, chart: dict[str, Any]) -> dict[str, Any]:
    return {**chart, "datasets": [{**d, "label": ctx._(d["label"])} for d in chart["datasets"]]}


def daily_chart(month: str, days: list[dict[str, Any]], names: dict[str, str]) -> dict[str, Any]:
    length = calendar.monthrange(int(month[:4]), int(month[5:]))[1]
    labels = [f"{month}-{d:02d}" for d in range(1, length + 1)]
    series: dict[str, list[int]] = {}
    for row in days:
        data = series.setdefault(str(row["service"]), [0] * length)
        data[int(str(row["day"])[8:10]) - 1] += int(row["calls"])
    datasets = [{"label": names.get(s, s), "key": s, "data": data} for s, data in sorted(series.items())]
    return {"type": "bar", "stacked": True, "labels": [label[5:] for label in labels], "datasets": datasets}


def split_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    datasets = [
        {"label": label, "key": key, "data": [int(row[counter]) for row in rows]} for counter, key, label in SPLIT
    ]
    return {
        "type": "bar",
        "stacked": True,
        "horizontal": True,
        "labels": [row["name"] for row in rows],
        "datasets": datasets,
    }


def monthly_chart(months: list[str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    index = {m: i for i, m in enumerate(months)}
    datasets = []
    for counter, key, label in SPLIT:
        data = [0] * len(months)
        for row in rows:
            if row["month"] in index:
                data[index[str(row["month"])]] += int(row[counter])
        datasets.append({"label": label, "key": key, "data": data})
    return {"type": "bar", "stacked": True, "labels": months, "datasets": datasets}


@PAGES.get("/packs")
def packs(ctx: Ctx) -> Response:
    account, billing = ctx.account, ctx.runtime.billing
    names = service_names(ctx)
    alerts = [a for a in billing.alerts(account.id, limit=20) if a["kind"] in ("pack_low", "pack_exhausted")]
    sizes = sorted({size for s in billing.catalog.services for size in s.packs})
    return ctx.render(
        "packs.html",
        packs=[pack_view(p, names) for p in billing.packs(account.id)],
        alerts=alerts[:5],
        wallet=wallet_view(billing.wallet(account.id)),
        services=billing.catalog.services,
        sizes=[(size, shown_size(ctx, size)) for size in sizes],
    )


def pack_view(pack: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    left = 100.0 * int(pack["remaining"]) / int(pack["size"])
    level = "bad" if left == 0 else "warn" if left < 15 else ""
    pill = {"active": "warn" if level else "ok", "exhausted": "bad", "expired": "off"}.get(str(pack["status"]), "")
    status = "low" if pack["status"] == "active" and level else pack["status"]
    return {
        **pack,
        "service_name": names.get(str(pack["service"]), pack["service"]),
        "percent_left": left,
        "level": level,
        "status": status,
        "status_pill": pill,
    }


def shown_size(ctx: Ctx, size: int) -> str:
    """A pack size as the page's language writes it: 1M calls / 100万次."""
    if ctx.locale != "zh-CN":
        return size_label(size)
    return f"{size // 10_000:,}万次" if size % 10_000 == 0 else f"{size:,}次"


def size_label(size: int) -> str:
    if size % 1_000_000 == 0:
        return f"{size // 1_000_000}M calls"
    return f"{size:,} calls"


@PAGES.post("/packs/buy")
def buy_pack(ctx: Ctx) -> Response:
    account = ctx.account
    try:
        size = int(ctx.param("size"))
    except ValueError:
        raise ApiError("InvalidParameterValue", "choose a pack size", "请选择资源包规格。") from None
    pack = ctx.runtime.billing.buy_pack(account.id, ctx.param("service"), size)
    message = ctx._(
        "Bought pack #{id}: {size} of {service} for {price} CNY.",
        id=pack["id"],
        size=shown_size(ctx, size),
        service=service_names(ctx).get(ctx.param("service"), ctx.param("service")),
        price=pack["price"],
    )
    return ctx.redirect("/console/packs", "ok", message)


@PAGES.get("/bills")
def bills(ctx: Ctx) -> Response:
    account, billing = ctx.account, ctx.runtime.billing
    names = service_names(ctx)
    views = []
    for bill in reversed(billing.bills(account.id)):
        lines = [{**line, "name": names.get(str(line["service"]), line["service"])} for line in bill["lines"]]
        views.append({**bill, "lines": lines, "freeze_target": bill["freeze"]})
    return ctx.render("bills.html", bills=views, wallet=wallet_view(billing.wallet(account.id)))


@PAGES.get("/alerts")
def alerts(ctx: Ctx) -> Response:
    account = ctx.account
    names = service_names(ctx)
    webhook = bool(ctx.console.settings.webhook_url)
    rows = [
        {**a, "service_name": names.get(str(a["service"]), a["service"] or "—"), "webhook": webhook}
        for a in ctx.runtime.billing.alerts(account.id)
    ]
    return ctx.render("alerts.html", alerts=rows, webhook=webhook)


@PAGES.get("/quote")
def quote(ctx: Ctx) -> Response:
    billing = ctx.runtime.billing
    form = {
        "service": ctx.param("service", "compare"),
        "calls": ctx.param("calls", "3500000"),
        "packs": ctx.param("packs"),
        "plan_service": ctx.param("plan_service", "compare"),
        "calls_per_year": ctx.param("calls_per_year", "30000000"),
    }
    result: dict[str, Any] = {}
    try:
        sizes = [parse_size(text) for text in form["packs"].split(",") if text.strip()]
        result["quote"] = billing.quote(form["service"], parse_count(form["calls"]), sizes)
    except (ValueError, ApiError) as error:
        result["quote_error"] = _message(error)
    try:
        result["plan"] = billing.plan(form["plan_service"], parse_count(form["calls_per_year"]))
    except (ValueError, ApiError) as error:
        result["plan_error"] = _message(error)
    return ctx.render(
        "quote.html",
        form=form,
        services=billing.catalog.services,
        tiers=billing.catalog.tiers,
        free_calls=billing.catalog.free_calls_per_month,
        **result,
    )


def _message(error: Exception) -> str:
    return error.message_for("en-US") if isinstance(error, ApiError) else str(error)


def parse_count(text: str) -> int:
    """'3,500,000', '3500000', '3.5M' or '350万' -> a number of calls."""
    cleaned = text.replace(",", "").replace("_", "").strip()
    if cleaned.isdigit():
        return int(cleaned)
    return parse_size(cleaned)


def parse_size(text: str) -> int:
    from facecloud.billing.pricing import parse_pack_size  # the CLI's parser: one notation everywhere

    return parse_pack_size(text)


@PAGES.get("/keys")
def keys(ctx: Ctx) -> Response:
    account = ctx.account
    return ctx.render(
        "keys.html", keys=ctx.runtime.accounts.keys(account.id), current=ctx.session.secret_id, new_key=None
    )


@PAGES.post("/keys/rotate")
def rotate_key(ctx: Ctx) -> Response:
    account = ctx.account
    keep_old = ctx.param("keep_old") == "on"
    creds = ctx.runtime.accounts.rotate_key(account.id, keep_old=keep_old)
    if not keep_old:
        # The key that opened this session is now disabled: carry the session over to the new one.
        ctx.session.sign_in("account", account.id, creds.secret_id)
    # The new SecretKey is shown once, in this response only (never in a cookie or a redirect).
    return ctx.render(
        "keys.html", keys=ctx.runtime.accounts.keys(account.id), current=ctx.session.secret_id, new_key=creds
    )
