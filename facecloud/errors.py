"""Domain errors carrying a Tencent Cloud error code.

Every part raises ApiError; only the gateway turns it into a {"Response": {"Error": ...}} envelope."""

from __future__ import annotations

# Default messages per code: (en-US, zh-CN). A raise site may pass a more precise message.
DEFAULT_MESSAGES: dict[str, tuple[str, str]] = {
    "AuthFailure.SignatureFailure": (
        "The provided credentials could not be validated.",
        "请求签名验证失败。",
    ),
    "AuthFailure.SignatureExpire": (
        "Signature expired: the request timestamp is outside the allowed window.",
        "签名过期。",
    ),
    "AuthFailure.SecretIdNotFound": ("The SecretId was not found or is disabled.", "密钥不存在或已被禁用。"),
    "AuthFailure.InvalidAuthorization": (
        "The Authorization header is malformed.",
        "请求头部的 Authorization 不符合腾讯云标准。",
    ),
    "AuthFailure.InvalidSecretId": ("Invalid SecretId.", "密钥非法。"),
    "AuthFailure.TokenFailure": ("Token error.", "token 错误。"),
    "InvalidAction": ("The action does not exist.", "接口不存在。"),
    "InvalidParameter": ("Invalid parameter.", "参数错误。"),
    "InvalidParameterValue": ("Invalid parameter value.", "参数取值错误。"),
    "MissingParameter": ("A required parameter is missing.", "缺少参数。"),
    "NoSuchVersion": ("The API version does not exist.", "接口版本不存在。"),
    "UnsupportedOperation": ("Unsupported operation.", "操作不支持。"),
    "RequestLimitExceeded": ("Request rate limit exceeded.", "请求的次数超过了频率限制。"),
    "LimitExceeded": ("Quota limit exceeded.", "超过配额限制。"),
    "ResourceNotFound": ("The resource does not exist.", "资源不存在。"),
    "ResourceUnavailable": ("The resource is unavailable.", "资源不可用。"),
    "ResourceUnavailable.InArrears": (
        "The account is in arrears: top up the balance to resume billable calls.",
        "账号已欠费，请充值后再调用计费接口。",
    ),
    "InternalError": ("Internal error.", "内部错误。"),
    "FailedOperation": ("Operation failed.", "操作失败。"),
    "FailedOperation.RequestTooLarge": ("The request body is too large.", "请求包体过大。"),
}


class ApiError(Exception):
    """An error the API answers with. `code` is a Tencent error code such as 'InvalidParameterValue.NoFaceInPhoto'."""

    def __init__(self, code: str, message: str | None = None, message_zh: str | None = None) -> None:
        super().__init__(f"{code}: {message or ''}")
        self.code = code
        self.message = message
        self.message_zh = message_zh

    def message_for(self, language: str | None) -> str:
        defaults = DEFAULT_MESSAGES.get(self.code) or DEFAULT_MESSAGES.get(self.code.split(".")[0], ("", ""))
        if language == "zh-CN":
            return self.message_zh or self.message or defaults[1] or self.code
        return self.message or defaults[0] or self.code
