"""Public Kafka contract of the SIP trunk service (see CONTRACT.md).

Depends on pydantic and the standard library only, so any producer or consumer can use it.
Build commands with `CommandEnvelope`; the contract's limits are in `sip_trunk_contracts.limits`.
Passwords are sealed with `seal_fields` / `seal_password` (§4.2), which need the extra
`sip-trunk-contracts[seal]` (PyNaCl) when called.
"""

from __future__ import annotations

from ._base import UtcDateTime, format_utc
from .cloudevents import (
    CONTENT_TYPE_JSON,
    SPECVERSION,
    CloudEventHeaders,
    InvalidHeaders,
    UnknownType,
    decode,
    encode,
)
from .commands import CreateSipTrunk, DeleteSipTrunk, UpdateSipTrunk
from .envelope import ENVELOPE_KEYS, CommandEnvelope, envelope_keys_in
from .events import (
    FieldError,
    RejectionReason,
    TrunkCreated,
    TrunkDeleted,
    TrunkRejected,
    TrunkState,
    TrunkUpdated,
    field_errors,
)
from .registry import (
    COMMAND_TYPES,
    EVENT_TYPES,
    OUTCOME_TYPES,
    AnyCommand,
    AnyEvent,
    OutcomeEvent,
)
from .sealing import (
    SEALED_PREFIX,
    UnsealablePassword,
    is_sealed,
    seal_fields,
    seal_password,
)
from .topics import COMMANDS, DLT, EVENTS, STATE, Topics
from .trunk import MASKED_PASSWORD, AuthenticationView, GatewayView, TrunkView

__all__ = [
    "COMMANDS",
    "COMMAND_TYPES",
    "CONTENT_TYPE_JSON",
    "DLT",
    "ENVELOPE_KEYS",
    "EVENTS",
    "EVENT_TYPES",
    "MASKED_PASSWORD",
    "OUTCOME_TYPES",
    "SEALED_PREFIX",
    "SPECVERSION",
    "STATE",
    "AnyCommand",
    "AnyEvent",
    "AuthenticationView",
    "CloudEventHeaders",
    "CommandEnvelope",
    "CreateSipTrunk",
    "DeleteSipTrunk",
    "FieldError",
    "GatewayView",
    "InvalidHeaders",
    "OutcomeEvent",
    "RejectionReason",
    "Topics",
    "TrunkCreated",
    "TrunkDeleted",
    "TrunkRejected",
    "TrunkState",
    "TrunkUpdated",
    "TrunkView",
    "UnknownType",
    "UnsealablePassword",
    "UpdateSipTrunk",
    "UtcDateTime",
    "decode",
    "encode",
    "envelope_keys_in",
    "field_errors",
    "format_utc",
    "is_sealed",
    "seal_fields",
    "seal_password",
]
