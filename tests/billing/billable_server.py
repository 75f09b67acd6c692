"""Launcher of a real facecloud server process with one test-only billable action, for the SIGKILL test.

The vision actions may not exist (or load models for seconds), so the crash test needs a billable action that
costs nothing: `_TestBillable` (billed as service "detect") answers success, or the billable error
NoFaceInPhoto, or a free error, as its `Outcome` field asks. Everything else is the real server: TC3 auth, the
gateway's billing checks (ensure_can_bill before, record_call after), the real meter on SQLite in --data-dir.
It could be switched to a real cheap action once one exists.

    python tests/billing/billable_server.py --port P --data-dir D
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import uvicorn

from facecloud.config import Settings
from facecloud.errors import ApiError
from facecloud.gateway.app import create_app
from facecloud.gateway.registry import ActionContext, TencentRequest, action
from facecloud.runtime import Runtime

TEST_ACTION = "_TestBillable"


class TestBillableRequest(TencentRequest):
    Outcome: str = "Success"  # Success | NoFace | Free


@action(TEST_ACTION, TestBillableRequest, service="detect")
def test_billable(req: TestBillableRequest, ctx: ActionContext) -> dict[str, Any]:
    if req.Outcome == "NoFace":
        raise ApiError("InvalidParameterValue.NoFaceInPhoto", "No face in the image.")
    if req.Outcome == "Free":
        raise ApiError("InvalidParameterValue", "A free error.")
    return {"Echo": ctx.request_id}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    settings = Settings.from_env(data_dir=args.data_dir, rate_limit_qps=0)
    uvicorn.run(create_app(Runtime(settings)), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
