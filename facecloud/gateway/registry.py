"""The action registry: every Tencent action is registered once, with its typed request and its billed service."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict

from facecloud.db import WriteAbandoned, commit_gate
from facecloud.errors import ApiError

if TYPE_CHECKING:
    from facecloud.runtime import Runtime

API_VERSION = "2020-03-03"


class TencentRequest(BaseModel):
    """Base of every request schema: Tencent field names as they are; unknown fields are ignored like Tencent does."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


@dataclass(frozen=True)
class ActionContext:
    account_id: int
    app_id: int
    request_id: str
    language: str
    runtime: Runtime
    region: str = ""


Req = TypeVar("Req", bound=TencentRequest)
# A service id of the price list, a function of the request that picks one (search vs multi_search), or None (free).
Service = str | Callable[[Any], str | None] | None
Handler = Callable[[Any, ActionContext], dict[str, Any]]


@dataclass(frozen=True)
class Action:
    name: str
    request: type[TencentRequest]
    handler: Handler
    service: Service = None
    # Rate-limit group; actions share Tencent's default 50 QPS per group unless a group says otherwise.
    limit_group: str = ""

    def billed_service(self, request: TencentRequest) -> str | None:
        if callable(self.service):
            return self.service(request)
        return self.service


_REGISTRY: dict[str, Action] = {}


def action(
    name: str, request: type[Req], service: Service = None, limit_group: str = ""
) -> Callable[[Callable[[Req, ActionContext], dict[str, Any]]], Callable[[Req, ActionContext], dict[str, Any]]]:
    """Register a handler: `@action("DetectFace", DetectFaceRequest, service="detect")`.

    The handler is a plain function (typed request, context) -> dict of response fields (no RequestId);
    it raises facecloud.errors.ApiError for any error."""

    def register(
        handler: Callable[[Req, ActionContext], dict[str, Any]],
    ) -> Callable[[Req, ActionContext], dict[str, Any]]:
        if name in _REGISTRY:
            raise ValueError(f"action {name} registered twice")
        _REGISTRY[name] = Action(name, request, handler, service, limit_group or name)
        return handler

    return register


def registry() -> dict[str, Action]:
    import facecloud.actions  # noqa: F401  (registers every action module)

    return _REGISTRY


# A failed call is free, except this one (billing rules: "What is billable").
BILLABLE_ERRORS = frozenset({"InvalidParameterValue.NoFaceInPhoto"})


class CallAbandoned(Exception):
    """The caller gave up (deadline) before the call committed: nothing was billed."""


def _always() -> bool:
    return True


def execute(
    action: Action, request: TencentRequest, ctx: ActionContext, may_commit: Callable[[], bool] = _always
) -> dict[str, Any]:
    """Run an action under the metering rule: a billable call is refused in arrears before any work, and recorded
    once after a success or a billable error, only when may_commit() says its answer will reach the caller."""
    service = action.billed_service(request)
    billing = ctx.runtime.billing if service else None
    if billing:
        billing.ensure_can_bill(ctx.account_id, service)
    gate = commit_gate.set(may_commit)  # a write commits only while its answer can still reach the caller
    try:
        fields = action.handler(request, ctx)
    except WriteAbandoned:
        raise CallAbandoned from None
    except ApiError as error:
        if billing and error.code in BILLABLE_ERRORS and may_commit():
            billing.record_call(ctx.account_id, service, action.name, ctx.request_id)
        raise
    finally:
        commit_gate.reset(gate)
    if not may_commit():
        raise CallAbandoned
    if billing:
        billing.record_call(ctx.account_id, service, action.name, ctx.request_id)
    return fields
