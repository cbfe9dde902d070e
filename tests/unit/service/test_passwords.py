"""Sealed passwords on the worker's side (CONTRACT §4.2): its keys, and commands opened before
the domain judges them (plaintext refused unless accepted, the mask kept, retries recognised)."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from nacl.public import PrivateKey, PublicKey, SealedBox
from pydantic import SecretStr
from sip_trunk_contracts import MASKED_PASSWORD, CommandEnvelope, seal_password

from service.adapters.password_seal import DEV_KEY_FILE, PasswordKeys, password_keys, public_key
from service.config import Settings
from service.service_layer.messages import OutgoingMessage
from service.service_layer.passwords import POINTER
from tests.unit.service.fakes import (
    PASSWORD,
    TENANT,
    TOPICS,
    Harness,
    ce_type,
    create,
    create_command,
    payload,
    received,
    trunk_fields,
    update,
)

OLD, NEW = PrivateKey(bytes([1] * 32)), PrivateKey(bytes([2] * 32))


def b64(key: PrivateKey | PublicKey) -> str:
    return base64.b64encode(bytes(key)).decode()


# --- the keys ------------------------------------------------------------------------------


def test_a_sealed_password_opens_with_the_workers_key() -> None:
    keys = PasswordKeys([bytes(NEW)])
    assert keys.public_key == bytes(NEW.public_key)
    assert keys.open(seal_password(keys.public_key, PASSWORD)) == PASSWORD


def test_rotation_a_password_sealed_for_the_old_key_opens_while_it_is_listed() -> None:
    sealed_old = seal_password(bytes(OLD.public_key), PASSWORD)
    sealed_new = seal_password(bytes(NEW.public_key), "N3w-password")
    both = PasswordKeys([bytes(NEW), bytes(OLD)])
    assert both.public_key == bytes(NEW.public_key)  # producers get the newest
    assert both.open(sealed_old) == PASSWORD
    assert both.open(sealed_new) == "N3w-password"
    assert PasswordKeys([bytes(NEW)]).open(sealed_old) is None  # the old key dropped


@pytest.mark.parametrize(
    "sealed",
    [
        seal_password(bytes(PrivateKey.generate().public_key), PASSWORD),  # another key
        seal_password(bytes(NEW.public_key), PASSWORD)[:-4] + "AAAA",  # damaged
        "sealed:v1:" + "A" * 80,  # no box at all
        "sealed:v1:%%%",
    ],
    ids=["wrong-key", "damaged", "zeros", "not-base64"],
)
def test_what_no_key_opens_is_none(sealed: str) -> None:
    assert PasswordKeys([bytes(NEW)]).open(sealed) is None


def test_a_box_of_bytes_that_are_not_utf8_is_no_password() -> None:
    box = SealedBox(NEW.public_key).encrypt(b"\xff\xfe not text")
    sealed = "sealed:v1:" + base64.urlsafe_b64encode(box).decode()
    assert PasswordKeys([bytes(NEW)]).open(sealed) is None


def test_settings_list_the_private_keys_newest_first(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, password_seal_private_key=SecretStr(f"{b64(NEW)}, {b64(OLD)}")
    )
    keys = password_keys(settings)
    assert keys.open(seal_password(bytes(OLD.public_key), PASSWORD)) == PASSWORD
    assert public_key(settings) == bytes(NEW.public_key)
    assert not (tmp_path / DEV_KEY_FILE).exists()  # no dev key when keys are set


def test_a_bad_private_key_is_refused_at_start_named_by_position_never_shown(
    tmp_path: Path,
) -> None:
    bad = "c2VjcmV0LWJ1dC1zaG9ydA=="
    with pytest.raises(ValueError, match="PASSWORD_SEAL_PRIVATE_KEY, key 2") as error:
        Settings(data_dir=tmp_path, password_seal_private_key=SecretStr(f"{b64(NEW)},{bad}"))
    assert bad not in str(error.value)
    assert b64(NEW) not in str(error.value)


def test_the_dev_key_is_made_once_private_and_shared_by_producers(tmp_path: Path) -> None:
    worker = password_keys(Settings(data_dir=tmp_path))
    path = tmp_path / DEV_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = password_keys(Settings(data_dir=tmp_path))
    assert again.public_key == worker.public_key  # reused, not made anew
    # The gateway and the CLI on the same DATA_DIR seal for the worker's key.
    producer_key = public_key(Settings(data_dir=tmp_path))
    assert worker.open(seal_password(producer_key, PASSWORD)) == PASSWORD


@pytest.mark.parametrize(
    "written", [base64.b64encode, lambda key: base64.urlsafe_b64encode(key).rstrip(b"=")]
)
def test_a_dev_key_file_is_read_in_either_base64_alphabet(tmp_path: Path, written: Any) -> None:
    (tmp_path / DEV_KEY_FILE).write_bytes(written(bytes(OLD)) + b"\n")
    assert password_keys(Settings(data_dir=tmp_path)).public_key == bytes(OLD.public_key)


def test_a_public_key_set_for_producers_wins(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, password_seal_public_key=b64(NEW.public_key))
    assert public_key(settings) == bytes(NEW.public_key)
    assert not (tmp_path / DEV_KEY_FILE).exists()
    with pytest.raises(ValueError, match="PASSWORD_SEAL_PUBLIC_KEY"):
        Settings(data_dir=tmp_path, password_seal_public_key="short")


# --- commands ------------------------------------------------------------------------------


@pytest.fixture
def h() -> Harness:
    return Harness()


def outcome(out: list[OutgoingMessage]) -> dict[str, Any]:
    [event] = [m for m in out if m.topic == TOPICS.events]
    return {"type": ce_type(event), "id": event.header("ce_id"), **payload(event)}


def plaintext_create(trunk_id: UUID, password: str = PASSWORD) -> Any:
    """A create as a producer that does not seal sends it."""
    fields = trunk_fields(authentication={"username": "office_sip_user", "password": password})
    return received(
        CommandEnvelope.create(fields, trunk_id=trunk_id, tenant_id=TENANT, source="/raw")
    )


def assert_refused_at_the_password(out: list[OutgoingMessage], *secrets: str) -> None:
    event = outcome(out)
    assert event["reason"] == "validation_failed"
    assert [e["pointer"] for e in event["errors"]] == [POINTER]
    for secret in secrets:
        assert secret not in json.dumps(event)


def stored_password(h: Harness, trunk_id: UUID) -> str:
    stored = h.db.trunks[trunk_id].authentication
    assert stored is not None
    return stored.password


async def test_a_sealed_password_is_stored_as_the_password(h: Harness) -> None:
    trunk_id = uuid4()
    out = await h.run(create(trunk_id))
    assert outcome(out)["type"] == "sip_trunks.TrunkCreated.v1"
    assert stored_password(h, trunk_id) == PASSWORD


async def test_a_plaintext_password_is_refused(h: Harness) -> None:
    trunk_id = uuid4()
    out = await h.run(plaintext_create(trunk_id))
    assert_refused_at_the_password(out, PASSWORD)
    assert "plaintext" in outcome(out)["errors"][0]["message"]
    assert trunk_id not in h.db.trunks


async def test_a_plaintext_password_in_an_update_is_refused(h: Harness) -> None:
    trunk_id = uuid4()
    await h.run(create(trunk_id))
    raw = received(
        CommandEnvelope.update(
            {"authentication": {"password": "N3w-password"}},
            trunk_id=trunk_id,
            tenant_id=TENANT,
            source="/raw",
        )
    )
    assert_refused_at_the_password(await h.run(raw), "N3w-password")
    assert stored_password(h, trunk_id) == PASSWORD


async def test_a_plaintext_password_is_accepted_when_the_deployment_says_so() -> None:
    h = Harness(accept_plaintext_passwords=True)
    trunk_id = uuid4()
    out = await h.run(plaintext_create(trunk_id))
    assert outcome(out)["type"] == "sip_trunks.TrunkCreated.v1"
    assert stored_password(h, trunk_id) == PASSWORD


async def test_a_seal_no_key_opens_is_refused_without_echoing_it(h: Harness) -> None:
    stranger = seal_password(bytes(PrivateKey.generate().public_key), PASSWORD)
    fields = trunk_fields(authentication={"username": "u", "password": stranger})
    cmd = received(CommandEnvelope.create(fields, trunk_id=uuid4(), tenant_id=TENANT, source="/x"))
    out = await h.run(cmd)
    assert_refused_at_the_password(out, stranger, stranger[10:40])
    assert "none of this service's keys" in outcome(out)["errors"][0]["message"]


async def test_a_seal_longer_than_any_valid_password_is_not_opened(h: Harness) -> None:
    # Sealed for the right key, but holding more than 128 characters: refused unopened.
    out = await h.run(create(uuid4(), authentication={"username": "u", "password": "x" * 400}))
    assert_refused_at_the_password(out)
    assert "longer" in outcome(out)["errors"][0]["message"]


async def test_an_opened_password_still_meets_the_field_rules(h: Harness) -> None:
    out = await h.run(create(uuid4(), authentication={"username": "u", "password": "short"}))
    assert_refused_at_the_password(out, "short")
    assert "8-128" in outcome(out)["errors"][0]["message"]


async def test_the_mask_stays_unsealed_and_keeps_the_stored_password(h: Harness) -> None:
    trunk_id = uuid4()
    await h.run(create(trunk_id))
    out = await h.run(
        update(trunk_id, {"name": "Renamed", "authentication": {"password": MASKED_PASSWORD}})
    )
    assert outcome(out)["changedFields"] == ["name"]
    assert stored_password(h, trunk_id) == PASSWORD


async def test_a_sealed_update_changes_the_password(h: Harness) -> None:
    trunk_id = uuid4()
    await h.run(create(trunk_id))
    out = await h.run(update(trunk_id, {"authentication": {"password": "N3w-password"}}))
    assert outcome(out)["changedFields"] == ["authentication.password"]
    stored = h.db.trunks[trunk_id].authentication
    assert stored is not None
    assert stored.password == "N3w-password"


async def test_a_retry_sealed_anew_is_the_same_command(h: Harness) -> None:
    """A REST retry with the same Idempotency-Key seals the password again, into other bytes:
    it is still answered with the first outcome, and applied once."""
    trunk_id = uuid4()
    first, retry = (create_command(trunk_id, id="same-id") for _ in range(2))
    assert first.body != retry.body  # two seals of one password
    one = outcome(await h.run(received(first)))
    two = outcome(await h.run(received(retry)))
    assert two == one
    assert h.provider.created == 1


async def test_another_password_under_the_same_id_is_another_command(h: Harness) -> None:
    trunk_id = uuid4()
    await h.run(create(trunk_id, id="same-id"))
    other = create(
        trunk_id, id="same-id", authentication={"username": "office_sip_user", "password": "x" * 9}
    )
    assert outcome(await h.run(other))["reason"] == "idempotency_key_reused"


def test_the_fakes_seal_with_the_harness_key() -> None:
    """Guard: the tests above would pass vacuously if the builders sent plaintext."""
    body = create_command(uuid4()).body
    assert body["authentication"]["password"].startswith("sealed:v1:")
    assert Harness().services.passwords.open(body["authentication"]["password"]) == PASSWORD
