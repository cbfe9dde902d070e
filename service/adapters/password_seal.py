"""The worker's X25519 key pairs for sealed passwords (CONTRACT.md §4.2).

PASSWORD_SEAL_PRIVATE_KEY lists the worker's private keys (base64), newest first. A command opens
with any of them, so producers can be moved to a new public key while commands sealed with the
old one are still on the topic (docs/security.md, "Sealed passwords"). Without it, a dev key is
generated once into DATA_DIR (mode 0600, `dev_secrets`), like the other dev secrets.

Producers (the gateway, the CLI) get the public key only: PASSWORD_SEAL_PUBLIC_KEY, or else the
one of the newest private key, which in dev is the key in the same DATA_DIR.
"""

from __future__ import annotations

from collections.abc import Sequence

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox
from sip_trunk_contracts.sealing import key_bytes, sealed_box

from service.adapters.dev_secrets import dev_key
from service.config import Settings

__all__ = ["DEV_KEY_FILE", "PasswordKeys", "password_keys", "public_key"]

DEV_KEY_FILE = "password-seal.key"


class PasswordKeys:
    """Opens sealed passwords with any of the worker's private keys (the port `PasswordSeal`)."""

    def __init__(self, private_keys: Sequence[bytes]) -> None:
        if not private_keys:
            raise ValueError("at least one private key is needed")
        keys = [PrivateKey(key) for key in private_keys]
        self._boxes = [SealedBox(key) for key in keys]
        self.public_key = bytes(keys[0].public_key)
        """The newest key's: the one producers are given."""

    def open(self, sealed: str) -> str | None:
        try:
            box = sealed_box(sealed)
        except ValueError:
            return None
        for opener in self._boxes:
            try:
                plain = opener.decrypt(box)
            except CryptoError:
                continue  # sealed for another key of the list, or for none
            try:
                return plain.decode("utf-8")
            except UnicodeDecodeError:
                return None  # opened, but no password: the contract seals UTF-8 text
        return None


def password_keys(settings: Settings) -> PasswordKeys:
    """The worker's keys: PASSWORD_SEAL_PRIVATE_KEY, or the dev key in DATA_DIR."""
    if settings.password_seal_private_key is None:
        return PasswordKeys([dev_key(settings.data_dir, DEV_KEY_FILE)])
    entries = settings.password_seal_private_key.get_secret_value().split(",")
    return PasswordKeys([key_bytes(entry) for entry in entries])  # checked by Settings


def public_key(settings: Settings) -> bytes:
    """What producers seal with: PASSWORD_SEAL_PUBLIC_KEY, else the newest private key's."""
    if settings.password_seal_public_key is None:
        return password_keys(settings).public_key
    return key_bytes(settings.password_seal_public_key)  # checked by Settings
