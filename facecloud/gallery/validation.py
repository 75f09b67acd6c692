"""Tencent's rules for ids, names and descriptions, each failing with its own error code."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from facecloud.errors import ApiError

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-%@#&_]+$")
MAX_ID_BYTES = 64
MAX_NAME_CHARS = 60
MAX_TAG_CHARS = 40
MAX_DESCRIPTIONS = 5
MAX_DESCRIPTION_NAME_CHARS = 30
MAX_DESCRIPTION_VALUE_CHARS = 60
FACE_MODEL_VERSIONS = ("2.0", "3.0")


def _bad(code: str, message: str, message_zh: str) -> ApiError:
    return ApiError(f"InvalidParameterValue.{code}", message, message_zh)


def _printable(value: str) -> bool:
    return value.strip() != "" and all(ch.isprintable() for ch in value)


@dataclass(frozen=True)
class _TextRule:
    """A kind of text field: a length limit (in `unit`) and a legality test, failing with <Field>TooLong and
    <Field>Illegal."""

    length: Callable[[str], int]
    limit: int
    unit: tuple[str, str]  # en, zh
    legal: Callable[[str], bool]
    illegal: tuple[str, str]  # en, zh; {field} is the field's name

    def check(self, field: str, value: str) -> str:
        if self.length(value) > self.limit:
            raise _bad(
                f"{field}TooLong",
                f"{field} is longer than {self.limit} {self.unit[0]}.",
                f"{field} 长度超过 {self.limit} {self.unit[1]}。",
            )
        if not self.legal(value):
            raise _bad(f"{field}Illegal", self.illegal[0].format(field=field), self.illegal[1].format(field=field))
        return value


_ID_RULE = _TextRule(
    lambda value: len(value.encode()),
    MAX_ID_BYTES,
    ("bytes", "字节"),
    lambda value: ID_PATTERN.match(value) is not None,
    ("{field} may contain only letters, digits and -%@#&_.", "{field} 只能包含字母、数字和 -%@#&_。"),
)
_NAME_RULE = _TextRule(
    len,
    MAX_NAME_CHARS,
    ("characters", "个字符"),
    _printable,
    ("{field} must be 1 to 60 printable characters.", "{field} 须为 1 到 60 个可打印字符。"),
)


def group_id(value: str) -> str:
    return _ID_RULE.check("GroupId", value)


def person_id(value: str) -> str:
    return _ID_RULE.check("PersonId", value)


def group_name(value: str) -> str:
    return _NAME_RULE.check("GroupName", value)


def person_name(value: str) -> str:
    return _NAME_RULE.check("PersonName", value)


def tag(value: str) -> str:
    if len(value) > MAX_TAG_CHARS:
        raise _bad("GroupTagTooLong", "Tag is longer than 40 characters.", "Tag 长度超过 40 个字符。")
    if value and not all(ch.isprintable() for ch in value):
        raise _bad("GroupTagIllegal", "Tag contains characters that are not printable.", "Tag 含有不可打印字符。")
    return value


def gender(value: int, allow_unset: bool = True) -> int:
    if value not in ((0, 1, 2) if allow_unset else (1, 2)):
        raise _bad(
            "PersonGenderIllegal",
            "Gender is 0 (unset), 1 (male) or 2 (female).",
            "Gender 取值为 0（未设置）、1（男）或 2（女）。",
        )
    return value


def face_model_version(value: str) -> str:
    if value not in FACE_MODEL_VERSIONS:
        raise _bad("FaceModelVersionIllegal", "FaceModelVersion is 2.0 or 3.0.", "FaceModelVersion 取值为 2.0 或 3.0。")
    return value


def group_descriptions(names: list[str]) -> list[str]:
    if len(names) > MAX_DESCRIPTIONS:
        raise _bad("GroupExDescriptionsExceed", "At most 5 GroupExDescriptions.", "GroupExDescriptions 最多 5 个。")
    for name in names:
        if len(name) > MAX_DESCRIPTION_NAME_CHARS:
            raise _bad(
                "GroupExDescriptionsNameTooLong",
                "A GroupExDescription is longer than 30 characters.",
                "GroupExDescription 长度超过 30 个字符。",
            )
        if not _printable(name):
            raise _bad(
                "GroupExDescriptionsNameIllegal",
                "A GroupExDescription must be 1 to 30 printable characters.",
                "GroupExDescription 须为 1 到 30 个可打印字符。",
            )
    if len(set(names)) != len(names):
        raise _bad(
            "GroupExDescriptionsNameIdentical",
            "GroupExDescriptions must differ from each other.",
            "GroupExDescriptions 不能重复。",
        )
    return names


def updated_group_descriptions(current: list[str], updates: list[tuple[int, str]]) -> list[str]:
    """Applies (index, value) updates to a group's description fields: an index names a field or adds the next."""
    names = list(current)
    for index, value in updates:
        if index < 0 or index >= MAX_DESCRIPTIONS:
            raise _bad("GroupExDescriptionsExceed", "At most 5 GroupExDescriptions.", "人员库自定义描述字段最多 5 个。")
        if index > len(names):
            raise ApiError(
                "InvalidParameterValue",
                "GroupExDescriptionIndex skips a field: add fields in order.",
                "GroupExDescriptionIndex 跳过了字段：请按顺序添加字段。",
            )
        names[index : index + 1] = [value]
    if len(set(names)) != len(names):
        raise ApiError(
            "FailedOperation.DuplicatedGroupDescription",
            "GroupExDescriptions must differ.",
            "人员库自定义描述字段名称不能重复。",
        )
    return group_descriptions(names)


def person_descriptions(current: list[str], updates: list[tuple[int, str]], fields: int) -> list[str]:
    """Applies (index, value) updates to a person's descriptions in a group that has `fields` description fields."""
    values = (list(current) + [""] * fields)[:fields]
    seen: set[int] = set()
    for index, value in updates:
        if index < 0 or index >= fields:
            raise _bad(
                "PersonExDescriptionInfosExceed",
                "PersonExDescriptionIndex names no description field of the group.",
                "PersonExDescriptionIndex 不对应人员库的任何描述字段。",
            )
        if index in seen:
            raise _bad(
                "PersonExDescriptionsNameIdentical",
                "A PersonExDescriptionIndex is given twice.",
                "PersonExDescriptionIndex 重复。",
            )
        if len(value) > MAX_DESCRIPTION_VALUE_CHARS:
            raise _bad(
                "PersonExDescriptionsNameTooLong",
                "A PersonExDescription is longer than 60 characters.",
                "PersonExDescription 长度超过 60 个字符。",
            )
        seen.add(index)
        values[index] = value
    return values
