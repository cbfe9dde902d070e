"""Producer signatures (adapters/command_signatures.py): who may use a source and a tenant."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from pydantic import ValidationError
from sip_trunk_contracts import CommandEnvelope

from service.adapters.command_signatures import (
    HEADER,
    CommandSigner,
    command_signer,
    producer_trust,
)
from service.config import Settings
from service.service_layer.inbound import read_command

Headers = list[tuple[str, bytes | None]]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


GATEWAY, PARTNER, STRANGER = (SigningKey.generate() for _ in range(3))
TRUSTED = [
    {"publicKey": b64(bytes(GATEWAY.verify_key)), "sources": ["/gateway"], "tenants": ["*"]},
    {"publicKey": b64(bytes(PARTNER.verify_key)), "sources": ["/partner"], "tenants": ["acme"]},
]


def settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(data_dir=tmp_path, trusted_producers=TRUSTED, **extra)  # type: ignore[arg-type]


def command(
    source: str, tenant: str | None = "acme", time: datetime | None = None
) -> CommandEnvelope:
    return CommandEnvelope.delete(
        trunk_id=str(uuid.uuid4()),
        tenant_id=tenant,
        source=source,
        expected_version=None,
        time=time,
    )


def wire(envelope: CommandEnvelope, key: SigningKey | None) -> tuple[bytes, bytes, Headers]:
    """What the worker reads off Kafka: key, value, headers (signed with `key` if given)."""
    value = envelope.value()
    headers: Headers = [*envelope.kafka_headers()]
    if key is not None:
        headers.append(CommandSigner(bytes(key)).header(envelope, value))
    return envelope.key_bytes(), value, headers


def refusal(s: Settings, key: bytes, value: bytes, headers: Headers) -> str | None:
    return producer_trust(s).refusal(read_command(value, headers), key, value, headers)


@pytest.mark.parametrize(
    ("source", "tenant", "signer", "allowed"),
    [
        ("/gateway", "acme", GATEWAY, True),
        ("/gateway", None, GATEWAY, True),  # `*` covers the platform's null tenant
        ("/gateway", "acme", None, False),  # a reserved source, unsigned: the forged REST key
        ("/gateway", "acme", STRANGER, False),
        ("/gateway", "acme", PARTNER, False),  # a trusted producer, but not this source's
        ("/partner", "acme", PARTNER, True),
        ("/partner", "globex", PARTNER, False),  # not its tenant
        ("/partner", None, PARTNER, False),
        ("/some-app", "globex", None, True),  # unsigned, unreserved: contract 1.0 producers
        ("/some-app", None, None, False),  # the platform acts only through a signed command
        ("/some-app", "acme", STRANGER, False),  # signed by a key nobody trusts
    ],
)
def test_who_may_act(
    tmp_path: Path, source: str, tenant: str | None, signer: SigningKey | None, allowed: bool
) -> None:
    why = refusal(settings(tmp_path), *wire(command(source, tenant), signer))
    assert (why is None) == allowed, why


def test_required_signatures_refuse_every_unsigned_command(tmp_path: Path) -> None:
    strict = settings(tmp_path, require_signed_commands=True)
    assert refusal(strict, *wire(command("/some-app"), None)) == "the command is not signed"
    assert refusal(strict, *wire(command("/partner"), PARTNER)) is None


def test_a_signature_covers_the_value_the_key_and_the_headers(tmp_path: Path) -> None:
    s = settings(tmp_path)
    key, value, headers = wire(command("/partner"), PARTNER)
    assert refusal(s, key, value, headers) is None
    other_tenant = value.replace(b'"acme"', b'"globex"')
    assert refusal(s, key, other_tenant, headers) is not None
    assert refusal(s, str(uuid.uuid4()).encode(), value, headers) is not None
    renamed = [(k, b"another-id" if k == "ce_id" else v) for k, v in headers]
    assert refusal(s, key, value, renamed) is not None
    redated = [(k, b"2099-01-01T00:00:00.000Z" if k == "ce_time" else v) for k, v in headers]
    assert refusal(s, key, value, redated) is not None


def test_a_signed_command_older_than_the_ids_are_remembered_is_a_replay(tmp_path: Path) -> None:
    s = settings(tmp_path, processed_retention_days=30)
    now = datetime.now(UTC)
    recent = wire(command("/partner", time=now - timedelta(days=29)), PARTNER)
    assert refusal(s, *recent) is None
    replayed = wire(command("/partner", time=now - timedelta(days=31)), PARTNER)
    assert "a replay" in (refusal(s, *replayed) or "")


@pytest.mark.parametrize(
    "garbage",
    [b"", b"v1", b"v2.x.y", b"v1..", b"\xff\xfe", b"v1.0123456789abcdef.!!!", b"v1.%s.AAAA"],
)
def test_a_garbled_signature_is_refused_not_raised(tmp_path: Path, garbage: bytes) -> None:
    key, value, headers = wire(command("/partner"), None)
    garbage = garbage.replace(
        b"%s", CommandSigner(bytes(PARTNER)).header(command("/x"), b"")[1][3:19]
    )
    assert refusal(settings(tmp_path), key, value, [*headers, (HEADER, garbage)]) is not None


def test_dev_signer_and_dev_trust_share_one_key_generated_once(tmp_path: Path) -> None:
    dev = Settings(data_dir=tmp_path)
    signer = command_signer(dev)
    assert bytes(command_signer(dev).public_key) == bytes(signer.public_key)
    assert (tmp_path / "command-signing.key").stat().st_mode & 0o777 == 0o600
    envelope = command("/gateway")
    value = envelope.value()
    headers: Headers = [*envelope.kafka_headers(), signer.header(envelope, value)]
    assert refusal(dev, envelope.key_bytes(), value, headers) is None
    assert refusal(dev, *wire(command("/gateway"), None)) is not None
    assert refusal(dev, *wire(command("/cli"), None)) is not None


def test_trusted_producers_are_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = {"publicKey": b64(bytes(PARTNER.verify_key)), "sources": ["/a"], "tenants": ["t"]}
    monkeypatch.setenv("TRUSTED_PRODUCERS", json.dumps([entry]))
    [producer] = Settings(data_dir=tmp_path).trusted_producers or []
    assert producer.sources == ["/a"]
    with pytest.raises(ValidationError, match="32 bytes"):
        Settings(trusted_producers=[{"publicKey": "AAAA", "sources": ["/a"], "tenants": ["*"]}])  # type: ignore[list-item]


def test_a_bad_signing_key_is_refused_at_start_never_shown() -> None:
    short = b64(b"s" * 31)
    with pytest.raises(ValidationError, match="COMMAND_SIGNING_KEY must be an Ed25519 seed") as e:
        Settings(command_signing_key=short)  # type: ignore[arg-type]
    assert short not in str(e.value)
    with pytest.raises(ValidationError, match="COMMAND_SIGNING_KEY"):
        Settings(command_signing_key="not base64!")  # type: ignore[arg-type]
    seed = bytes(PARTNER)
    signer = command_signer(Settings(command_signing_key=b64(seed)))  # type: ignore[arg-type]
    assert bytes(signer.public_key) == bytes(PARTNER.verify_key)


def test_an_invalid_command_acts_for_no_one_so_it_keeps_its_rejection(tmp_path: Path) -> None:
    envelope = command("/some-app", None)
    value = b'{"trunkId": "%s", "expectedVersion": "one"}' % envelope.key_bytes()
    headers: Headers = [*envelope.kafka_headers()]
    assert read_command(value, headers).model is None  # the worker answers validation_failed
    assert refusal(settings(tmp_path), envelope.key_bytes(), value, headers) is None
