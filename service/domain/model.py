"""The SipTrunk aggregate's data: plain, immutable values. The rules live in `rules.py`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

__all__ = ["Credentials", "Gateway", "SipTrunk", "TrunkChange"]


@dataclass(frozen=True, slots=True)
class Gateway:
    ip_or_domain: str  # normalised: lower-case, no trailing dot
    port: int
    name: str


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    # Plaintext only inside the domain and the encrypting repository; masked at every boundary.
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SipTrunk:
    id: UUID
    tenant_id: str | None  # None for system trunks
    name: str
    gateways: tuple[Gateway, ...]
    authentication: Credentials | None
    # Validated `advanced` object with the contract's camelCase keys (only those that were set).
    advanced: Mapping[str, Any]
    is_system: bool
    provider_id: str | None
    created_at: datetime  # UTC, microseconds: the creation order
    updated_at: datetime
    version: int


@dataclass(frozen=True, slots=True)
class TrunkChange:
    """The result of applying a command: the new state and what changed (empty: nothing did)."""

    trunk: SipTrunk
    changed_fields: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.changed_fields)
