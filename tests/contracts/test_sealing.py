"""Sealed passwords (CONTRACT §4.2) as a producer makes them with the contracts package."""

from __future__ import annotations

import base64
import sys
from typing import Any

import pytest
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox
from sip_trunk_contracts import (
    MASKED_PASSWORD,
    SEALED_PREFIX,
    UnsealablePassword,
    is_sealed,
    seal_fields,
    seal_password,
)
from sip_trunk_contracts.limits import PASSWORD_MAX_LENGTH, SEALED_PASSWORD_MAX_LENGTH
from sip_trunk_contracts.sealing import base64_bytes, key_bytes, sealed_box

WORKER = PrivateKey(bytes(range(1, 33)))
PUBLIC = bytes(WORKER.public_key)
PASSWORD = "Sealed-Pa55word"


def opened(sealed: str, key: PrivateKey = WORKER) -> str:
    """What the holder of the private key reads: libsodium's own opening, not ours."""
    return SealedBox(key).decrypt(sealed_box(sealed)).decode()


def test_a_sealed_password_is_the_prefix_and_base64url_of_a_box_only_the_key_opens() -> None:
    sealed = seal_password(PUBLIC, PASSWORD)
    assert sealed.startswith(SEALED_PREFIX)
    assert is_sealed(sealed)
    assert PASSWORD not in sealed
    text = sealed.removeprefix(SEALED_PREFIX)
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert opened(sealed) == PASSWORD
    with pytest.raises(CryptoError):
        opened(sealed, PrivateKey.generate())


def test_each_seal_is_new() -> None:
    assert seal_password(PUBLIC, PASSWORD) != seal_password(PUBLIC, PASSWORD)


def test_the_longest_password_fits_the_sealed_bound() -> None:
    assert len(seal_password(PUBLIC, "x" * PASSWORD_MAX_LENGTH)) <= SEALED_PASSWORD_MAX_LENGTH
    assert len(seal_password(PUBLIC, "x" * (PASSWORD_MAX_LENGTH + 3))) > SEALED_PASSWORD_MAX_LENGTH


@pytest.mark.parametrize(
    "key",
    [
        PUBLIC,
        base64.b64encode(PUBLIC).decode(),
        base64.urlsafe_b64encode(PUBLIC).decode().rstrip("="),
        f" {base64.b64encode(PUBLIC).decode()}\n",
    ],
    ids=["raw", "base64", "base64url-unpadded", "blanks"],
)
def test_a_key_is_taken_raw_or_as_base64(key: bytes | str) -> None:
    assert key_bytes(key) == PUBLIC
    assert opened(seal_password(key, PASSWORD)) == PASSWORD


@pytest.mark.parametrize(
    "key", [b"short", base64.b64encode(b"x" * 31).decode(), "not base64!", "QUJD*"]
)
def test_a_key_that_is_not_32_bytes_of_base64_is_refused_without_quoting_it(key: Any) -> None:
    with pytest.raises(ValueError, match="key") as error:
        key_bytes(key)
    assert str(key) not in str(error.value)


@pytest.mark.parametrize("text", ["", "QUJD", "QUI", "QUI=", " QUI= ", "-_-_", "+/+/"])
def test_base64_is_read_in_either_alphabet_padded_or_not(text: str) -> None:
    expected = base64.b64decode(text.strip().replace("-", "+").replace("_", "/") + "==")
    assert base64_bytes(text) == expected


@pytest.mark.parametrize("text", ["Q", "QU JD", "QUJD*", "Q=UJ", "QUJD==="])
def test_what_is_not_base64_is_refused_without_quoting_it(text: str) -> None:
    with pytest.raises(ValueError, match=r"^not base64$"):
        base64_bytes(text)


def test_seal_fields_seals_the_password_and_keeps_the_rest() -> None:
    fields = {"name": "Office", "authentication": {"username": "u", "password": PASSWORD}}
    sealed = seal_fields(PUBLIC, fields)
    assert sealed["name"] == "Office"
    assert sealed["authentication"]["username"] == "u"
    assert opened(sealed["authentication"]["password"]) == PASSWORD
    assert fields["authentication"]["password"] == PASSWORD  # the input is not changed


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "x"},
        {"authentication": None},
        {"authentication": {"username": "u"}},
        {"authentication": {"password": None}},  # a merge patch's removal
        {"authentication": {"password": MASKED_PASSWORD}},  # keep the stored one
        {"authentication": "not an object"},  # the worker's field rules answer it
    ],
)
def test_seal_fields_leaves_what_is_no_password(fields: dict[str, Any]) -> None:
    assert seal_fields(PUBLIC, fields) == fields


@pytest.mark.parametrize("password", [12345678, ["p"], {"p": 1}, True])
def test_a_password_that_is_not_a_string_cannot_be_sealed(password: object) -> None:
    with pytest.raises(UnsealablePassword, match="must be a string"):
        seal_fields(PUBLIC, {"authentication": {"username": "u", "password": password}})


def test_a_password_that_is_not_utf8_text_cannot_be_sealed() -> None:
    with pytest.raises(UnsealablePassword, match="UTF-8"):
        seal_fields(PUBLIC, {"authentication": {"username": "u", "password": "pass\ud800word"}})


@pytest.mark.parametrize(
    "value",
    ["sealed:v2:AAAA", "sealed:v1:not*base64", "sealed:v1:" + "A" * 10, "plain", "sealed:v1:"],
)
def test_a_value_that_is_no_sealed_box_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"sealed|short"):
        sealed_box(value)


def test_sealing_without_pynacl_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nacl.public", None)  # what a missing package looks like
    with pytest.raises(ImportError, match=r"sip-trunk-contracts\[seal\]"):
        seal_password(PUBLIC, PASSWORD)
