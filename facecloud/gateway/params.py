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
            name = ".".join(path)
            raise ApiError(
                "InvalidParameter", f"The parameter `{name}` conflicts with another.", f"参数 `{name}` 与其他参数冲突。"
            )
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


# pydantic's messages are English: the zh-CN text of the common kinds (others get a generic one).
_ZH_BY_KIND = {
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "string_type": "应为字符串",
    "bool_type": "应为布尔值",
    "bool_parsing": "应为布尔值",
    "list_type": "应为数组",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "string_too_long": "长度不能超过 {max_length} 个字符",
    "string_too_short": "长度不能少于 {min_length} 个字符",
    "too_long": "最多 {max_length} 项",
    "too_short": "至少 {min_length} 项",
    "greater_than_equal": "必须大于等于 {ge}",
    "greater_than": "必须大于 {gt}",
    "less_than_equal": "必须小于等于 {le}",
    "less_than": "必须小于 {lt}",
    "literal_error": "必须是 {expected} 之一",
    "string_pattern_mismatch": "不符合格式 {pattern}",
}


def _zh_reason(kind: str, context: dict[str, Any]) -> str:
    template = _ZH_BY_KIND.get(kind, "取值不合法")
    try:
        return template.format(**context)
    except (KeyError, IndexError):
        return template.split(" {")[0]


def _api_error(exc: ValidationError) -> ApiError:
    first = exc.errors(include_url=False)[0]
    field = ".".join(str(p) for p in first["loc"]) or "request"
    kind = first["type"]
    reason_zh = _zh_reason(kind, first.get("ctx") or {})
    if kind in _MISSING:
        return ApiError("MissingParameter", f"The parameter `{field}` is missing.", f"缺少参数 `{field}`。")
    if kind.endswith(_WRONG_TYPE_SUFFIXES):
        return ApiError(
            "InvalidParameter",
            f"The parameter `{field}` has a wrong type: {first['msg']}.",
            f"参数 `{field}` 类型错误：{reason_zh}。",
        )
    return ApiError(
        "InvalidParameterValue",
        f"The value of `{field}` is invalid: {first['msg']}.",
        f"参数 `{field}` 取值错误：{reason_zh}。",
    )
