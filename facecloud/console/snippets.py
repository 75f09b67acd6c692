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
        'const tencentcloud = require("tencentcloud-sdk-nodejs");',
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
    """The request goes in a file (--cli-input-json): a photo's base64 is too long for one command-line argument.
    printf is a shell builtin, so it takes it; tccli reads TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY."""
    photos = _photo_fields(fields)
    plain = json.dumps(_plain_fields(fields), ensure_ascii=False).replace("%", "%%")
    holes = ", ".join(f'"{name}": "%s"' for name in photos)
    template = plain[:-1] + (", " if plain != "{}" and holes else "") + holes + "}"
    values = " ".join(f'"$(base64 -w0 {path})"' for path in photos.values())
    return "\n".join(
        [
            f"printf {_quoted(template)} {values} > request.json",
            f"tccli iai {action} --region ap-guangzhou --endpoint {endpoint['scheme']}://{endpoint['host']} \\",
            "    --cli-input-json file://request.json",
        ]
    )


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
