"""REST writes as commands (CONTRACT §3): the body, the Kafka key and the command id.

Idempotency rests on the worker: a command id (`ce_id`) it has seen gets the first outcome
again, or `idempotency_key_reused` if the body differs. So a request with an `Idempotency-Key`
gets a command id derived from the tenant and the key (and a create, a trunk id derived the same
way): a retry is the identical command. Without a key, every request is a new command.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sip_trunk_contracts import CreateSipTrunk, DeleteSipTrunk, FieldError, UpdateSipTrunk

from service.entrypoints.gateway.problems import Code, ProblemError

__all__ = ["IDEMPOTENCY_NAMESPACE", "Command", "create_command", "delete_command", "update_command"]

# Fixed forever: changing it would turn every retry after a deploy into a new command.
IDEMPOTENCY_NAMESPACE = UUID("6f1d3c52-93a4-4f0e-9c61-5d2b8e7a0c14")
_ENVELOPE = ("trunkId", "tenantId")


@dataclass(frozen=True, slots=True)
class Command:
    ce_type: str
    trunk_id: str  # also the Kafka key
    command_id: str
    body: dict[str, Any]


def _derived(tenant: str, key: str, *purpose: str) -> str:
    # A JSON array keeps (tenant, key) pairs apart whatever characters they hold.
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, json.dumps([tenant, key, *purpose])))


def _command_id(tenant: str, idempotency_key: str | None) -> str:
    return _derived(tenant, idempotency_key) if idempotency_key else str(uuid.uuid4())


def create_command(tenant: str, fields: Mapping[str, Any], idempotency_key: str | None) -> Command:
    """`fields` is the request body, passed through: the worker refuses what is not writable."""
    clash = [name for name in _ENVELOPE if name in fields]
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
    body = {"trunkId": trunk_id, "tenantId": tenant, **fields}
    return Command(CreateSipTrunk.CE_TYPE, trunk_id, _command_id(tenant, idempotency_key), body)


def _envelope(tenant: str, trunk_id: UUID, expected_version: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"trunkId": str(trunk_id), "tenantId": tenant}
    if expected_version is not None:
        body["expectedVersion"] = expected_version
    return body


def update_command(
    tenant: str,
    trunk_id: UUID,
    changes: Mapping[str, Any],
    expected_version: int | None,
    idempotency_key: str | None,
) -> Command:
    body = {**_envelope(tenant, trunk_id, expected_version), "changes": dict(changes)}
    return Command(
        UpdateSipTrunk.CE_TYPE, str(trunk_id), _command_id(tenant, idempotency_key), body
    )


def delete_command(
    tenant: str, trunk_id: UUID, expected_version: int | None, idempotency_key: str | None
) -> Command:
    body = _envelope(tenant, trunk_id, expected_version)
    return Command(
        DeleteSipTrunk.CE_TYPE, str(trunk_id), _command_id(tenant, idempotency_key), body
    )
