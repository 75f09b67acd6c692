"""Groups and persons in a real browser: create, list, search, face counts, delete; checked with the SDK."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.conftest import DATA, LiveServer, need_data
from tests.console.conftest import ConsoleBrowser


def test_create_search_and_delete_groups_and_persons(console: ConsoleBrowser, console_server: LiveServer) -> None:
    need_data("verify-johns")
    face = sorted((DATA / "verify-johns" / "images").rglob("*.jpg"))[0]
    creds = console_server.new_account("gallery")
    sdk = console_server.client(creds)
    sdk.call_json("CreateGroup", {"GroupId": "visitors", "GroupName": "Visitors"})  # made with the API
    console.sign_in(creds)

    console.goto("/console/groups")
    console.page.fill("#create-group-form input[name=group_id]", "staff-2026")
    console.page.fill("#create-group-form input[name=group_name]", "Staff")
    console.page.fill("#create-group-form input[name=tag]", "HQ")
    console.page.click("#create-group-form button[type=submit]")
    assert "Group staff-2026 created" in console.text(".notice-ok")
    assert {"staff-2026", "visitors"} <= set(
        console.page.locator("#groups tr[data-group]").evaluate_all("rows => rows.map(r => r.dataset.group)")
    )
    listed = sdk.call_json("GetGroupList", {})["Response"]["GroupInfos"]
    assert {g["GroupId"] for g in listed} == {"staff-2026", "visitors"}

    # Search by name (htmx swaps the table as one types).
    console.page.fill("#group-search", "visit")
    expect(console.page.locator("#groups tr[data-group]")).to_have_count(1)
    assert console.page.locator("#groups tr[data-group]").get_attribute("data-group") == "visitors"
    console.goto("/console/groups")

    console.page.click("#groups tr[data-group='staff-2026'] a")
    console.page.wait_for_url(re.compile(r".*/console/groups/staff-2026$"))
    for person_id, name in (("p-001", "Ada Lovelace"), ("p-002", "Alan Turing")):
        console.page.fill("#create-person-form input[name=person_id]", person_id)
        console.page.fill("#create-person-form input[name=person_name]", name)
        console.page.set_input_files("#create-person-form input[name=image]", str(face))
        console.page.click("#create-person-form button[type=submit]")
        assert f"Person {person_id} created" in console.text(".notice-ok")
    assert console.text("#person-count").strip() == "2"
    assert console.text("#face-count").strip() == "2"
    assert console.text("#persons tr[data-person='p-001'] td.faces").strip() == "1"
    # The console's CreatePerson is metered like the API's (个体信息管理).
    usage = console_server.runtime.billing.usage_summary(console_server.runtime.accounts.find(creds.secret_id).id)
    assert {row["service"]: row["calls"] for row in usage["services"]}.get("person_mgmt") == 2

    console.page.fill("#person-search", "turing")
    expect(console.page.locator("#persons tr[data-person]")).to_have_count(1)
    assert console.page.locator("#persons tr[data-person]").get_attribute("data-person") == "p-002"
    console.page.click("#persons tr[data-person='p-002'] .delete-person")  # htmx, after a confirm (accepted)
    console.page.wait_for_selector("#persons tr[data-person='p-002']", state="detached")
    counts = sdk.call_json("GetPersonListNum", {"GroupId": "staff-2026"})["Response"]
    assert (counts["PersonNum"], counts["FaceNum"]) == (1, 1)

    console.goto("/console/groups")
    console.page.click("#groups tr[data-group='visitors'] .delete-group")
    console.page.wait_for_selector("#groups tr[data-group='visitors']", state="detached")
    listed = sdk.call_json("GetGroupList", {})["Response"]["GroupInfos"]
    assert [g["GroupId"] for g in listed] == ["staff-2026"]
