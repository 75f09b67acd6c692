"""The small JPEG the gallery keeps per face: written with the face, shown by the console, deleted with the face,
and not written at all when FACECLOUD_FACE_THUMBNAIL_PX=0."""

from __future__ import annotations

import base64
import dataclasses
import io

import pytest
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import func, select

from facecloud.gallery.thumbnails import ThumbnailRow
from tests.conftest import DATA, LiveServer, need_data
from tests.console.conftest import ConsoleBrowser


def _image(person: str, index: int = 0) -> str:
    photo = sorted((DATA / "verify-johns" / "images" / person).glob("*.jpg"))[index]
    return base64.b64encode(photo.read_bytes()).decode()


def _thumbnails(server: LiveServer) -> int:
    with server.runtime.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(ThumbnailRow)) or 0)


@pytest.fixture
def sdk_and_account(console_server: LiveServer):  # type: ignore[no-untyped-def]
    need_data("verify-johns")
    creds = console_server.new_account("thumbs")
    sdk = console_server.client(creds)
    sdk.call_json("CreateGroup", {"GroupId": "g", "GroupName": "G"})
    return sdk, creds, console_server.runtime.accounts.find(creds.secret_id).id


def test_a_thumbnail_is_kept_per_face_and_deleted_with_it(console_server: LiveServer, sdk_and_account) -> None:  # type: ignore[no-untyped-def]
    sdk, _, account_id = sdk_and_account
    start = _thumbnails(console_server)
    created = sdk.call_json(
        "CreatePerson", {"GroupId": "g", "PersonId": "p", "PersonName": "P", "Image": _image("John_Simm")}
    )
    face_id = created["Response"]["FaceId"]
    jpeg = console_server.runtime.gallery.face_thumbnail(account_id, face_id)
    assert jpeg is not None and jpeg[:2] == b"\xff\xd8" and len(jpeg) < 10_000
    with Image.open(io.BytesIO(jpeg)) as picture:
        assert max(picture.size) <= console_server.runtime.settings.face_thumbnail_px
    added = sdk.call_json("CreateFace", {"PersonId": "p", "Images": [_image("John_Simm", 1)]})["Response"]
    assert _thumbnails(console_server) == start + 2
    assert console_server.runtime.gallery.face_thumbnail(account_id + 10_000, face_id) is None  # other accounts: none

    sdk.call_json("DeleteFace", {"PersonId": "p", "FaceIds": added["SucFaceIds"]})
    assert _thumbnails(console_server) == start + 1
    sdk.call_json("DeletePerson", {"PersonId": "p"})
    assert _thumbnails(console_server) == start
    assert console_server.runtime.gallery.face_thumbnail(account_id, face_id) is None

    sdk.call_json("CreatePerson", {"GroupId": "g", "PersonId": "q", "PersonName": "Q", "Image": _image("John_Simm")})
    sdk.call_json("DeleteGroup", {"GroupId": "g"})
    assert _thumbnails(console_server) == start


def test_thumbnails_can_be_turned_off(console_server: LiveServer, sdk_and_account) -> None:  # type: ignore[no-untyped-def]
    sdk, _, account_id = sdk_and_account
    runtime = console_server.runtime
    kept = runtime.settings
    runtime.settings = dataclasses.replace(kept, face_thumbnail_px=0)
    try:
        start = _thumbnails(console_server)
        created = sdk.call_json(
            "CreatePerson", {"GroupId": "g", "PersonId": "off", "PersonName": "Off", "Image": _image("John_Simm")}
        )
        assert _thumbnails(console_server) == start
        assert runtime.gallery.face_thumbnail(account_id, created["Response"]["FaceId"]) is None
    finally:
        runtime.settings = kept


@pytest.mark.browser
def test_the_persons_page_shows_each_face(console: ConsoleBrowser, console_server: LiveServer, sdk_and_account) -> None:  # type: ignore[no-untyped-def]
    sdk, creds, _ = sdk_and_account
    sdk.call_json(
        "CreatePerson", {"GroupId": "g", "PersonId": "two", "PersonName": "Two", "Image": _image("John_Simm")}
    )
    sdk.call_json("CreateFace", {"PersonId": "two", "Images": [_image("John_Simm", 2)]})
    console.sign_in(creds)
    console.goto("/console/groups/g")
    thumbs = console.page.locator("#persons tr[data-person='two'] img.face-thumb")
    expect(thumbs).to_have_count(2)
    for index in range(2):
        assert thumbs.nth(index).evaluate("img => img.complete && img.naturalWidth > 0")
    response = console.page.request.get(console_server.url + thumbs.first.get_attribute("src"))
    assert response.headers["content-type"] == "image/jpeg"
    assert console.text("#face-count").strip() == "2"
