"""Sign-in with an account's SecretId/SecretKey, or with the operator password; sign-out."""

from __future__ import annotations

import hashlib
import hmac

from starlette.responses import RedirectResponse, Response

from facecloud.console.i18n import COOKIE as LANGUAGE_COOKIE
from facecloud.console.i18n import DEFAULT_LOCALE, LOCALES
from facecloud.console.web import Ctx, Pages
from facecloud.errors import ApiError

PAGES = Pages("public")

FAILURE_DELAY_S = 0.5
LANGUAGE_MAX_AGE_S = 365 * 86400
REFUSED = "Sign-in refused: the SecretId or SecretKey is wrong, or the key is disabled."


def _safe_next(target: str, default: str) -> str:
    # Only a path of this console: never an absolute URL, never "//host".
    return target if target.startswith("/console/") and not target.startswith("//") else default


def _redirect_back(location: str) -> Response:
    return RedirectResponse(location, status_code=303)


@PAGES.get("/signin")
def show(ctx: Ctx) -> Response:
    if ctx.session.kind:
        return ctx.redirect("/console/")
    return ctx.render(
        "signin.html",
        next=ctx.param("next"),
        tab=ctx.param("tab", "account"),
        operator_enabled=bool(ctx.console.settings.operator_password),
    )


@PAGES.post("/signin")
def submit(ctx: Ctx) -> Response:
    client = ctx.request.client.host if ctx.request.client else "unknown"
    kind = "operator" if ctx.param("kind") == "operator" else "account"
    secret_id = ctx.param("secret_id")
    # Two counters: the identity under attack (tight), and the client address (looser: users may share a NAT).
    identity = f"id:{secret_id}" if kind == "account" else "operator"
    throttles = ((ctx.console.identity_throttle, identity), (ctx.console.address_throttle, client))
    wait = max(throttle.retry_after(key) for throttle, key in throttles)
    if wait > 0:
        return _refuse(ctx, kind, ctx._("Too many failed sign-ins: try again in {n} seconds.", n=int(wait) + 1), 429)
    ok = _operator_ok(ctx) if kind == "operator" else _account_ok(ctx, secret_id)
    if ok:
        # Only the identity's count is forgiven: signing in with one's own key must not reset the address's.
        ctx.console.identity_throttle.succeeded(identity)
    else:
        for throttle, key in throttles:
            throttle.failed(key)
        ctx.failure_delay_s = FAILURE_DELAY_S
        message = "Sign-in refused: wrong operator password." if kind == "operator" else REFUSED
        return _refuse(ctx, kind, message, 401)
    default = "/console/operator/accounts" if kind == "operator" else "/console/usage"
    return ctx.redirect(_safe_next(ctx.param("next"), default))


def _account_ok(ctx: Ctx, secret_id: str) -> bool:
    try:
        key = ctx.runtime.accounts.signing_key(secret_id)
    except ApiError:
        return False
    if not hmac.compare_digest(key.secret_key.encode(), ctx.param("secret_key").encode()):
        return False
    ctx.session.sign_in("account", key.account.id, secret_id)
    return True


def _operator_ok(ctx: Ctx) -> bool:
    expected = ctx.console.settings.operator_password
    given = ctx.param("password")
    # Digests of equal length, so the comparison says nothing about the password's length.
    if not expected or not hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    ):
        return False
    ctx.session.sign_in("operator", generation=ctx.console.operator_generations.current())
    return True


def _refuse(ctx: Ctx, kind: str, message: str, status: int) -> Response:
    return ctx.render(
        "signin.html",
        status_code=status,
        error=message,
        next=ctx.param("next"),
        tab=kind,
        secret_id=ctx.param("secret_id"),
        operator_enabled=bool(ctx.console.settings.operator_password),
    )


@PAGES.post("/signout")
def sign_out(ctx: Ctx) -> Response:
    if ctx.session.kind == "operator":
        # The cookie may have been copied: end every operator session, not just this browser's.
        ctx.console.operator_generations.revoke_all()
    ctx.session.sign_out()
    return ctx.redirect("/console/signin", "info", "Signed out.")


@PAGES.get("/lang/{locale}")
def choose_language(ctx: Ctx) -> Response:
    """Sets the language cookie (a preference, not a privilege: a plain GET) and goes back."""
    locale = ctx.request.path_params["locale"]
    if locale not in LOCALES:
        locale = DEFAULT_LOCALE
    response = _redirect_back(_safe_next(ctx.param("next"), "/console/"))
    response.set_cookie(LANGUAGE_COOKIE, locale, max_age=LANGUAGE_MAX_AGE_S, path="/console", samesite="lax")
    return response
