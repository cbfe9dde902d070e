"""Events on ``sip-trunks.events`` and snapshots on ``sip-trunks.state`` (CONTRACT.md §3)."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from ._base import EventModel
from .trunk import TrunkView

__all__ = [
    "FieldError",
    "RejectionReason",
    "TrunkCreated",
    "TrunkDeleted",
    "TrunkRejected",
    "TrunkState",
    "TrunkUpdated",
    "field_errors",
]

_TENANT = "owner tenant; null for system trunks"


class RejectionReason(StrEnum):
    """Why a command was refused; the closed list of CONTRACT.md §3."""

    VALIDATION_FAILED = "validation_failed"
    NOT_FOUND = "not_found"
    SYSTEM_TRUNK_IMMUTABLE = "system_trunk_immutable"
    VERSION_CONFLICT = "version_conflict"
    ALREADY_EXISTS = "already_exists"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    PROVIDER_REJECTED = "provider_rejected"
    PROVIDER_UNAVAILABLE = "provider_unavailable"


class FieldError(BaseModel):
    """One validation problem, located by an RFC 6901 JSON pointer into the request body."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pointer: StrictStr = Field(examples=["/gateways/0/port"])
    message: StrictStr


def _pointer(loc: tuple[int | str, ...]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in loc)


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Turn a pydantic error (e.g. a command envelope that failed to parse) into field errors.

    Lets the service reject a recognisable but malformed command (say ``"changes": 3``)
    with ``validation_failed`` and pointers, the same shape the domain produces.
    """
    return [FieldError(pointer=_pointer(e["loc"]), message=e["msg"]) for e in exc.errors()]


class TrunkCreated(EventModel):
    """A trunk was created (version 1)."""

    CE_TYPE: ClassVar[str] = "sip_trunks.TrunkCreated.v1"

    trunk: TrunkView
    tenantId: StrictStr | None = Field(description=_TENANT)
    version: StrictInt


class TrunkUpdated(EventModel):
    """A trunk changed; ``changedFields`` are dotted paths such as ``authentication.password``."""

    CE_TYPE: ClassVar[str] = "sip_trunks.TrunkUpdated.v1"

    trunk: TrunkView
    tenantId: StrictStr | None = Field(description=_TENANT)
    version: StrictInt
    changedFields: list[StrictStr] = Field(examples=[["name", "authentication.password"]])


class TrunkDeleted(EventModel):
    """A trunk was deleted; ``version`` is the version the delete produced."""

    CE_TYPE: ClassVar[str] = "sip_trunks.TrunkDeleted.v1"

    trunkId: UUID
    tenantId: StrictStr | None = Field(description=_TENANT)
    version: StrictInt


class TrunkRejected(EventModel):
    """A command was refused; nothing changed."""

    CE_TYPE: ClassVar[str] = "sip_trunks.TrunkRejected.v1"

    trunkId: UUID
    tenantId: StrictStr | None = Field(description=_TENANT)
    commandId: StrictStr = Field(description="ce_id of the refused command")
    commandType: StrictStr = Field(description="ce_type of the refused command")
    reason: RejectionReason
    detail: StrictStr
    errors: list[FieldError] = Field(
        description="field problems (validation_failed); empty otherwise"
    )


class TrunkState(EventModel):
    """Latest snapshot of a trunk on the compacted state topic (a tombstone after delete)."""

    CE_TYPE: ClassVar[str] = "sip_trunks.TrunkState.v1"

    trunk: TrunkView
    tenantId: StrictStr | None = Field(description=_TENANT)
    version: StrictInt
