"""Sessions, CSRF, origin checks and sign-in throttling, over HTTP (no browser needed)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from facecloud.accounts import Credentials
from facecloud.console.security import COOKIE_NAME, Session, SessionCodec, SignInThrottle
from tests.conftest import LiveServer

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def web(console_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console_server.url, follow_redirects=False) as client:
        yield client


def csrf_of(web: httpx.Client, path: str = "/console/signin") -> str:
    match = CSRF.search(web.get(path).text)
    assert match
    return match.group(1)


def sign_in(web: httpx.Client, creds: Credentials) -> httpx.Response:
    return web.post(
        "/console/signin",
        data={
            "csrf_token": csrf_of(web),
            "kind": "account",
            "secret_id": creds.secret_id,
            "secret_key": creds.secret_key,
        },
    )


def test_sign_in_sets_a_strict_http_only_cookie(web: httpx.Client, console_server: LiveServer) -> None:
    answer = sign_in(web, console_server.new_account("cookie"))
    assert answer.status_code == 303 and answer.headers["location"] == "/console/usage"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain http on loopback; "auto" sets it behind https
    assert "default-src 'self'" in answer.headers["content-security-policy"]


def test_tampered_session_cookie_is_anonymous(web: httpx.Client, console_server: LiveServer) -> None:
    sign_in(web, console_server.new_account("tamper"))
    assert web.get("/console/keys").status_code == 200
    value = web.cookies[COOKIE_NAME]
    web.cookies.set(COOKIE_NAME, value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB"), path="/console")
    answer = web.get("/console/keys")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/console/signin")


def test_post_without_or_with_a_foreign_csrf_token_is_refused(web: httpx.Client, console_server: LiveServer) -> None:
    creds = console_server.new_account("csrf-http")
    sign_in(web, creds)
    assert web.post("/console/keys/rotate", data={}).status_code == 403
    with httpx.Client(base_url=console_server.url) as other:  # a valid token, but of another session
        foreign = csrf_of(other)
    assert web.post("/console/keys/rotate", data={"csrf_token": foreign}).status_code == 403
    token = csrf_of(web, "/console/keys")
    assert web.post("/console/keys/rotate", data={"csrf_token": token}).status_code == 200


def test_cross_origin_post_is_refused(web: httpx.Client, console_server: LiveServer) -> None:
    sign_in(web, console_server.new_account("origin"))
    token = csrf_of(web, "/console/keys")
    answer = web.post("/console/keys/rotate", data={"csrf_token": token}, headers={"Origin": "http://evil.example"})
    assert answer.status_code == 403


def test_next_parameter_cannot_leave_the_console(web: httpx.Client, console_server: LiveServer) -> None:
    creds = console_server.new_account("next")
    answer = web.post(
        "/console/signin",
        data={
            "csrf_token": csrf_of(web),
            "kind": "account",
            "secret_id": creds.secret_id,
            "secret_key": creds.secret_key,
            "next": "//evil.example/console/",
        },
    )
    assert answer.headers["location"] == "/console/usage"


def test_disabled_account_ends_its_sessions(web: httpx.Client, console_server: LiveServer) -> None:
    creds = console_server.new_account("disable")
    sign_in(web, creds)
    accounts = console_server.runtime.accounts
    accounts.set_status(accounts.find(creds.secret_id).id, "disabled")
    answer = web.get("/console/usage")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/signin"


def test_account_session_cannot_open_operator_pages(web: httpx.Client, console_server: LiveServer) -> None:
    sign_in(web, console_server.new_account("not-operator"))
    assert web.get("/console/operator/accounts").status_code == 403


def test_throttle_locks_after_the_limit_and_unlocks_after_the_window() -> None:
    throttle = SignInThrottle(limit=3, window_s=0.2)
    for _ in range(2):
        throttle.failed("id:x")
    assert throttle.retry_after("id:x") == 0
    throttle.failed("id:x")
    assert 0 < throttle.retry_after("id:x") <= 0.2
    assert throttle.retry_after("id:y") == 0
    import time

    time.sleep(0.25)
    assert throttle.retry_after("id:x") == 0


def test_repeated_wrong_keys_are_locked_out(console_server: LiveServer) -> None:
    creds = console_server.new_account("bruteforce")
    with httpx.Client(base_url=console_server.url) as web:
        token = csrf_of(web)
        statuses = [
            web.post(
                "/console/signin",
                data={
                    "csrf_token": token,
                    "kind": "account",
                    "secret_id": creds.secret_id,
                    "secret_key": f"guess{i}",
                },
            ).status_code
            for i in range(6)
        ]
        # Locked: even the right key is refused now.
        right = web.post(
            "/console/signin",
            data={
                "csrf_token": token,
                "kind": "account",
                "secret_id": creds.secret_id,
                "secret_key": creds.secret_key,
            },
        )
    assert statuses == [401] * 5 + [429]
    assert right.status_code == 429


def test_codec_round_trip_and_forgery() -> None:
    codec, other = SessionCodec(b"k" * 32), SessionCodec(b"o" * 32)
    session = Session()
    session.sign_in("account", 7, "AKIDx")
    assert codec.loads(codec.dumps(session)).account_id == 7
    assert codec.loads(other.dumps(session)).kind is None  # signed with another key: anonymous


def sign_in_operator(web: httpx.Client) -> httpx.Response:
    from tests.console.conftest import OPERATOR_PASSWORD

    return web.post(
        "/console/signin",
        data={"csrf_token": csrf_of(web), "kind": "operator", "password": OPERATOR_PASSWORD},
    )


def test_operator_sign_out_ends_every_operator_session(console_server: LiveServer) -> None:
    with httpx.Client(base_url=console_server.url, follow_redirects=False) as first:
        assert sign_in_operator(first).status_code == 303
        copied = first.cookies.get(COOKIE_NAME)
        with httpx.Client(base_url=console_server.url, follow_redirects=False) as second:
            second.cookies.set(COOKIE_NAME, copied, path="/console")  # a copy of the cookie, as a thief would
            assert second.get("/console/operator/accounts").status_code == 200
            token = CSRF.search(first.get("/console/operator/accounts").text).group(1)  # type: ignore[union-attr]
            assert first.post("/console/signout", data={"csrf_token": token}).status_code == 303

            refused = second.get("/console/operator/accounts")
            assert refused.status_code == 303
            assert refused.headers["location"].startswith("/console/signin")
        with httpx.Client(base_url=console_server.url, follow_redirects=False) as again:
            assert sign_in_operator(again).status_code == 303  # a new sign-in opens a session of the new generation
            assert again.get("/console/operator/accounts").status_code == 200


def test_operator_password_change_ends_operator_sessions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from facecloud.console.security import OperatorGenerations

    key = b"k" * 32
    before = OperatorGenerations(key, "old password", tmp_path).current()
    assert OperatorGenerations(key, "old password", tmp_path).valid(before)  # a restart alone changes nothing
    assert not OperatorGenerations(key, "new password", tmp_path).valid(before)
    generations = OperatorGenerations(key, "old password", tmp_path)
    generations.revoke_all()
    assert not generations.valid(before)
    assert not generations.valid(None)
