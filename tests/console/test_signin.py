"""Sign-in, sessions and CSRF in a real browser."""

from __future__ import annotations

import re

from tests.console.conftest import ConsoleBrowser


def test_wrong_secret_key_is_refused(console: ConsoleBrowser, console_server) -> None:  # type: ignore[no-untyped-def]
    creds = console_server.new_account("signin-wrong")
    console.goto("/console/signin")
    console.page.fill("input[name=secret_id]", creds.secret_id)
    console.page.fill("input[name=secret_key]", "not-the-secret-key")
    with console.page.expect_response(re.compile(r".*/console/signin$")) as answer:
        console.page.click("#account-form button[type=submit]")
    assert answer.value.status == 401
    assert "Sign-in refused" in console.text("#signin-error")
    # Still signed out: a console page sends us back to the sign-in form.
    console.goto("/console/keys")
    assert "/console/signin" in console.page.url


def test_sign_in_and_out(console: ConsoleBrowser, console_server) -> None:  # type: ignore[no-untyped-def]
    creds = console_server.new_account("signin-ok")
    console.sign_in(creds)
    assert str(creds.app_id) in console.text(".who")
    cookie = next(c for c in console.page.context.cookies() if c["name"] == "facecloud_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    console.page.click(".who button[type=submit]")
    console.page.wait_for_url(re.compile(r".*/console/signin$"))
    console.goto("/console/keys")
    assert "/console/signin" in console.page.url


def test_forged_csrf_token_is_refused(console: ConsoleBrowser, console_server) -> None:  # type: ignore[no-untyped-def]
    creds = console_server.new_account("csrf")
    console.sign_in(creds)
    console.goto("/console/keys")
    console.page.eval_on_selector("#rotate", "b => b.form.querySelector('[name=csrf_token]').value = 'forged'")
    with console.page.expect_response(re.compile(r".*/console/keys/rotate$")) as answer:
        console.page.click("#rotate")
    assert answer.value.status == 403
    assert "CSRF" in console.text("main")
    # Nothing happened: the account still has its single, active key.
    keys = console_server.runtime.accounts.keys(console_server.runtime.accounts.find(creds.secret_id).id)
    assert [k["Status"] for k in keys] == ["active"]


def test_rotate_key_keeps_the_session(console: ConsoleBrowser, console_server) -> None:  # type: ignore[no-untyped-def]
    creds = console_server.new_account("rotate")
    console.sign_in(creds)
    console.goto("/console/keys")
    console.page.click("#rotate")
    new_secret_id = console.text("#new-secret-id").strip()
    assert new_secret_id != creds.secret_id and console.text("#new-secret-key").strip()
    console.goto("/console/keys")  # the session moved to the new key; the old one is disabled
    assert "/console/keys" in console.page.url
    rows = console.text("#keys")
    assert "disabled" in rows and new_secret_id in rows


def test_operator_sign_in(console: ConsoleBrowser) -> None:
    console.goto("/console/signin?tab=operator")
    console.page.fill("input[name=password]", "wrong")
    console.page.click("#operator-form button[type=submit]")
    assert "wrong operator password" in console.text("#signin-error")
    console.sign_in_operator()
    assert "Operator" in console.text(".who")
