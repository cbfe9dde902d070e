"""Sealed passwords (CONTRACT.md §4.2): no plaintext password on Kafka.

A command's ``authentication.password`` is ``sealed:v1:<base64url>``: a libsodium sealed box
(``crypto_box_seal``: X25519 and XSalsa20-Poly1305 under a one-time key pair) of the UTF-8
password, made with the worker's public key. Only the worker's private key opens it; the mask
``********`` stays as it is. Producers seal; the worker opens.

Sealing needs PyNaCl, the optional extra ``pip install 'sip-trunk-contracts[seal]'``. It is
imported when a password is sealed, not with this package: a producer that never sends a
password still needs pydantic alone.

Example::

    fields = seal_fields(public_key, {"name": "Office", "gateways": [...],
                                      "authentication": {"username": "u", "password": "s3cret"}})
    command = CommandEnvelope.create(fields, trunk_id=..., tenant_id="acme", source="/my-app")
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from .limits import SEAL_OVERHEAD
from .trunk import MASKED_PASSWORD

if TYPE_CHECKING:
    from nacl.public import SealedBox

__all__ = [
    "KEY_BYTES",
    "SEALED_PREFIX",
    "UnsealablePassword",
    "base64_bytes",
    "is_sealed",
    "key_bytes",
    "seal_fields",
    "seal_password",
    "sealed_box",
]

SEALED_PREFIX: Final = "sealed:v1:"
KEY_BYTES: Final = 32
"""An X25519 key, public or private."""

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_TO_URL_SAFE = str.maketrans("+/", "-_")
_EXTRA = "sip-trunk-contracts[seal]"


class UnsealablePassword(ValueError):
    """A password that is not a string: it cannot be sealed, and must not be sent as it is."""


def base64_bytes(text: str) -> bytes:
    """The bytes of base64 text, as settings write keys and seals carry boxes: standard or
    URL-safe alphabet, padding optional, blanks around it ignored. The one base64 reader of the
    project's keys. ValueError otherwise; the message never quotes the text."""
    text = text.strip()
    if not _BASE64.fullmatch(text):
        raise ValueError("not base64")
    try:
        return base64.urlsafe_b64decode(text.translate(_TO_URL_SAFE) + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None


def key_bytes(key: bytes | str) -> bytes:
    """An X25519 key as its 32 bytes: given raw, or as base64 text (:func:`base64_bytes`).
    ValueError otherwise; the message never quotes the key."""
    if isinstance(key, str):
        try:
            key = base64_bytes(key)
        except ValueError:
            raise ValueError("a key must be base64 text") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"an X25519 key has {KEY_BYTES} bytes, this one has {len(key)}")
    return key


def seal_password(public_key: bytes | str, text: str) -> str:
    """``text`` sealed for the holder of ``public_key``'s private key: ``sealed:v1:...``.

    Each call seals anew (a fresh one-time key), so two seals of one password differ."""
    box = _sealed_box(public_key).encrypt(text.encode("utf-8"))
    return SEALED_PREFIX + base64.urlsafe_b64encode(box).rstrip(b"=").decode("ascii")


def seal_fields(public_key: bytes | str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` (a create's trunk fields, or an update's ``changes``) with
    ``authentication.password`` sealed. Everything else is passed through: the mask ``********``
    (keep the stored password), ``null`` and a missing password. Raises
    :class:`UnsealablePassword` for a password of another type (say ``12345678``, a number),
    which would otherwise reach Kafka as it is."""
    auth = fields.get("authentication")
    if not isinstance(auth, Mapping) or auth.get("password") in (None, MASKED_PASSWORD):
        return dict(fields)
    password = auth["password"]
    if not isinstance(password, str):
        raise UnsealablePassword("authentication.password must be a string")
    try:
        sealed = seal_password(public_key, password)
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 to seal (and never a valid password)
        raise UnsealablePassword("authentication.password must be UTF-8 text") from None
    return {**fields, "authentication": {**auth, "password": sealed}}


def is_sealed(value: object) -> bool:
    """``value`` says it is a sealed password (whether it opens is the worker's to find)."""
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def sealed_box(value: str) -> bytes:
    """The sealed box inside a ``sealed:v1:`` string (base64url, padding optional).
    ValueError when it is not one, or too short to be a box."""
    text = value.removeprefix(SEALED_PREFIX)
    try:
        if text == value or not _BASE64URL.fullmatch(text):
            raise ValueError
        box = base64_bytes(text)
    except ValueError:
        raise ValueError("not sealed:v1: and base64url") from None
    if len(box) < SEAL_OVERHEAD:
        raise ValueError("too short for a sealed box")
    return box


def _sealed_box(public_key: bytes | str) -> SealedBox[Any]:
    try:
        import nacl.public  # noqa: F401 - the extra's check, on every call (cheap once imported)
    except ImportError as exc:
        raise ImportError(
            f"sealing passwords needs PyNaCl: pip install '{_EXTRA}'", name=exc.name
        ) from exc
    return _box_for(key_bytes(public_key))


@functools.lru_cache(maxsize=8)  # producers seal with one key: build its box once
def _box_for(key: bytes) -> SealedBox[Any]:
    from nacl.public import PublicKey, SealedBox

    return SealedBox(PublicKey(key))
