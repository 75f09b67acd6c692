"""Turning a request body or a flattened query into the typed request of an action."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError

from facecloud.errors import ApiError
from facecloud.gateway.registry import TencentRequest

_MISSING = {"missing"}
_WRONG_TYPE_SUFFIXES = ("_type", "_parsing")


def parse_json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        params = json.loads(body)
    except RecursionError:
        raise ApiError(
            "InvalidParameter", "The request body nests JSON too deeply.", "请求包体 JSON 嵌套过深。"
        ) from None
    # ValueError also covers undecodable bytes and integers longer than Python converts (4300 digits).
    except ValueError as exc:
        raise ApiError(
            "InvalidParameter",
            f"The request body is not valid JSON: {exc}",
            f"请求包体不是合法的 JSON：{exc}",
        ) from None
    if not isinstance(params, dict):
        raise ApiError("InvalidParameter", "The request body must be a JSON object.", "请求包体必须是 JSON 对象。")
    return params


def parse_flat_query(query: str) -> dict[str, Any]:
    """`GroupIds.0=a&GroupIds.1=b&Foo.Bar=1` -> {"GroupIds": ["a", "b"], "Foo": {"Bar": "1"}}."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in {
            "Action",
            "Version",
            "Region",
            "Timestamp",
            "Nonce",
            "SecretId",
            "Signature",
            "SignatureMethod",
            "Token",
            "Language",
            "RequestClient",
        }:
            continue
        _assign(root, key.split("."), value)
    return _lists_from_indices(root)


def _assign(node: dict[str, Any], path: list[str], value: str) -> None:
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ApiError("InvalidParameter", f"The parameter `{'.'.join(path)}` conflicts with another.")
        node = child
    node[path[-1]] = value


def _lists_from_indices(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _lists_from_indices(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def validate(model: type[TencentRequest], params: dict[str, Any]) -> TencentRequest:
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise _api_error(exc) from None


def _api_error(exc: ValidationError) -> ApiError:
    first = exc.errors(include_url=False)[0]
    field = ".".join(str(p) for p in first["loc"]) or "request"
    kind = first["type"]
    if kind in _MISSING:
        return ApiError("MissingParameter", f"The parameter `{field}` is missing.", f"缺少参数 `{field}`。")
    if kind.endswith(_WRONG_TYPE_SUFFIXES):
        return ApiError(
            "InvalidParameter",
            f"The parameter `{field}` has a wrong type: {first['msg']}.",
            f"参数 `{field}` 类型错误：{first['msg']}。",
        )
    return ApiError(
        "InvalidParameterValue",
        f"The value of `{field}` is invalid: {first['msg']}.",
        f"参数 `{field}` 取值错误：{first['msg']}。",
    )
