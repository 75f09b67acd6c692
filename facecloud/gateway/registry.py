"""The action registry: every Tencent action is registered once, with its typed request and its billed service."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict

from facecloud.db import WriteAbandoned, commit_gate, in_write_transaction
from facecloud.errors import ApiError
from facecloud.gateway.scheduler import run_here

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from facecloud.billing import Billing
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
    # Matches faces (comparison, search, verification, enrolment: the embedder on every image it is given): heavy
    # model work, scheduled apart from detection and analysis (gateway/scheduler.py).
    heavy: bool = False

    def billed_service(self, request: TencentRequest) -> str | None:
        if callable(self.service):
            return self.service(request)
        return self.service


_REGISTRY: dict[str, Action] = {}


def action(
    name: str, request: type[Req], service: Service = None, limit_group: str = "", heavy: bool = False
) -> Callable[[Callable[[Req, ActionContext], dict[str, Any]]], Callable[[Req, ActionContext], dict[str, Any]]]:
    """Register a handler: `@action("DetectFace", DetectFaceRequest, service="detect")`.

    The handler is a plain function (typed request, context) -> dict of response fields (no RequestId);
    it raises facecloud.errors.ApiError for any error. heavy=True for an action that matches faces (Action.heavy)."""

    def register(
        handler: Callable[[Req, ActionContext], dict[str, Any]],
    ) -> Callable[[Req, ActionContext], dict[str, Any]]:
        if name in _REGISTRY:
            raise ValueError(f"action {name} registered twice")
        _REGISTRY[name] = Action(name, request, handler, service, limit_group or name, heavy)
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


class LedgerRow:
    """The call's ledger row, written inside the handler's gallery write transaction (facecloud.db.
    in_write_transaction), so a committed write and its ledger row exist together or not at all."""

    def __init__(self, billing: Billing, ctx: ActionContext, service: str, action_name: str) -> None:
        self._billing = billing
        self._call = (ctx.account_id, service, action_name, ctx.request_id)
        self._written = self._alerts = False
        self.recorded = False  # committed with a write: execute() must not record it again

    def write(self, conn: Connection) -> None:
        if not self.recorded:  # one row per call, even when a handler commits several writes
            self._alerts = self._billing.record_call_in(conn, *self._call)
            self._written = True

    def committed(self) -> None:
        if self._written and not self.recorded:
            self.recorded = True
            if self._alerts:
                self._billing.alerts_queued()


def execute(
    action: Action,
    request: TencentRequest,
    ctx: ActionContext,
    may_commit: Callable[[], bool] = _always,
    run_handler: Callable[[Callable[[], dict[str, Any]]], dict[str, Any]] = run_here,
) -> dict[str, Any]:
    """Run an action under the metering rule: a billable call is refused in arrears before any work, and recorded
    once after a success or a billable error, only when may_commit() says its answer will reach the caller. A call
    that writes the gallery records its ledger row in the write's own transaction, after may_commit() said yes.
    run_handler runs the handler (the gateway's: in a model-work slot, which the metering around it does not hold)."""
    service = action.billed_service(request)
    billing = ctx.runtime.billing if service else None
    if billing:
        billing.ensure_can_bill(ctx.account_id, service)
    ledger = LedgerRow(billing, ctx, service, action.name) if billing and service else None
    gate = commit_gate.set(may_commit)  # a write commits only while its answer can still reach the caller
    joined = in_write_transaction.set(ledger)
    try:
        fields = run_handler(lambda: action.handler(request, ctx))
    except WriteAbandoned:
        raise CallAbandoned from None
    except ApiError as error:
        if billing and error.code in BILLABLE_ERRORS and may_commit() and not (ledger and ledger.recorded):
            billing.record_call(ctx.account_id, service, action.name, ctx.request_id)
        raise
    finally:
        in_write_transaction.reset(joined)
        commit_gate.reset(gate)
    if not may_commit():
        raise CallAbandoned
    if billing and not (ledger and ledger.recorded):
        billing.record_call(ctx.account_id, service, action.name, ctx.request_id)
    return fields
