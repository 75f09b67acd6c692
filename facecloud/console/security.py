"""Console sessions (signed cookies), CSRF tokens and sign-in throttling.

The session lives in the cookie itself, signed with a key derived from the master key: it survives restarts
and is shared by all workers without server-side state. It holds no secret: who signed in, the CSRF token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE_NAME = "facecloud_console"
SESSION_MAX_AGE_S = 12 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def derive_session_key(master_key: bytes) -> bytes:
    # A separate key per purpose: the master key itself only ever encrypts SecretKeys.
    return hmac.new(master_key, b"facecloud console session v1", hashlib.sha256).digest()


@dataclass
class Session:
    """What the cookie carries. `kind` is None (anonymous), "account" or "operator"."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    kind: str | None = None
    account_id: int | None = None
    secret_id: str | None = None
    flash: list[tuple[str, str]] = field(default_factory=list)
    changed: bool = False
    # An operator session names the operator generation it was opened in (OperatorGenerations).
    generation: str | None = None

    def sign_in(
        self, kind: str, account_id: int | None = None, secret_id: str | None = None, generation: str | None = None
    ) -> None:
        # A new CSRF token at every change of identity, so a token seen before sign-in is worthless after it.
        self.csrf = secrets.token_urlsafe(32)
        self.kind, self.account_id, self.secret_id, self.generation = kind, account_id, secret_id, generation
        self.changed = True

    def sign_out(self) -> None:
        self.sign_in(None)  # type: ignore[arg-type]
        self.flash = []

    def add_flash(self, level: str, message: str) -> None:
        self.flash.append((level, message))
        self.changed = True

    def pop_flash(self) -> list[tuple[str, str]]:
        messages, self.flash = self.flash, []
        if messages:
            self.changed = True
        return messages

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(token.encode(), self.csrf.encode())  # type: ignore[union-attr]

    def to_payload(self) -> dict[str, Any]:
        payload = {"c": self.csrf, "k": self.kind, "a": self.account_id, "s": self.secret_id, "f": self.flash}
        return {**payload, "g": self.generation} if self.generation else payload

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Session:
        return cls(
            csrf=str(data["c"]),
            kind=data.get("k"),
            account_id=data.get("a"),
            secret_id=data.get("s"),
            flash=[(str(level), str(text)) for level, text in data.get("f") or []],
            generation=data.get("g"),
        )


class SessionCodec:
    def __init__(self, key: bytes) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt="facecloud-console")

    def dumps(self, session: Session) -> str:
        return self._serializer.dumps(session.to_payload())

    def loads(self, cookie: str | None) -> Session:
        """The session in a cookie, or a fresh anonymous one when it is absent, forged or too old."""
        if not cookie:
            return Session(changed=True)
        try:
            return Session.from_payload(self._serializer.loads(cookie, max_age=SESSION_MAX_AGE_S))
        except (BadSignature, KeyError, TypeError, ValueError):
            return Session(changed=True)


class OperatorGenerations:
    """Makes operator sessions revocable although the session lives in a signed cookie.

    The current generation is an HMAC of the operator password and a counter kept in <data_dir>: an operator
    session is valid only while it names the current one. Changing the password (FACECLOUD_OPERATOR_PASSWORD, then a
    restart) or signing out (which bumps the counter) therefore ends every operator session opened before. The
    counter file is shared by the workers of one host; several hosts need a shared data_dir for sign-out to reach
    all of them (a password change reaches them all)."""

    def __init__(self, key: bytes, password: str, data_dir: Path) -> None:
        self._key = key
        self._password = password
        self._counter_file = data_dir / "console-operator-generation"
        self._lock = threading.Lock()

    def current(self) -> str:
        message = f"{self._password}\0{self._counter()}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]

    def revoke_all(self) -> None:
        with self._lock:
            next_value = str(self._counter() + 1)
            temporary = self._counter_file.with_suffix(".tmp")
            temporary.write_text(next_value, encoding="ascii")
            temporary.replace(self._counter_file)  # atomic: a reader sees the old value or the new one

    def valid(self, generation: str | None) -> bool:
        return bool(generation) and hmac.compare_digest(str(generation).encode(), self.current().encode())

    def _counter(self) -> int:
        try:
            return int(self._counter_file.read_text(encoding="ascii").strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0


class SignInThrottle:
    """Failed sign-ins per key (a client address, or an identity): after `limit` failures within `window_s`, the key is
    locked until the oldest of those failures leaves the window. Each worker counts its own (in-process)."""

    def __init__(self, limit: int = 5, window_s: float = 600.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float:
        """Seconds until this key may try again; 0 when it may now."""
        now = time.monotonic()
        with self._lock:
            recent = self._recent(key, now)
        return recent[-self.limit] + self.window_s - now if len(recent) >= self.limit else 0.0

    def failed(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 10_000:
                self._failures.clear()
            self._failures[key] = [*self._recent(key, now), now][-self.limit :]

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> list[float]:
        return [t for t in self._failures.get(key, []) if t > now - self.window_s]
