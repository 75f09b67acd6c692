"""The console: a server-rendered web app (Jinja2, htmx, Chart.js; all served locally) under /console."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from facecloud.accounts.secrets import load_or_create_master_key
from facecloud.console import pages_account, pages_gallery, pages_operator, pages_try, signin
from facecloud.console.security import (
    OperatorGenerations,
    Session,
    SessionCodec,
    SignInThrottle,
    derive_session_key,
)
from facecloud.console.web import HERE, Ctx, Forbidden, Redirect, make_templates, page
from facecloud.errors import ApiError
from facecloud.runtime import Runtime


class Console:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        master_key = load_or_create_master_key(self.settings.master_key, self.settings.data_dir)
        session_key = derive_session_key(master_key)
        self.codec = SessionCodec(session_key)
        self.operator_generations = OperatorGenerations(
            session_key, self.settings.operator_password, self.settings.data_dir
        )
        self.identity_throttle = SignInThrottle(limit=5, window_s=600)
        self.address_throttle = SignInThrottle(limit=30, window_s=600)
        self.templates = make_templates()

    def secure_cookie(self, request: Request) -> bool:
        mode = self.settings.console_secure_cookie
        return mode == "always" or (mode == "auto" and request.url.scheme == "https")

    def identity(self, session: Session) -> dict[str, Any] | None:
        if session.kind == "operator":
            return {"kind": "operator", "label": "Operator"}
        if session.kind == "account" and session.account_id is not None:
            info = self.runtime.accounts.get(session.account_id)
            return {"kind": "account", "label": f"{info.name} · AppId {info.app_id}", "app_id": info.app_id}
        return None

    def check_access(self, ctx: Ctx, access: str) -> None:
        session = ctx.session
        if access == "public":
            return
        if session.kind is None:
            raise Redirect(f"/console/signin?next={ctx.request.url.path}")
        if session.kind != access:
            raise Forbidden(f"this page needs an {access} session")
        if access == "operator" and not self.settings.operator_password:
            session.sign_out()
            raise Redirect("/console/signin")
        if access == "operator" and not self.operator_generations.valid(session.generation):
            session.sign_out()
            session.add_flash("error", "Your operator session ended: the password changed or the operator signed out.")
            raise Redirect("/console/signin?tab=operator")
        if access == "account":
            self._check_account_key(session)

    def _check_account_key(self, session: Session) -> None:
        # The session dies with the key that opened it (disabled, rotated away, or its account disabled).
        try:
            key = self.runtime.accounts.signing_key(session.secret_id or "")
        except ApiError:
            key = None
        if key is None or key.account.id != session.account_id:
            session.sign_out()
            session.add_flash("error", "Your session ended: its key or account is no longer active.")
            raise Redirect("/console/signin")

    def routes(self) -> list[BaseRoute]:
        def home(ctx: Ctx) -> Response:
            target = {"account": "/console/usage", "operator": "/console/operator/accounts"}
            return ctx.redirect(target.get(ctx.session.kind or "", "/console/signin"))

        routes: list[BaseRoute] = [
            Route("/", page(self, "public", home), methods=["GET"]),
            Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
        ]
        for module in (signin, pages_account, pages_gallery, pages_try, pages_operator):
            for path, methods, access, handler in module.PAGES.routes:
                routes.append(Route(path, page(self, access, handler), methods=methods))
        return routes


def create_console(runtime: Runtime) -> Starlette:
    console = Console(runtime)
    app = Starlette(routes=console.routes())
    app.state.console = console
    return app


def console_redirect(_: Request) -> Response:
    return RedirectResponse("/console/", status_code=307)
