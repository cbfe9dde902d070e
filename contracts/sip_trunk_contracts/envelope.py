"""A command as a producer sends it: Kafka key, CloudEvents headers and JSON body (CONTRACT.md §3).

The one place that knows how a command is laid out: ``trunkId`` and ``tenantId`` (the acting
tenant), then the fields of a create, or ``expectedVersion`` and ``changes`` of an update, or
``expectedVersion`` of a delete; the trunk id as the Kafka key; ``ce_type`` from the model.
The REST gateway, the CLI, the test fakes and the benchmark all build their commands here.

The trunk fields are passed through as given: the service's domain is the single judge of the
field rules (and answers with ``validation_failed`` naming each field), so nothing is checked
or dropped here. What the envelope itself needs is checked: a field may not overwrite it.

Example::

    command = CommandEnvelope.update(
        {"name": "Renamed"}, trunk_id=trunk_id, tenant_id="acme", source="/my-app"
    )
    await producer.send_and_wait(
        topics.commands, key=command.key_bytes(), value=command.value(),
        headers=command.kafka_headers(),
    )
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from uuid import UUID, uuid4

from . import strict_json
from .cloudevents import CloudEventHeaders
from .commands import CreateSipTrunk, DeleteSipTrunk, UpdateSipTrunk

__all__ = ["ENVELOPE_KEYS", "CommandEnvelope", "envelope_keys_in"]

ENVELOPE_KEYS: Final = ("trunkId", "tenantId")
"""Keys of every command body that are not trunk fields; a create's fields may not use them."""


def envelope_keys_in(fields: Mapping[str, Any]) -> list[str]:
    """The envelope's own keys that `fields` holds: a create may not set them (they would act
    for another trunk or tenant)."""
    return [name for name in ENVELOPE_KEYS if name in fields]


@dataclass(frozen=True, slots=True)
class CommandEnvelope:
    """One command, ready for the commands topic. Build it with :meth:`create`, :meth:`update`
    or :meth:`delete`."""

    key: str
    """The trunk id as text: the Kafka key, so that one trunk's commands stay in order."""
    headers: CloudEventHeaders
    body: dict[str, Any] = field(repr=False)  # may hold a password
    """The JSON object sent as the value."""

    @property
    def ce_type(self) -> str:
        return self.headers.type

    @property
    def command_id(self) -> str:
        """``ce_id``: with ``ce_source``, what the service deduplicates by."""
        return self.headers.id

    @property
    def trunk_id(self) -> str:
        return self.key

    @property
    def tenant_id(self) -> str | None:
        tenant: str | None = self.body["tenantId"]
        return tenant

    def key_bytes(self) -> bytes:
        return self.key.encode("utf-8")

    def value(self) -> bytes:
        """The body as strict JSON (RFC 8259, at most 32 deep). Raises
        ``strict_json.JsonError`` (a ValueError) for anything the service would not read:
        NaN, infinities, lone surrogates, deeper nesting."""
        return strict_json.dumps(self.body)

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        return self.headers.to_kafka()

    # --- builders ----------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        fields: Mapping[str, Any],
        *,
        trunk_id: UUID | str,
        tenant_id: str | None,
        source: str,
        command_id: str | None = None,
        correlation_id: str | None = None,
        time: datetime | None = None,
    ) -> CommandEnvelope:
        """``CreateSipTrunk``: ``fields`` are the trunk's writable fields (a REST ``POST``
        body), passed through. Raises ValueError if they hold a key of :data:`ENVELOPE_KEYS`."""
        clash = envelope_keys_in(fields)
        if clash:
            raise ValueError(f"the fields may not hold {', '.join(clash)}: they are the envelope's")
        body = {"trunkId": str(trunk_id), "tenantId": tenant_id, **fields}
        return cls._build(CreateSipTrunk.CE_TYPE, body, source, command_id, correlation_id, time)

    @classmethod
    def update(
        cls,
        changes: Mapping[str, Any],
        *,
        trunk_id: UUID | str,
        tenant_id: str | None,
        source: str,
        expected_version: int | None = None,
        command_id: str | None = None,
        correlation_id: str | None = None,
        time: datetime | None = None,
    ) -> CommandEnvelope:
        """``UpdateSipTrunk``: ``changes`` is a JSON Merge Patch of writable fields."""
        body = _envelope(trunk_id, tenant_id, expected_version)
        body["changes"] = dict(changes)
        return cls._build(UpdateSipTrunk.CE_TYPE, body, source, command_id, correlation_id, time)

    @classmethod
    def delete(
        cls,
        *,
        trunk_id: UUID | str,
        tenant_id: str | None,
        source: str,
        expected_version: int | None = None,
        command_id: str | None = None,
        correlation_id: str | None = None,
        time: datetime | None = None,
    ) -> CommandEnvelope:
        """``DeleteSipTrunk``."""
        body = _envelope(trunk_id, tenant_id, expected_version)
        return cls._build(DeleteSipTrunk.CE_TYPE, body, source, command_id, correlation_id, time)

    @classmethod
    def _build(
        cls,
        ce_type: str,
        body: dict[str, Any],
        source: str,
        command_id: str | None,
        correlation_id: str | None,
        time: datetime | None,
    ) -> CommandEnvelope:
        headers = CloudEventHeaders.new(
            ce_type, source, correlation_id or str(uuid4()), id=command_id, time=time
        )
        return cls(body["trunkId"], headers, body)


def _envelope(trunk_id: UUID | str, tenant_id: str | None, version: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"trunkId": str(trunk_id), "tenantId": tenant_id}
    if version is not None:
        body["expectedVersion"] = version
    return body
