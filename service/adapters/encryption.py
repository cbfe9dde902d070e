"""Passwords at rest: Fernet (AES-128-CBC + HMAC-SHA256) with a key from settings.

Without ENCRYPTION_KEY a dev key is generated once into the data folder (mode 0600) and reused;
it is never committed (data/ is ignored). Production sets ENCRYPTION_KEY.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet

__all__ = ["PasswordCipher", "load_cipher"]

_DEV_KEY_FILE = "encryption.key"


class PasswordCipher:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        return self._fernet.decrypt(token.encode("ascii")).decode()


def load_cipher(key: str | None, data_dir: Path) -> PasswordCipher:
    return PasswordCipher(key.encode() if key else _dev_key(data_dir))


def _dev_key(data_dir: Path) -> bytes:
    path = data_dir / _DEV_KEY_FILE
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(Fernet.generate_key())
    # link() is atomic and refuses to overwrite: two processes starting together agree on one key.
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes().strip()
