"""REST writes as commands (CONTRACT §3), built with the contract's `CommandEnvelope`.

Idempotency rests on the worker: a command id (`ce_id`) it has seen gets the first outcome
again, or `idempotency_key_reused` if the body differs. So a request with an `Idempotency-Key`
gets a command id derived from the tenant and the key (and a create, a trunk id derived the same
way): a retry is the identical command. Without a key, every request is a new command.

The REST body holds the password in plaintext; the command holds it sealed with the worker's
public key (CONTRACT §4.2), so no password reaches Kafka. A retry seals it anew (other bytes):
the worker compares commands by their opened bodies.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from sip_trunk_contracts import (
    CommandEnvelope,
    FieldError,
    UnsealablePassword,
    envelope_keys_in,
    seal_fields,
)

from service.bootstrap import GATEWAY_SOURCE
from service.entrypoints.gateway.problems import Code, ProblemError
from service.service_layer.passwords import POINTER

__all__ = ["IDEMPOTENCY_NAMESPACE", "create_command", "delete_command", "update_command"]

# Fixed forever: changing it would turn every retry after a deploy into a new command.
IDEMPOTENCY_NAMESPACE = UUID("6f1d3c52-93a4-4f0e-9c61-5d2b8e7a0c14")


def _derived(tenant: str, key: str, *purpose: str) -> str:
    # A JSON array keeps (tenant, key) pairs apart whatever characters they hold.
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, json.dumps([tenant, key, *purpose])))


def _command_id(tenant: str, idempotency_key: str | None) -> str | None:
    """Derived from the key; None (a fresh one) without a key."""
    return _derived(tenant, idempotency_key) if idempotency_key else None


def _sealed(fields: Mapping[str, Any], seal_key: bytes) -> dict[str, Any]:
    """`fields` with the password sealed; 422 for a password that is not a string (the worker
    would refuse it too, but only after it had crossed Kafka as it is)."""
    try:
        return seal_fields(seal_key, fields)
    except UnsealablePassword:
        raise ProblemError(
            Code.VALIDATION_FAILED,
            f"invalid fields: {POINTER}",
            errors=[FieldError(pointer=POINTER, message="must be a string")],
        ) from None


def create_command(
    tenant: str,
    fields: Mapping[str, Any],
    idempotency_key: str | None,
    correlation_id: str | None = None,
    *,
    seal_key: bytes,
) -> CommandEnvelope:
    """`fields` is the request body, passed through: the worker refuses what is not writable."""
    clash = envelope_keys_in(fields)
    if clash:
        # These would overwrite the envelope (and act for another tenant): refuse them by name,
        # as the worker refuses any other unknown field.
        raise ProblemError(
            Code.VALIDATION_FAILED,
            "invalid fields: " + ", ".join(f"/{name}" for name in clash),
            errors=[
                FieldError(pointer=f"/{name}", message="is not a known field") for name in clash
            ],
        )
    trunk_id = _derived(tenant, idempotency_key, "trunk") if idempotency_key else str(uuid.uuid4())
    return CommandEnvelope.create(
        _sealed(fields, seal_key),
        trunk_id=trunk_id,
        tenant_id=tenant,
        source=GATEWAY_SOURCE,
        command_id=_command_id(tenant, idempotency_key),
        correlation_id=correlation_id,
    )


def update_command(
    tenant: str,
    trunk_id: UUID,
    changes: Mapping[str, Any],
    expected_version: int | None,
    idempotency_key: str | None,
    correlation_id: str | None = None,
    *,
    seal_key: bytes,
) -> CommandEnvelope:
    return CommandEnvelope.update(
        _sealed(changes, seal_key),
        trunk_id=trunk_id,
        tenant_id=tenant,
        source=GATEWAY_SOURCE,
        expected_version=expected_version,
        command_id=_command_id(tenant, idempotency_key),
        correlation_id=correlation_id,
    )


def delete_command(
    tenant: str,
    trunk_id: UUID,
    expected_version: int | None,
    idempotency_key: str | None,
    correlation_id: str | None = None,
) -> CommandEnvelope:
    return CommandEnvelope.delete(
        trunk_id=trunk_id,
        tenant_id=tenant,
        source=GATEWAY_SOURCE,
        expected_version=expected_version,
        command_id=_command_id(tenant, idempotency_key),
        correlation_id=correlation_id,
    )
