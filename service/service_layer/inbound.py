"""Reading a command off Kafka: recognisable (an `InboundCommand`) or not (`Unrecognisable` → DLT).

Recognisable means: CloudEvents headers, a known command `ce_type`, a strict JSON object body
(RFC 8259, nested at most 32 deep: CONTRACT.md §4.1) and a UUID `trunkId`. Anything else about
the body is the domain's to judge, so a recognisable command with a malformed envelope (say
`"changes": 3`) still gets its `TrunkRejected`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from sip_trunk_contracts import (
    COMMAND_TYPES,
    AnyCommand,
    CloudEventHeaders,
    InvalidHeaders,
    field_errors,
)
from sip_trunk_contracts.limits import MAX_BODY_BYTES, MAX_ID_LENGTH
from sip_trunk_contracts.strict_json import JsonError, canonical, loads

from service.domain.errors import FieldViolation

# The limits are the contract's: MAX_BODY_BYTES as the REST API's (a larger command is refused,
# not stored), MAX_ID_LENGTH for ce_id, ce_source and tenantId (the widths the database keeps).
__all__ = ["InboundCommand", "Unrecognisable", "read_command"]


class Unrecognisable(Exception):
    """Not a command this service can answer: it goes to the dead-letter topic."""


@dataclass(frozen=True, slots=True)
class InboundCommand:
    """A recognisable command as read off the commands topic."""

    ce: CloudEventHeaders
    trunk_id: UUID
    tenant_id: str | None
    body: dict[str, Any] = field(repr=False)  # holds the password of a create or update
    model: AnyCommand | None = field(repr=False)  # None when the envelope is invalid: `errors`
    errors: tuple[FieldViolation, ...] = ()

    @property
    def body_sha256(self) -> str:
        """Of the canonical JSON: the same body re-serialised is the same command. Derived from
        `body` when asked (once per command: only the opened body's is wanted), so a copy with
        another body (`dataclasses.replace`) has its own."""
        return hashlib.sha256(canonical(self.body)).hexdigest()


def read_command(
    value: bytes | None, headers: Sequence[tuple[str, bytes | None]]
) -> InboundCommand:
    try:
        ce = CloudEventHeaders.from_kafka(headers)
    except InvalidHeaders as exc:
        raise Unrecognisable(str(exc)) from None
    model_type = COMMAND_TYPES.get(ce.type)
    if model_type is None:
        raise Unrecognisable(f"unknown command type {ce.type!r}")
    if len(ce.id) > MAX_ID_LENGTH or len(ce.source) > MAX_ID_LENGTH:
        raise Unrecognisable(f"ce_id and ce_source may have at most {MAX_ID_LENGTH} characters")
    body = _json_object(value)
    trunk_id = _trunk_id(body)
    tenant_id, errors = _tenant(body.get("tenantId"))
    if len(value or b"") > MAX_BODY_BYTES:  # the bytes as received, like the REST limit
        errors += (FieldViolation("", f"a command body may have at most {MAX_BODY_BYTES} bytes"),)
    model: AnyCommand | None = None
    try:
        if not errors:
            model = model_type.model_validate(body)
    except ValidationError as exc:
        errors = tuple(FieldViolation(e.pointer, e.message) for e in field_errors(exc))
    return InboundCommand(ce, trunk_id, tenant_id, body, model, errors)


def _tenant(value: object) -> tuple[str | None, tuple[FieldViolation, ...]]:
    """The acting tenant, when usable (it is echoed on the rejection), and its errors."""
    if value is None or (isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH):
        return value, ()
    if isinstance(value, str):
        return None, (FieldViolation("/tenantId", f"must have 1-{MAX_ID_LENGTH} characters"),)
    return None, ()  # a wrong type is reported by the envelope model


def _json_object(value: bytes | None) -> dict[str, Any]:
    if value is None:
        raise Unrecognisable("empty message value")
    try:
        body = loads(value)
    except JsonError as exc:
        raise Unrecognisable(f"value is not strict UTF-8 JSON: {exc}") from None
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
