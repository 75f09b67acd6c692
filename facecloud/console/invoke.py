"""The console acts on groups and persons through the registered Tencent actions, as the account itself would.

So a person created in the console is validated, embedded, stored and metered exactly as one created with the SDK:
billable actions are checked against arrears before and recorded after, by the gateway's own rule (execute)."""

from __future__ import annotations

import uuid
from typing import Any

from facecloud.accounts import AccountInfo
from facecloud.errors import ApiError
from facecloud.gateway import params
from facecloud.gateway.registry import ActionContext, execute, registry
from facecloud.runtime import Runtime


def invoke(
    runtime: Runtime,
    account: AccountInfo,
    name: str,
    fields: dict[str, Any],
    language: str = "en-US",
    request_id: str | None = None,
) -> dict[str, Any]:
    action = registry().get(name)
    if action is None:
        raise ApiError("UnsupportedOperation", f"this server does not offer {name} yet", f"本服务尚未提供 {name}。")
    typed = params.validate(action.request, fields)
    ctx = ActionContext(
        account_id=account.id,
        app_id=account.app_id,
        request_id=request_id or new_request_id(),
        language=language,
        runtime=runtime,
    )
    return execute(action, typed, ctx)


def new_request_id() -> str:
    return f"console-{uuid.uuid4()}"
