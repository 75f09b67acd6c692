"""Every error speaks the request's language (zh-CN by default, en-US on request) and names the field at fault."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from tests.conftest import REPO


def api_errors_without_chinese() -> list[str]:
    """ApiError(code, message) calls with an English message and no zh-CN one. The command line speaks English
    (cli_common.fail prints en-US), so its own files are left out."""
    missing = []
    for path in sorted((REPO / "facecloud").rglob("*.py")):
        if path.name == "cli.py" or path.name == "cli_common.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            is_api_error = isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ApiError"
            if is_api_error and len(node.args) + len(node.keywords) == 2:
                missing.append(f"{Path(path).relative_to(REPO)}:{node.lineno}")
    return missing


def test_every_error_message_has_its_chinese_text():
    assert api_errors_without_chinese() == []


def _error(client, action: str, params: dict) -> TencentCloudSDKException:  # type: ignore[no-untyped-def]
    with pytest.raises(TencentCloudSDKException) as err:
        client.call_json(action, params)
    return err.value


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@pytest.mark.parametrize(
    ("action", "params", "code", "field"),
    [
        ("GetGroupInfo", {"GroupId": "nope"}, "InvalidParameterValue.GroupIdNotExist", "nope"),
        ("GetPersonBaseInfo", {"PersonId": "nobody"}, "InvalidParameterValue.PersonIdNotExist", "nobody"),
        ("CreateGroup", {"GroupId": "bad id!", "GroupName": "x"}, "InvalidParameterValue.GroupIdIllegal", "GroupId"),
        ("CreateGroup", {"GroupId": "g", "GroupName": 5}, "InvalidParameter", "GroupName"),
        ("GetGroupList", {"Limit": 5000}, "InvalidParameterValue.LimitExceed", "Limit"),
        ("CompareFace", {"UrlA": "https://127.0.0.1/a.jpg"}, "InvalidParameterValue.ImageEmpty", "ImageB"),
        ("DetectFace", {"MaxFaceNum": 0}, "InvalidParameterValue", "MaxFaceNum"),
    ],
)
def test_errors_in_both_languages_name_the_field(server, account, action, params, code, field):
    chinese = _error(server.client(account), action, params)
    english = _error(server.client(account, language="en-US"), action, params)
    assert chinese.code == english.code == code
    assert field in chinese.message and field in english.message
    assert _has_chinese(chinese.message), chinese.message
    assert not _has_chinese(english.message), english.message


def test_group_already_exists_in_chinese(client):
    client.call_json("CreateGroup", {"GroupId": "twice", "GroupName": "twice"})
    again = _error(client, "CreateGroup", {"GroupId": "twice", "GroupName": "other"})
    assert again.code == "InvalidParameterValue.GroupIdAlreadyExist" and "已存在" in again.message
