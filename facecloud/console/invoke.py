"""The console acts on groups and persons through the registered Tencent actions, as the account itself would.

So a person created in the console is validated, embedded, stored and metered exactly as one created with the
SDK:
billable actions are checked against arrears before and recorded after, by the same rule as the gateway."""

from __future__ import annotations

import uuid
from typing import Any

from facecloud.accounts import AccountInfo
from facecloud.errors import ApiError
from facecloud.gateway import params
from facecloud.gateway.api import BILLABLE_ERRORS
from facecloud.gateway.registry import ActionContext, registry
from facecloud.runtime import Runtime


def invoke(runtime: Runtime, account: AccountInfo, name: str, fields: dict[str, Any]) -> dict[str, Any]:
    action = registry().get(name)
    if action is None:
        raise ApiError("UnsupportedOperation", f"this server does not offer {name} yet")
    typed = params.validate(action.request, fields)
    ctx = ActionContext(
        account_id=account.id,
        app_id=account.app_id,
        request_id=f"console-{uuid.uuid4()}",
        language="en-US",
        runtime=runtime,
    )
    service = action.billed_service(typed)
    if service is None:
        return action.handler(typed, ctx)
    runtime.billing.ensure_can_bill(account.id, service)
    try:
        result = action.handler(typed, ctx)
    except ApiError as error:
        if error.code in BILLABLE_ERRORS:
            runtime.billing.record_call(account.id, service, name, ctx.request_id)
        raise
    runtime.billing.record_call(account.id, service, name, ctx.request_id)
    return result
