"""The same call as code: Tencent's Python SDK, its Node SDK, and tccli, aimed at this server.

Fields named `<ImageX>` stand for a photo read from a file (photo.jpg, or photo-b.jpg for ImageB)."""

from __future__ import annotations

import json
from typing import Any

PHOTO_FILES = {"Image": "photo.jpg", "ImageA": "photo.jpg", "ImageB": "photo-b.jpg"}


def snippets(action: str, fields: dict[str, Any], endpoint: dict[str, str]) -> dict[str, str]:
    return {
        "python": python_snippet(action, fields, endpoint),
        "node": node_snippet(action, fields, endpoint),
        "tccli": tccli_snippet(action, fields, endpoint),
    }


def _photo_fields(fields: dict[str, Any]) -> dict[str, str]:
    return {k: PHOTO_FILES.get(k, "photo.jpg") for k, v in fields.items() if v == f"<{k}>"}


def _plain_fields(fields: dict[str, Any]) -> dict[str, Any]:
    photos = _photo_fields(fields)
    return {k: v for k, v in fields.items() if k not in photos}


def python_snippet(action: str, fields: dict[str, Any], endpoint: dict[str, str]) -> str:
    photos = _photo_fields(fields)
    lines = [
        "import base64, json, os",
        "",
        "from tencentcloud.common import credential",
        "from tencentcloud.common.profile.client_profile import ClientProfile",
        "from tencentcloud.common.profile.http_profile import HttpProfile",
        "from tencentcloud.iai.v20200303 import iai_client, models",
        "",
        'cred = credential.Credential(os.environ["TENCENTCLOUD_SECRET_ID"], os.environ["TENCENTCLOUD_SECRET_KEY"])',
        f'http = HttpProfile(endpoint="{endpoint["host"]}", protocol="{endpoint["scheme"]}")',
        'client = iai_client.IaiClient(cred, "ap-guangzhou", ClientProfile(httpProfile=http))',
        "",
        f"params = {json.dumps(_plain_fields(fields), ensure_ascii=False)}",
    ]
    for name, path in photos.items():
        lines.append(f'params["{name}"] = base64.b64encode(open("{path}", "rb").read()).decode()')
    lines += [
        f"request = models.{action}Request()",
        "request.from_json_string(json.dumps(params))",
        f"print(client.{action}(request).to_json_string())",
    ]
    return "\n".join(lines)


def node_snippet(action: str, fields: dict[str, Any], endpoint: dict[str, str]) -> str:
    photos = _photo_fields(fields)
    params = json.dumps(_plain_fields(fields), ensure_ascii=False)
    lines = [
        'const fs = require("fs");',
        'const tencentcloud = require("tencentcloud-sdk-nodejs-iai");',
        "",
        "const client = new tencentcloud.iai.v20200303.Client({",
        "  credential: {",
        "    secretId: process.env.TENCENTCLOUD_SECRET_ID,",
        "    secretKey: process.env.TENCENTCLOUD_SECRET_KEY,",
        "  },",
        '  region: "ap-guangzhou",',
        f'  profile: {{ httpProfile: {{ endpoint: "{endpoint["host"]}", protocol: "{endpoint["scheme"]}://" }} }},',
        "});",
        f"const params = {params};",
    ]
    for name, path in photos.items():
        lines.append(f'params.{name} = fs.readFileSync("{path}").toString("base64");')
    lines.append(f"client.{action}(params).then((data) => console.log(JSON.stringify(data)), console.error);")
    return "\n".join(lines)


def tccli_snippet(action: str, fields: dict[str, Any], endpoint: dict[str, str]) -> str:
    parts = [f"tccli iai {action} --region ap-guangzhou --endpoint {endpoint['host']} --cli-unfold-argument"]
    for name, path in _photo_fields(fields).items():
        parts.append(f'--{name} "$(base64 -w0 {path})"')
    for name, value in _plain_fields(fields).items():
        values = value if isinstance(value, list) else [value]
        parts.append(f"--{name} " + " ".join(_shell_word(v) for v in values))
    return " \\\n    ".join(parts)


def _shell_word(value: Any) -> str:
    text = str(value)
    return text if text.replace("-", "").replace("_", "").isalnum() else "'" + text.replace("'", "'\\''") + "'"
