"""Producer signatures: a command acts for a tenant only when a producer trusted with it sent it.

Kafka tells a consumer nothing of who produced a record, and ACLs only say who may write the
commands topic at all. So a producer the worker is to trust signs each command with its Ed25519
key, in the header `ce_signature` (`v1.<key id>.<base64url signature>`), over the command's
`ce_id`, `ce_source`, `ce_type`, `ce_time`, Kafka key and value. The worker checks it against
TRUSTED_PRODUCERS: each entry is a public key, the `ce_source`s it alone may use and the tenants
it may act for (`*`: any, the platform's `null` included). Hence:

- a source named by a trusted producer is **reserved**: an unsigned command, or one signed by
  another key, that claims it is refused. Nobody without the gateway's key can take a command
  id in `/gateway`'s namespace (and so block a tenant's REST Idempotency-Key);
- a signed command for a tenant its producer is not trusted with is refused;
- the platform (`tenantId: null`, the tenant of system trunks) acts only through a signed
  command of a producer trusted with `*`: no one else creates trunks that no tenant can see;
- with REQUIRE_SIGNED_COMMANDS every unsigned command is refused: only trusted producers act;
- a signed command whose `ce_time` is older than PROCESSED_RETENTION_DAYS is refused: the worker
  may have forgotten its id, so a copy replayed by someone who can read and write the commands
  topic would act again.

A refused command goes to the DLT, not to the database: its (source, id) is not remembered, so
a forgery cannot occupy an id the real producer will use. Without settings (dev), the gateway
and the CLI sign with a key generated once into DATA_DIR, trusted for `/gateway` and `/cli`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey
from sip_trunk_contracts import CommandEnvelope
from sip_trunk_contracts.sealing import base64_bytes

from service.adapters.dev_secrets import dev_key
from service.config import Settings
from service.service_layer.inbound import InboundCommand

__all__ = [
    "ANY_TENANT",
    "CLI_SOURCE",
    "GATEWAY_SOURCE",
    "HEADER",
    "CommandSigner",
    "ProducerTrust",
    "command_signer",
    "producer_trust",
]

HEADER = "ce_signature"
ANY_TENANT = "*"
# The service's own producers. One `ce_source` for every gateway instance, fixed: commands are
# told apart by source + id, so an Idempotency-Key retried on another instance must be the very
# same command.
GATEWAY_SOURCE = "/gateway"
CLI_SOURCE = "/cli"
DEV_SOURCES = (GATEWAY_SOURCE, CLI_SOURCE)
DEV_KEY_FILE = "command-signing.key"
_VERSION = "v1"
# Domain separation: these bytes are never signed for any other purpose.
_CONTEXT = b"sip-trunks command signature v1\n"


def _signed_bytes(
    ce_id: str, source: str, ce_type: str, ce_time: datetime, key: bytes | None, value: bytes | None
) -> bytes:
    # ce_time as CloudEventHeaders normalises it (UTC, milliseconds) on both sides.
    parts = [ce_id.encode(), source.encode(), ce_type.encode(), ce_time.isoformat().encode()]
    parts += [hashlib.sha256(part or b"").hexdigest().encode() for part in (key, value)]
    return _CONTEXT + b"\n".join(parts)


def key_id(key: VerifyKey) -> str:
    """A short name of a public key: which trusted producer a signature claims to be."""
    return hashlib.sha256(bytes(key)).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class CommandSigner:
    """Signs the commands of one producer (the gateway, the CLI)."""

    def __init__(self, seed: bytes) -> None:
        self._key = SigningKey(seed)
        self.public_key = self._key.verify_key
        self._prefix = f"{_VERSION}.{key_id(self.public_key)}."

    def header(self, command: CommandEnvelope, value: bytes) -> tuple[str, bytes]:
        """The `ce_signature` header of `command` sent with this value."""
        ce = command.headers
        signed = _signed_bytes(ce.id, ce.source, ce.type, ce.time, command.key_bytes(), value)
        return HEADER, (self._prefix + _b64(self._key.sign(signed).signature)).encode("ascii")


@dataclass(frozen=True, slots=True)
class _Producer:
    key: VerifyKey
    sources: frozenset[str]
    tenants: frozenset[str]


class ProducerTrust:
    """The worker's judge of who sent a command (see the module docstring)."""

    def __init__(
        self,
        producers: Iterable[_Producer],
        *,
        require_signature: bool,
        max_age: timedelta,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._by_id = {key_id(p.key): p for p in producers}
        self._reserved = frozenset(s for p in self._by_id.values() for s in p.sources)
        self._require_signature = require_signature
        self._max_age = max_age
        self._now = now

    def refusal(
        self,
        command: InboundCommand,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes | None]],
    ) -> str | None:
        """Why this command may not act, or None when it may."""
        source = command.ce.source
        signature = next((v for k, v in headers if k == HEADER), None)
        if signature is None:
            if source in self._reserved:
                return f"ce_source {source!r} is reserved to a trusted producer: sign the command"
            if command.tenant_id is None and command.model is not None:
                # (An invalid command acts for no one: it gets its TrunkRejected as before.)
                return "only a trusted producer's signed command may act for the platform"
            return "the command is not signed" if self._require_signature else None
        ce = command.ce
        producer = self._verified(
            signature, _signed_bytes(ce.id, source, ce.type, ce.time, key, value)
        )
        if producer is None:
            return "the signature does not verify with any trusted producer's key"
        if ce.time < self._now() - self._max_age:
            return (
                f"signed at {ce.time.isoformat()}, longer ago than the command ids are "
                f"remembered ({self._max_age.days} days): a replay"
            )
        if source not in producer.sources:
            return f"the signing producer may not use ce_source {source!r}"
        if ANY_TENANT not in producer.tenants and command.tenant_id not in producer.tenants:
            return "the signing producer may not act for this tenant"
        return None

    def _verified(self, header: bytes, signed: bytes) -> _Producer | None:
        version, _, rest = header.decode("ascii", "replace").partition(".")
        kid, _, signature = rest.partition(".")
        producer = self._by_id.get(kid)
        if version != _VERSION or producer is None:
            return None
        try:
            producer.key.verify(signed, base64_bytes(signature))
        except (BadSignatureError, ValueError):
            return None
        return producer


def _dev_seed(settings: Settings) -> bytes:
    return dev_key(settings.data_dir, DEV_KEY_FILE)


def command_signer(settings: Settings) -> CommandSigner:
    """The gateway's and the CLI's signer: COMMAND_SIGNING_KEY, or the dev key."""
    if settings.command_signing_key is None:
        return CommandSigner(_dev_seed(settings))
    return CommandSigner(base64_bytes(settings.command_signing_key.get_secret_value()))


def producer_trust(settings: Settings) -> ProducerTrust:
    """The worker's trust: TRUSTED_PRODUCERS, or the dev key for the service's own sources."""
    if settings.trusted_producers is None:
        dev_public = SigningKey(_dev_seed(settings)).verify_key
        producers = [_Producer(dev_public, frozenset(DEV_SOURCES), frozenset([ANY_TENANT]))]
    else:
        producers = [
            _Producer(
                VerifyKey(base64_bytes(p.public_key)), frozenset(p.sources), frozenset(p.tenants)
            )
            for p in settings.trusted_producers
        ]
    return ProducerTrust(
        producers,
        require_signature=settings.require_signed_commands,
        max_age=timedelta(days=settings.processed_retention_days),
    )
