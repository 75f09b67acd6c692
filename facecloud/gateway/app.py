"""The ASGI application: the API at `/`, health, metrics and (when present) the console."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from facecloud.console import create_console
from facecloud.gateway import metrics
from facecloud.gateway.api import ApiEndpoint, make_replay_guard
from facecloud.gateway.ratelimit import make_rate_limiter
from facecloud.runtime import Runtime

log = logging.getLogger("facecloud.app")
SETTLEMENT_EVERY_S = 3600
MAINTENANCE_EVERY_S = 10.0


async def _settle_periodically(runtime: Runtime) -> None:
    """Bills are issued on the 1st, by one process of the installation at a time (settle_due() is idempotent as
    well); at start, then hourly."""
    while True:
        try:
            bills = await run_in_threadpool(_settle_once, runtime)
            if bills:
                log.info("settled", extra={"bills": len(bills)})
        except Exception:
            log.exception("settlement run failed; retrying later")
        await asyncio.sleep(SETTLEMENT_EVERY_S)


def _settle_once(runtime: Runtime) -> list[dict[str, object]]:
    with runtime.db.exclusive("billing-settlement") as held:
        return runtime.billing.settle_due() if held else []


async def _maintain_gallery_periodically(runtime: Runtime) -> None:
    """Index training and change-log compaction, off the request path, once the gallery is in use."""
    while True:
        await asyncio.sleep(MAINTENANCE_EVERY_S)
        if "gallery" not in runtime.__dict__:
            continue  # not built yet: nothing to maintain in this process
        try:
            await run_in_threadpool(runtime.gallery.maintain)
        except Exception:
            log.exception("gallery maintenance failed; retrying later")


async def _warm_up_models(runtime: Runtime) -> None:
    try:
        await run_in_threadpool(runtime.vision.warm_up)
    except Exception:  # a model that cannot load answers its own error on the first call that needs it
        log.exception("loading the face models at start failed")
    # What the worker holds by now (modules, models, schemas) lives as long as the process: out of the garbage
    # collector's full passes, which otherwise scanned it all and stopped every request thread for ~90 ms (now
    # ~10 ms). The garbage of the start is collected first, so that none of it is kept for good.
    gc.collect()
    gc.freeze()


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

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(_settle_periodically(runtime)),
            asyncio.create_task(_maintain_gallery_periodically(runtime)),
            asyncio.create_task(_warm_up_models(runtime)),
        ]
        await asyncio.to_thread(runtime.resume_version_jobs)
        yield
        for task in tasks:
            task.cancel()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.runtime = runtime
    return app
