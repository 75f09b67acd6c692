"""SecretKeys at rest: encrypted with a Fernet key from config, or from <data_dir>/master.key (created 0600)."""

from __future__ import annotations

import os
import secrets
import string
from pathlib import Path

from cryptography.fernet import Fernet

_ALPHABET = string.ascii_letters + string.digits


def load_or_create_master_key(configured: str, data_dir: Path) -> bytes:
    if configured:
        return configured.encode()
    path = data_dir / "master.key"
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def new_secret_id() -> str:
    return "AKID" + "".join(secrets.choice(_ALPHABET) for _ in range(32))


def new_secret_key() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(32))


class SecretBox:
    def __init__(self, master_key: bytes) -> None:
        self._fernet = Fernet(master_key)

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, token: str) -> str:
        return self._fernet.decrypt(token.encode()).decode()
