"""The Try-it page's code, run for real: the Python snippet with Tencent's Python SDK, the Node.js snippet with
Tencent's Node SDK (tests/clients/node_modules), the tccli lines with tccli (.venv-tccli), all against a live server.
A photo larger than one command-line argument may be (128 KiB) goes through each."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from facecloud.accounts import Credentials
from facecloud.console.pages_try import _fields, _shown_fields
from facecloud.console.snippets import snippets
from tests.conftest import DATA, REPO, LiveServer, need_data

NODE_MODULES = REPO / "tests" / "clients" / "node_modules"
TCCLI_BIN = REPO / ".venv-tccli" / "bin"
LARGE_PHOTO = DATA / "verify-deepface" / "images" / "img4.jpg"


@pytest.fixture(scope="module")
def account(console_server: LiveServer) -> Credentials:
    need_data("verify-deepface")
    need_data("verify-johns")
    creds = console_server.new_account("snippets")
    sdk = console_server.client(creds)
    sdk.call_json("CreateGroup", {"GroupId": "staff", "GroupName": "Staff"})
    image = base64.b64encode(LARGE_PHOTO.read_bytes()).decode()
    sdk.call_json("CreatePerson", {"GroupId": "staff", "PersonId": "p1", "PersonName": "P1", "Image": image})
    return creds


def _workdir(tmp_path: Path) -> Path:
    assert LARGE_PHOTO.stat().st_size > 128 * 1024
    shutil.copyfile(LARGE_PHOTO, tmp_path / "photo.jpg")  # a temporary folder, as a user's would be
    shutil.copyfile(LARGE_PHOTO, tmp_path / "photo-b.jpg")
    return tmp_path


def _code(action: str, language: str, server: LiveServer) -> str:
    fields = _fields(action, ["<photo>", "<photo>"], "staff")
    return snippets(action, _shown_fields(fields), {"host": server.endpoint, "scheme": "http"})[language]


def _run(command: list[str], cwd: Path, creds: Credentials, **env: str) -> dict:
    keys = {"TENCENTCLOUD_SECRET_ID": creds.secret_id, "TENCENTCLOUD_SECRET_KEY": creds.secret_key}
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, **keys, **env}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        return json.loads(done.stdout)  # tccli: one indented document
    except json.JSONDecodeError:
        return json.loads(done.stdout.strip().splitlines()[-1])  # the SDK programs: one line, last


def _check(action: str, answer: dict) -> None:
    answer = answer.get("Response", answer)
    assert "Error" not in answer, answer
    if action == "DetectFace":
        assert answer["FaceInfos"] and answer["FaceInfos"][0]["FaceAttributesInfo"]["Age"] is not None
    if action == "CompareFace":
        assert answer["Score"] == 100
    if action == "SearchPersons":
        assert answer["Results"][0]["Candidates"][0]["PersonId"] == "p1"


ACTIONS = ("DetectFace", "CompareFace", "SearchPersons")


@pytest.mark.parametrize("action", ACTIONS)
def test_python_snippet(action: str, account: Credentials, console_server: LiveServer, tmp_path: Path) -> None:
    folder = _workdir(tmp_path)
    (folder / "snippet.py").write_text(_code(action, "python", console_server))
    python = str(REPO / ".venv" / "bin" / "python")
    _check(action, _run([python, "snippet.py"], folder, account))


@pytest.mark.clients
@pytest.mark.parametrize("action", ACTIONS)
def test_node_snippet(action: str, account: Credentials, console_server: LiveServer, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "tencentcloud-sdk-nodejs").is_dir():
        pytest.skip("Node.js or tests/clients/node_modules missing: run scripts/install.sh --test")
    folder = _workdir(tmp_path)
    (folder / "snippet.js").write_text(_code(action, "node", console_server))
    _check(action, _run([node, "snippet.js"], folder, account, NODE_PATH=str(NODE_MODULES)))


@pytest.mark.clients
@pytest.mark.parametrize("action", ACTIONS)
def test_tccli_snippet(action: str, account: Credentials, console_server: LiveServer, tmp_path: Path) -> None:
    if not (TCCLI_BIN / "tccli").exists():
        pytest.skip("tccli missing at .venv-tccli: run scripts/install.sh --test")
    folder = _workdir(tmp_path)
    path = f"{TCCLI_BIN}:{os.environ.get('PATH', '')}"
    _check(action, _run(["bash", "-c", _code(action, "tccli", console_server)], folder, account, PATH=path))
