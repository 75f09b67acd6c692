"""{"Response": ...} envelopes. Always HTTP 200 and exactly `application/json`: the SDK relies on both."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from facecloud.errors import ApiError


def _json_response(payload: dict[str, Any]) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    return Response(body, status_code=200, media_type="application/json")


def success(fields: dict[str, Any], request_id: str) -> Response:
    return _json_response({"Response": {**fields, "RequestId": request_id}})


def failure(error: ApiError, request_id: str, language: str) -> Response:
    message = error.message_for(language)
    return _json_response({"Response": {"Error": {"Code": error.code, "Message": message}, "RequestId": request_id}})
