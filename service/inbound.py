"""Reading a command off Kafka: recognisable (a `Command`) or not (`Unrecognisable` → DLT).

Recognisable means: CloudEvents headers, a known command `ce_type`, a JSON object body and a
UUID `trunkId`. Anything else about the body is the domain's to judge, so a recognisable command
with a malformed envelope (say `"changes": 3`) still gets its `TrunkRejected`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ValidationError
from sip_trunk_contracts import COMMAND_TYPES, CloudEventHeaders, InvalidHeaders, field_errors

from service.domain.errors import FieldError

__all__ = ["Command", "Unrecognisable", "read_command"]


class Unrecognisable(Exception):
    """Not a command this service can answer: it goes to the dead-letter topic."""


@dataclass(frozen=True, slots=True)
class Command:
    ce: CloudEventHeaders
    trunk_id: UUID
    tenant_id: str | None
    body: dict[str, Any]
    body_sha256: str  # of the canonical JSON: the same body re-serialised is the same command
    model: BaseModel | None  # None when the envelope failed to parse: see `errors`
    errors: tuple[FieldError, ...] = ()


def read_command(value: bytes | None, headers: Sequence[tuple[str, bytes | None]]) -> Command:
    try:
        ce = CloudEventHeaders.from_kafka(headers)
    except InvalidHeaders as exc:
        raise Unrecognisable(str(exc)) from None
    model_type = COMMAND_TYPES.get(ce.type)
    if model_type is None:
        raise Unrecognisable(f"unknown command type {ce.type!r}")
    body = _json_object(value)
    trunk_id = _trunk_id(body)
    tenant = body.get("tenantId")
    tenant_id = tenant if isinstance(tenant, str) else None
    digest = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    try:
        model: BaseModel | None = model_type.model_validate(body)
        errors: tuple[FieldError, ...] = ()
    except ValidationError as exc:
        model = None
        errors = tuple(FieldError(e.pointer, e.message) for e in field_errors(exc))
    return Command(ce, trunk_id, tenant_id, body, digest, model, errors)


def _json_object(value: bytes | None) -> dict[str, Any]:
    if value is None:
        raise Unrecognisable("empty message value")
    try:
        # Decode explicitly: json.loads(bytes) would also accept UTF-16/32, the contract says UTF-8.
        body = json.loads(value.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSON and Unicode errors are ValueErrors
        raise Unrecognisable(f"value is not UTF-8 JSON: {str(exc)[:200]}") from None
    if not isinstance(body, dict):
        raise Unrecognisable("value is not a JSON object")
    return body


def _trunk_id(body: dict[str, Any]) -> UUID:
    raw = body.get("trunkId")
    if isinstance(raw, str):
        try:
            return UUID(raw)
        except ValueError:
            pass
    raise Unrecognisable("no valid trunkId (a UUID string) in the command")
