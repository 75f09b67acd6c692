"""Try it, in a real browser: each action on real photos, its answer drawn on the photo, the exact JSON response,
the SDK code, and the call billed like the same call made with the SDK."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import DATA, LiveServer, need_data
from tests.console.conftest import ConsoleBrowser

JOHNS = DATA / "verify-johns" / "images"


def _photos(person: str) -> list[str]:
    return [str(p) for p in sorted((JOHNS / person).glob("*.jpg"))]


def _calls(server: LiveServer, secret_id: str, service: str) -> int:
    account_id = server.runtime.accounts.find(secret_id).id
    usage = server.runtime.billing.usage_summary(account_id)
    return {row["service"]: row["calls"] for row in usage["services"]}.get(service, 0)


def _run(console: ConsoleBrowser, action: str, photos: list[str], group: str | None = None) -> dict:
    console.goto("/console/try")
    console.page.select_option("#try-action", action)
    console.page.set_input_files("#try-image-a", photos[0])
    if len(photos) > 1:
        console.page.set_input_files("#try-image-b", photos[1])
    if group:
        console.page.select_option("#try-group", group)
    console.page.click("#try-run")
    expect(console.page.locator("#try-result")).to_have_attribute("data-action", action)
    return json.loads(console.text("#response-json"))


def _check_snippets(console: ConsoleBrowser, action: str) -> None:
    assert f"client.{action}(request)" in console.page.locator("#snippet-python").text_content()
    assert f"client.{action}(params)" in console.page.locator("#snippet-node").text_content()
    assert f"tccli iai {action}" in console.page.locator("#snippet-tccli").text_content()


@pytest.mark.browser
@pytest.mark.parametrize(
    ("action", "service", "drawn"),
    [
        ("DetectFace", "detect", "svg.drawn rect.face-box"),
        ("AnalyzeFace", "landmarks", "svg.drawn circle.landmark"),
        ("CompareFace", "compare", "svg.drawn text.caption-label"),
    ],
)
def test_try_image_actions(
    action: str, service: str, drawn: str, console: ConsoleBrowser, console_server: LiveServer
) -> None:
    need_data("verify-johns")
    creds = console_server.new_account(f"try-{action}")
    console.sign_in(creds)
    before = _calls(console_server, creds.secret_id, service)
    photos = _photos("John_Salley")[:2] if action == "CompareFace" else _photos("John_Salley")[:1]

    body = _run(console, action, photos)["Response"]

    assert "Error" not in body, body
    assert body["RequestId"].startswith("console-")
    expect(console.page.locator(drawn).first).to_be_visible()
    if action == "DetectFace":
        assert console.page.locator("rect.face-box").count() == len(body["FaceInfos"]) >= 1
        assert console.page.locator("rect.face-box").first.get_attribute("width") == str(body["FaceInfos"][0]["Width"])
    if action == "AnalyzeFace":
        assert console.page.locator("circle.landmark").count() == 90 * len(body["FaceShapeSet"])
    if action == "CompareFace":
        assert console.page.locator("svg.drawn").count() == 2
        assert str(body["Score"]) in console.text(".drawn-caption")
    _check_snippets(console, action)
    assert console.page.locator("#metering-note").is_visible()
    assert _calls(console_server, creds.secret_id, service) == before + 1  # billed like the SDK's call


@pytest.mark.browser
def test_try_search_persons_shows_candidates_with_their_faces(
    console: ConsoleBrowser, console_server: LiveServer
) -> None:
    need_data("verify-johns")
    creds = console_server.new_account("try-search")
    sdk = console_server.client(creds)
    sdk.call_json("CreateGroup", {"GroupId": "staff", "GroupName": "Staff"})
    for person in ("John_Salley", "John_Savage"):
        image = base64.b64encode(Path(_photos(person)[0]).read_bytes()).decode()
        sdk.call_json("CreatePerson", {"GroupId": "staff", "PersonId": person, "PersonName": person, "Image": image})
    console.sign_in(creds)
    before = _calls(console_server, creds.secret_id, "search")

    body = _run(console, "SearchPersons", [_photos("John_Salley")[3]], group="staff")["Response"]

    assert body["Results"][0]["Candidates"][0]["PersonId"] == "John_Salley"
    expect(console.page.locator("svg.drawn rect.face-box")).to_have_count(len(body["Results"]))
    assert "John_Salley" in (console.page.locator("svg.drawn text.box-label").first.text_content() or "")
    top = console.page.locator("#candidates li").first
    assert top.get_attribute("data-person") == "John_Salley"
    thumb = top.locator("img.thumb")
    expect(thumb).to_be_visible()
    assert thumb.evaluate("img => img.complete && img.naturalWidth > 0")
    _check_snippets(console, "SearchPersons")
    assert _calls(console_server, creds.secret_id, "search") == before + 1
    console.screenshot("try-search")


@pytest.mark.browser
def test_try_detect_live_face(console: ConsoleBrowser, console_server: LiveServer) -> None:
    need_data("liveness-samples")
    creds = console_server.new_account("try-live")
    console.sign_in(creds)
    before = _calls(console_server, creds.secret_id, "liveness")

    body = _run(console, "DetectLiveFace", [str(DATA / "liveness-samples" / "image_T1.jpg")])["Response"]

    assert "Error" not in body, body
    caption = console.text(".drawn-caption")
    assert str(body["Score"]) in caption
    expect(console.page.locator("svg.drawn text.caption-label")).to_be_visible()
    _check_snippets(console, "DetectLiveFace")
    assert _calls(console_server, creds.secret_id, "liveness") == before + 1


@pytest.mark.browser
def test_try_refusal_shows_the_tencent_error(console: ConsoleBrowser, console_server: LiveServer) -> None:
    need_data("verify-johns")
    creds = console_server.new_account("try-refusal")
    console.sign_in(creds)
    body = _run(console, "SearchPersons", _photos("John_Salley")[:1])["Response"]  # the account has no group
    assert body["Error"]["Code"] in ("MissingParameter", "InvalidParameterValue.GroupIdNotExist")
    assert body["Error"]["Code"] in console.text("#try-error")


@pytest.mark.browser
def test_try_without_a_photo_says_which_is_missing_and_bills_nothing(
    console: ConsoleBrowser, console_server: LiveServer
) -> None:
    creds = console_server.new_account("try-empty")
    console.sign_in(creds)
    console.goto("/console/try")
    console.page.select_option("#try-action", "CompareFace")
    console.page.click("#try-run")
    console.page.wait_for_url(re.compile(r".*/console/try$"))
    assert "CompareFace needs two photos" in console.text(".notice-error")
    assert _calls(console_server, creds.secret_id, "compare") == 0
