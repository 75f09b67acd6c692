"""Accounts and their key pairs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from facecloud.accounts.models import Account, ApiKey
from facecloud.accounts.secrets import SecretBox, new_secret_id, new_secret_key
from facecloud.db import Database
from facecloud.errors import ApiError

FIRST_APP_ID = 1_300_000_000
KEY_CACHE_S = 5.0


@dataclass(frozen=True)
class AccountInfo:
    id: int
    app_id: int
    name: str
    status: str
    created_at: datetime


@dataclass(frozen=True)
class Credentials:
    app_id: int
    secret_id: str
    secret_key: str

    def as_json(self) -> dict[str, object]:
        return {"AppId": self.app_id, "SecretId": self.secret_id, "SecretKey": self.secret_key}


@dataclass(frozen=True)
class SigningKey:
    """What the gateway needs to verify a request: the account and the plain SecretKey."""

    account: AccountInfo
    secret_key: str


def _info(account: Account) -> AccountInfo:
    return AccountInfo(account.id, account.app_id, account.name, account.status, account.created_at)


class Accounts:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self._db = db
        self._box = box
        # Short-lived cache: a key disabled by the CLI in another process stops working within KEY_CACHE_S.
        self._key_cache: dict[str, tuple[float, SigningKey | None]] = {}

    def create(self, name: str) -> Credentials:
        with self._db.session() as s:
            last = s.scalar(select(func.max(Account.app_id)))
            account = Account(app_id=(last or FIRST_APP_ID - 1) + 1, name=name)
            s.add(account)
            s.flush()
            creds = self._add_key(s, account)
        return creds

    def list(self) -> list[AccountInfo]:
        with self._db.session() as s:
            return [_info(a) for a in s.scalars(select(Account).order_by(Account.id))]

    def get(self, account_id: int) -> AccountInfo:
        with self._db.session() as s:
            account = s.get(Account, account_id)
            if account is None:
                raise ApiError("ResourceNotFound", f"account {account_id} does not exist", f"账号 {account_id} 不存在")
            return _info(account)

    def find(self, ref: str) -> AccountInfo:
        """An account by AppId, SecretId or name."""
        with self._db.session() as s:
            query = select(Account).where(Account.name == ref)
            if ref.isdigit():
                query = select(Account).where(Account.app_id == int(ref))
            elif ref.startswith("AKID"):
                query = select(Account).join(ApiKey).where(ApiKey.secret_id == ref)
            account = s.scalars(query).first()
            if account is None:
                raise ApiError("ResourceNotFound", f"no account matches {ref!r}", f"没有与 {ref!r} 匹配的账号")
            return _info(account)

    def set_status(self, account_id: int, status: str) -> None:
        with self._db.session() as s:
            account = s.get(Account, account_id)
            if account is None:
                raise ApiError("ResourceNotFound", f"account {account_id} does not exist", f"账号 {account_id} 不存在")
            account.status = status
        self._key_cache.clear()

    def rotate_key(self, account_id: int, keep_old: bool = False) -> Credentials:
        """A new key pair; the old ones are disabled unless keep_old (to roll clients over)."""
        with self._db.session() as s:
            account = s.get(Account, account_id)
            if account is None:
                raise ApiError("ResourceNotFound", f"account {account_id} does not exist", f"账号 {account_id} 不存在")
            if not keep_old:
                for key in s.scalars(select(ApiKey).where(ApiKey.account_id == account_id)):
                    key.status = "disabled"
            creds = self._add_key(s, account)
        self._key_cache.clear()
        return creds

    def keys(self, account_id: int) -> list[dict[str, object]]:
        with self._db.session() as s:
            rows = s.scalars(select(ApiKey).where(ApiKey.account_id == account_id).order_by(ApiKey.created_at))
            return [{"SecretId": k.secret_id, "Status": k.status, "CreatedAt": k.created_at.isoformat()} for k in rows]

    def signing_key(self, secret_id: str) -> SigningKey:
        """The active account and SecretKey behind a SecretId, or AuthFailure.SecretIdNotFound."""
        now = time.monotonic()
        cached = self._key_cache.get(secret_id)
        if cached is None or cached[0] < now:
            if len(self._key_cache) > 10_000:
                self._key_cache.clear()
            cached = (now + KEY_CACHE_S, self._load_signing_key(secret_id))
            self._key_cache[secret_id] = cached
        key = cached[1]
        if key is None:
            raise ApiError("AuthFailure.SecretIdNotFound")
        return key

    def _load_signing_key(self, secret_id: str) -> SigningKey | None:
        with self._db.session() as s:
            row = s.execute(select(ApiKey, Account).join(Account).where(ApiKey.secret_id == secret_id)).first()
            if row is None:
                return None
            key, account = row
            if key.status != "active" or account.status != "active":
                return None
            return SigningKey(_info(account), self._box.open(key.secret_key_encrypted))

    def _add_key(self, s, account: Account) -> Credentials:  # type: ignore[no-untyped-def]
        secret_id, secret_key = new_secret_id(), new_secret_key()
        s.add(ApiKey(secret_id=secret_id, account_id=account.id, secret_key_encrypted=self._box.seal(secret_key)))
        return Credentials(account.app_id, secret_id, secret_key)
