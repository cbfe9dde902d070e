"""The trunk as every client sees it (CONTRACT.md §1); the password is always masked."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from ._base import UtcDateTime

__all__ = ["MASKED_PASSWORD", "AuthenticationView", "GatewayView", "TrunkView"]

MASKED_PASSWORD = "********"  # noqa: S105 - the mask shown instead of any password

# Not model-wide strict: see EventModel. Scalars refuse coercion (``"5060"``) individually.
_VIEW_CONFIG = ConfigDict(extra="forbid", frozen=True)


class GatewayView(BaseModel):
    """One SIP gateway of a trunk."""

    model_config = _VIEW_CONFIG

    ipOrDomain: StrictStr
    port: StrictInt
    name: StrictStr


class AuthenticationView(BaseModel):
    """Credentials with the password masked: the real one never leaves the service."""

    model_config = _VIEW_CONFIG

    username: StrictStr
    password: Literal["********"]


class TrunkView(BaseModel):
    """The public trunk document; field order is the order of the contract example."""

    model_config = _VIEW_CONFIG

    id: UUID
    name: StrictStr
    gateways: list[GatewayView]
    authentication: AuthenticationView | None = Field(
        description="null for a trunk without credentials"
    )
    advanced: dict[str, Any]
    isSystem: StrictBool
    providerId: StrictStr | None = Field(description="id of the trunk at the provider (LiveKit)")
    createdAt: UtcDateTime
    updatedAt: UtcDateTime
