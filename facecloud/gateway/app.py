"""The ASGI application: the API at `/`, health, metrics and (when present) the console."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from facecloud.console import create_console
from facecloud.gateway import metrics
from facecloud.gateway.api import ApiEndpoint, make_replay_guard
from facecloud.gateway.ratelimit import make_rate_limiter
from facecloud.runtime import Runtime


def create_app(runtime: Runtime, workers: int = 1) -> Starlette:
    limiter = make_rate_limiter(runtime.settings, workers)
    endpoint = ApiEndpoint(runtime, make_replay_guard(runtime, workers), limiter)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "actions": len(endpoint.actions)})

    async def prometheus(_: Request) -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    routes = [
        Route("/", endpoint.handle, methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        Mount("/console", app=create_console(runtime)),
    ]
    app = Starlette(routes=routes)
    app.state.runtime = runtime
    return app
