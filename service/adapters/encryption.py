"""Passwords at rest: Fernet (AES-128-CBC + HMAC-SHA256) with a key from settings.

Without ENCRYPTION_KEY a dev key is generated once into the data folder and reused
(`dev_secrets`). Production sets ENCRYPTION_KEY.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from cryptography.fernet import Fernet

from service.adapters.dev_secrets import dev_secret

__all__ = ["PasswordCipher", "load_cipher"]

_DIGEST_KEY_PURPOSE = b"sip-trunks processed-command digest v1"


class PasswordCipher:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        # The key of the processed commands' body digests (service_layer/handlers.py), derived
        # from this one: kept with the passwords it protects, never stored.
        self.digest_key = hmac.digest(key, _DIGEST_KEY_PURPOSE, "sha256")

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        return self._fernet.decrypt(token.encode("ascii")).decode()


def load_cipher(key: str | None, data_dir: Path) -> PasswordCipher:
    return PasswordCipher(
        key.encode() if key else dev_secret(data_dir, "encryption.key", Fernet.generate_key)
    )
