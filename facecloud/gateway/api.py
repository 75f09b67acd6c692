"""The TencentCloud API 3.0 endpoint: authenticate, dispatch through the registry, meter, answer an envelope."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from facecloud.accounts.replay import MemoryReplayGuard, RedisReplayGuard, ReplayGuard, SqlReplayGuard
from facecloud.errors import ApiError
from facecloud.gateway import auth, envelope, metrics, params, ratelimit
from facecloud.gateway.deadline import CallOutcome, run_with_deadline, timeout_error
from facecloud.gateway.registry import API_VERSION, Action, ActionContext, CallAbandoned, execute, registry
from facecloud.gateway.scheduler import ModelWorkScheduler
from facecloud.runtime import Runtime

log = logging.getLogger("facecloud.api")

LANGUAGES = frozenset({"zh-CN", "en-US"})


def is_read_only(action_name: str) -> bool:
    """Tencent names its pure reads Get*: they are served even under a signature already seen (see replay.py)."""
    return action_name.startswith("Get")


REPLAY_MODES = ("window", "strict")


def make_replay_guard(runtime: Runtime, workers: int) -> ReplayGuard | None:
    """None in the default "window" mode: Tencent serves every correctly signed request within the clock window."""
    mode = runtime.settings.replay_mode
    if mode not in REPLAY_MODES:
        raise ValueError(f"FACECLOUD_REPLAY_MODE must be one of {', '.join(REPLAY_MODES)}, not {mode!r}")
    if mode == "window":
        return None
    if runtime.settings.redis_url:
        return RedisReplayGuard(runtime.settings.redis_url)
    if workers > 1:
        return SqlReplayGuard.beside(runtime.db, runtime.settings.data_dir)
    return MemoryReplayGuard()


@dataclass(frozen=True)
class _Call:
    """What the event loop hands the worker thread: the request as read, and the log fields to fill in."""

    method: str
    query: str
    headers: dict[str, str]
    body: bytes
    action_name: str
    version: str
    request_id: str
    language: str
    extra: dict[str, Any]


class ApiEndpoint:
    def __init__(
        self,
        runtime: Runtime,
        replay_guard: ReplayGuard | None,
        rate_limiter: ratelimit.RateLimiter | None = None,
        scheduler: ModelWorkScheduler | None = None,
    ) -> None:
        self.runtime = runtime
        self.replay_guard = replay_guard
        self.rate_limiter = rate_limiter or ratelimit.MemoryRateLimiter()
        settings = runtime.settings
        self.scheduler = scheduler or ModelWorkScheduler(
            runtime.vision.slots,
            settings.model_work_queue,
            settings.request_timeout_s,
            heavy_nice=settings.heavy_work_nice,
            light_slots=runtime.vision.light_slots,
        )
        self.actions = registry()

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        headers = {k.lower(): v for k, v in request.headers.items()}
        language = headers.get("x-tc-language", "zh-CN")
        language = language if language in LANGUAGES else "zh-CN"
        action_name = headers.get("x-tc-action") or request.query_params.get("Action", "")
        label = action_name if action_name in self.actions else "unknown"
        extra: dict[str, Any] = {"RequestId": request_id, "action": action_name}
        try:
            fields = await self._handle(request, headers, action_name, request_id, language, extra)
            response, code = envelope.success(fields, request_id), "Success"
        except ApiError as error:
            response, code = envelope.failure(error, request_id, language), error.code
        except Exception:
            log.exception("unhandled error", extra=extra)
            response, code = (
                envelope.failure(ApiError("InternalError"), request_id, language),
                "InternalError",
            )
        elapsed = time.perf_counter() - started
        metrics.observe(label, code, elapsed)
        log.info("request", extra={**extra, "code": code, "ms": round(elapsed * 1000, 2)})
        return response

    async def _handle(
        self,
        request: Request,
        headers: dict[str, str],
        action_name: str,
        request_id: str,
        language: str,
        extra: dict[str, Any],
    ) -> dict[str, Any]:
        if request.method not in ("GET", "POST"):
            raise ApiError(
                "UnsupportedOperation",
                f"HTTP method {request.method} is not supported.",
                f"不支持 HTTP 方法 {request.method}。",
            )
        body = await self._read_body(request)
        call = _Call(
            method=request.method,
            query=request.scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
            action_name=action_name,
            version=headers.get("x-tc-version") or request.query_params.get("Version", ""),
            request_id=request_id,
            language=language,
            extra=extra,
        )
        # Everything after the body runs in one worker-thread hop: under load every hop back to the event loop
        # and out again waits for a core and the GIL (measured: 3-8 ms at p99 each, at half the capacity).
        timeout_s = self.runtime.settings.request_timeout_s
        return await run_with_deadline(lambda outcome: self._serve(call, outcome), timeout_s)

    def _serve(self, call: _Call, outcome: CallOutcome) -> dict[str, Any]:
        """Authenticate, check the version, the action, replays and the rate limit, validate, then run the action."""
        settings = self.runtime.settings
        key, signature = auth.verify(
            method=call.method,
            query=call.query,
            headers=call.headers,
            body=call.body,
            accounts=self.runtime.accounts,
            window_s=settings.signature_window_s,
        )
        call.extra["account"] = key.account.app_id
        if call.version != API_VERSION:
            raise ApiError(
                "NoSuchVersion",
                f"Version `{call.version}` does not exist; use {API_VERSION}.",
                f"接口版本 `{call.version}` 不存在，请使用 {API_VERSION}。",
            )
        action = self.actions.get(call.action_name)
        if action is None:
            raise ApiError(
                "InvalidAction",
                f"The action `{call.action_name}` does not exist.",
                f"接口 `{call.action_name}` 不存在。",
            )
        if self.replay_guard is not None:
            auth.refuse_replay(
                self.replay_guard,
                call.action_name,
                signature,
                settings.signature_window_s,
                is_read_only(call.action_name),
            )
        ratelimit.check(self.rate_limiter, settings, key.account.id, action.limit_group)
        raw = params.parse_flat_query(call.query) if call.method == "GET" else params.parse_json_body(call.body)
        typed = params.validate(action.request, raw)
        ctx = ActionContext(
            account_id=key.account.id,
            app_id=key.account.app_id,
            request_id=call.request_id,
            language=call.language,
            runtime=self.runtime,
            region=call.headers.get("x-tc-region", ""),
        )
        return self._run(action, typed, ctx, outcome)

    def _run(self, action: Action, typed: Any, ctx: ActionContext, outcome: CallOutcome) -> dict[str, Any]:
        def in_slot(handler: Callable[[], dict[str, Any]]) -> dict[str, Any]:
            # Only the handler holds the slot: the ledger commit after it (an fsync) leaves the core to the next call.
            with self.scheduler.slot_for(action.name, action.request, action.heavy) as run:
                return run(handler)

        try:
            return execute(action, typed, ctx, outcome.commit, in_slot)
        except CallAbandoned:
            # Answered FailedOperation.RequestTimeout already, so it was not billed.
            raise timeout_error(self.runtime.settings.request_timeout_s) from None

    async def _read_body(self, request: Request) -> bytes:
        seconds = self.runtime.settings.body_read_timeout_s
        try:
            return await asyncio.wait_for(self._read_limited_body(request), seconds if seconds > 0 else None)
        except TimeoutError:
            raise ApiError(
                "FailedOperation.RequestTimeout",
                f"The request body was not received within {seconds:g} s.",
                f"请求包体未在 {seconds:g} 秒内收到。",
            ) from None

    async def _read_limited_body(self, request: Request) -> bytes:
        limit = self.runtime.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ApiError(
                "RequestSizeLimitExceeded",
                f"The request body exceeds {limit} bytes.",
                f"请求包体超过 {limit} 字节。",
            )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(
                    "RequestSizeLimitExceeded",
                    f"The request body exceeds {limit} bytes.",
                    f"请求包体超过 {limit} 字节。",
                )
            chunks.append(chunk)
        return b"".join(chunks)
