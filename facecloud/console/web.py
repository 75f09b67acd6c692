"""The console's request plumbing: session cookie in and out, CSRF and origin checks on every POST, access
control, rendering, domain errors shown as messages. Page handlers are plain sync functions (thread pool)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from facecloud.accounts import AccountInfo
from facecloud.console.i18n import COOKIE as LANGUAGE_COOKIE
from facecloud.console.i18n import LANGUAGE_NAMES, Translator, choose_locale
from facecloud.console.security import COOKIE_NAME, CSRF_FIELD, CSRF_HEADER, SESSION_MAX_AGE_S, Session
from facecloud.errors import ApiError

HERE = Path(__file__).resolve().parent
ASSET_VERSION = "3"
SECURITY_HEADERS = {
    # Every script and style is a local file: nothing inline, nothing from elsewhere.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Forbidden(Exception):
    pass


@dataclass
class Redirect(Exception):
    """Raised by a handler to leave for another page (after a POST, or when access is missing)."""

    location: str


@dataclass
class Ctx:
    """One console request as a page handler sees it."""

    request: Request
    session: Session
    console: Any  # facecloud.console.app.Console
    form: FormData | None = None
    failure_delay_s: float = 0.0
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def runtime(self) -> Any:
        return self.console.runtime

    @property
    def account(self) -> AccountInfo:
        if self.session.kind != "account" or self.session.account_id is None:
            raise Forbidden("an account session is required")
        return self.runtime.accounts.get(self.session.account_id)

    @cached_property
    def t(self) -> Translator:
        headers = self.request.headers
        return Translator(choose_locale(self.request.cookies.get(LANGUAGE_COOKIE), headers.get("accept-language")))

    @property
    def locale(self) -> str:
        return self.t.locale

    def _(self, english: str, **values: Any) -> str:
        return self.t.text(english, **values)

    @property
    def is_htmx(self) -> bool:
        return self.request.headers.get("hx-request") == "true"

    def param(self, name: str, default: str = "") -> str:
        if self.form is not None and name in self.form:
            return str(self.form[name]).strip()
        return self.request.query_params.get(name, default).strip()

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        base = {
            "session": self.session,
            "csrf_token": self.session.csrf,
            "path": self.request.url.path,
            "flash": self.session.pop_flash(),
            "asset_version": ASSET_VERSION,
            "identity": self.console.identity(self.session),
            "t": self.t,
            "_": self.t.text,
            "locale": self.locale,
            "full_path": self.request.url.path + (f"?{self.request.url.query}" if self.request.url.query else ""),
        }
        body = self.console.templates.get_template(template).render(**base, **context)
        return HTMLResponse(body, status_code=status_code)

    def redirect(self, location: str, level: str | None = None, message: str | None = None) -> Response:
        if level and message:
            self.session.add_flash(level, message)
        return _redirect(location, self.is_htmx)


def _redirect(location: str, htmx: bool) -> Response:
    if htmx:  # htmx follows a 3xx inside its request; ask it to navigate instead
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


Handler = Callable[[Ctx], Response]


class Pages:
    """The routes of one console module, each declared on its handler (`@PAGES.get("/usage")`), all with one
    access level (public, account or operator)."""

    def __init__(self, access: str) -> None:
        self.access = access
        self.routes: list[tuple[str, list[str], str, Handler]] = []

    def get(self, path: str) -> Callable[[Handler], Handler]:
        return self._route(path, "GET")

    def post(self, path: str) -> Callable[[Handler], Handler]:
        return self._route(path, "POST")

    def _route(self, path: str, method: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append((path, [method], self.access, handler))
            return handler

        return register


def page(console: Any, access: str, handler: Handler) -> Callable[[Request], Any]:
    """An endpoint around a sync handler. access: "public", "account" or "operator"."""

    async def endpoint(request: Request) -> Response:
        session = console.codec.loads(request.cookies.get(COOKIE_NAME))
        ctx = Ctx(request, session, console)
        try:
            if request.method == "POST":
                ctx.form = await request.form()
                _check_post(request, ctx)
            response = await run_in_threadpool(_guarded, console, access, handler, ctx)
        except Forbidden as refusal:
            response = HTMLResponse(
                console.templates.get_template("error.html").render(
                    title=ctx.t.text("Request refused"),
                    message=ctx.t.text(str(refusal)),
                    identity=None,
                    asset_version=ASSET_VERSION,
                    t=ctx.t,
                    _=ctx.t.text,
                    locale=ctx.locale,
                ),
                status_code=403,
            )
        if ctx.failure_delay_s:
            await asyncio.sleep(ctx.failure_delay_s)
        _finish(console, request, session, response)
        response.headers.update(ctx.extra_headers)
        return response

    return endpoint


def _check_post(request: Request, ctx: Ctx) -> None:
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise Forbidden("cross-origin request refused")
    token = request.headers.get(CSRF_HEADER) or (ctx.form.get(CSRF_FIELD) if ctx.form is not None else None)
    if not ctx.session.csrf_ok(str(token) if token is not None else None):
        raise Forbidden("invalid or missing CSRF token: reload the page and try again")


def _guarded(console: Any, access: str, handler: Handler, ctx: Ctx) -> Response:
    try:
        console.check_access(ctx, access)
        return handler(ctx)
    except Redirect as leave:
        return _redirect(leave.location, ctx.is_htmx)
    except ApiError as error:
        if ctx.request.method != "POST":
            status = 404 if error.code.startswith("ResourceNotFound") else 400
            return ctx.render(
                "error.html", status_code=status, title=ctx._("Not available"), message=error.message_for(ctx.locale)
            )
        # A refused action: say why on the page the form came from.
        ctx.session.add_flash("error", error.message_for(ctx.locale))
        return _redirect(_same_site_referer(ctx.request), ctx.is_htmx)


def _same_site_referer(request: Request) -> str:
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc == request.headers.get("host") and referer.path.startswith("/console"):
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return "/console/"


def _finish(console: Any, request: Request, session: Session, response: Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if session.changed:
        response.set_cookie(
            COOKIE_NAME,
            console.codec.dumps(session),
            max_age=SESSION_MAX_AGE_S,
            path="/console",
            httponly=True,
            samesite="strict",
            secure=console.secure_cookie(request),
        )


# Template filters: numbers and dates in the page's locale (the context's translator `t`).
ENGLISH = Translator("en-US")


def _translator(context: Any) -> Translator:
    return context.get("t") or ENGLISH


def _formatter(name: str) -> Callable[[Any, Any], str]:
    """A template filter formatting with the page's translator (count, money, when, percent)."""

    @pass_context
    def format_value(context: Any, value: Any) -> str:
        return getattr(_translator(context), name)(value)

    return format_value


def as_json(value: Any) -> Markup:
    # For <script type="application/json"> data blocks: "<" escaped so the data cannot close the element.
    return Markup(json.dumps(value, default=str, ensure_ascii=False).replace("<", "\\u003c"))


def make_templates() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    env.filters.update({name: _formatter(name) for name in ("count", "money", "when", "percent")}, as_json=as_json)
    env.globals.update(_=ENGLISH.text, t=ENGLISH, locale=ENGLISH.locale, languages=LANGUAGE_NAMES)
    return env
