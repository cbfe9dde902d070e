"""The service layer's view of the outside world: small protocols the adapters implement."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self
from uuid import UUID

from service.domain.model import SipTrunk
from service.service_layer.messages import OutgoingMessage

__all__ = [
    "ConcurrentModification",
    "Lease",
    "ListedTrunk",
    "Outbox",
    "PasswordSeal",
    "ProcessedCommand",
    "ProcessedCommands",
    "ProviderListing",
    "TrunkProvider",
    "TrunkRepository",
    "UnitOfWork",
    "UnitOfWorkFactory",
]


class ConcurrentModification(RuntimeError):
    """Another transaction changed the trunk since it was read (a unit of work's version guard)."""


@dataclass(frozen=True, slots=True)
class ProcessedCommand:
    source: str
    command_id: str
    command_type: str
    body_sha256: str
    outcome: OutgoingMessage
    processed_at: datetime


class TrunkRepository(Protocol):
    async def get(self, trunk_id: UUID) -> SipTrunk | None: ...
    async def add(self, trunk: SipTrunk) -> None: ...
    async def update(self, trunk: SipTrunk) -> None:
        """Store `trunk`, at its new version, over the row as read (version-guarded)."""
        ...

    async def delete(self, trunk: SipTrunk) -> None:
        """Remove the trunk; `trunk` is it as deleted, at its next version (version-guarded
        like `update`: a row changed since it was read is not deleted)."""
        ...

    async def list_all(self) -> list[SipTrunk]: ...


class Outbox(Protocol):
    async def add(self, messages: Sequence[OutgoingMessage]) -> None: ...


class ProcessedCommands(Protocol):
    async def get(self, source: str, command_id: str) -> ProcessedCommand | None: ...
    async def add(self, record: ProcessedCommand) -> None: ...


class UnitOfWork(Protocol):
    """Reads first, then `commit()`: every write in one database transaction, refused whole
    when a row changed since it was read. Leaving the block without `commit()` writes nothing.
    No database lock need be held in between (the provider calls of a batch are made there)."""

    @property
    def trunks(self) -> TrunkRepository: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def processed(self) -> ProcessedCommands: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    async def prefetch(
        self, trunk_ids: Collection[UUID], commands: Collection[tuple[str, str]]
    ) -> None:
        """A hint: load these trunks and processed-command rows (source, id) in one go."""
        ...

    async def commit(self) -> None: ...


# A fresh unit of work (one transaction) per call.
UnitOfWorkFactory = Callable[[], UnitOfWork]


class Lease(Protocol):
    """One active holder per database of a named job (reconcile, system trunks)."""

    async def held(self) -> bool:
        """True when this process may run the job now (acquiring the lease if it is free)."""
        ...

    async def release(self) -> None: ...


class PasswordSeal(Protocol):
    """Opens the sealed passwords of commands (CONTRACT §4.2) with the worker's private keys."""

    def open(self, sealed: str) -> str | None:
        """The password in `sealed` (`sealed:v1:...`), or None when no key opens it."""
        ...


class TrunkProvider(Protocol):
    """The provider trunk (LiveKit) kept in step with ours.

    Each call returns the provider's id for the trunk (None when the provider keeps none) or
    raises `service.domain.Rejected` with reason provider_rejected / provider_unavailable.
    """

    async def create(self, trunk: SipTrunk) -> str | None: ...
    async def update(self, before: SipTrunk, after: SipTrunk) -> str | None:
        """Keep the provider trunk in step with `after`; no call if nothing it holds changed."""
        ...

    async def delete(self, trunk: SipTrunk) -> None: ...


@dataclass(frozen=True, slots=True)
class ListedTrunk:
    """A trunk as the provider lists it."""

    provider_id: str
    # Our trunk it was made for, read from its metadata; None when this deployment did not make
    # it (never touched then).
    trunk_id: str | None
    # What the provider holds for the fields this service sets, comparable with `==`.
    held: Mapping[str, object]


class ProviderListing(TrunkProvider, Protocol):
    """A provider whose trunks can be listed and repaired one by one: what `reconcile` needs."""

    async def create(self, trunk: SipTrunk) -> str: ...
    async def list_trunks(self) -> list[ListedTrunk]: ...
    def in_step(self, trunk: SipTrunk, listed: ListedTrunk) -> bool:
        """True when the provider's trunk holds what `trunk` maps to (no drift)."""
        ...

    async def replace(self, trunk: SipTrunk, provider_id: str) -> str:
        """Push `trunk` in full; made anew (a new id) when the provider no longer has it."""
        ...

    async def delete_id(self, provider_id: str) -> None: ...
