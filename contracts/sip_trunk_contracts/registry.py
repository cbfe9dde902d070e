"""``ce_type`` → model, so a consumer can decode a body by its header alone.

The maps are typed by the closed unions below, so that what a lookup returns can be narrowed
with ``isinstance`` or ``match`` (no ``cast``): a ``CreateSipTrunk`` handler gets a
``CreateSipTrunk``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

from .commands import CreateSipTrunk, DeleteSipTrunk, UpdateSipTrunk
from .events import TrunkCreated, TrunkDeleted, TrunkRejected, TrunkState, TrunkUpdated

__all__ = [
    "COMMAND_TYPES",
    "EVENT_TYPES",
    "OUTCOME_TYPES",
    "AnyCommand",
    "AnyEvent",
    "OutcomeEvent",
]

AnyCommand: TypeAlias = CreateSipTrunk | UpdateSipTrunk | DeleteSipTrunk
"""Every command of the commands topic."""

OutcomeEvent: TypeAlias = TrunkCreated | TrunkUpdated | TrunkDeleted | TrunkRejected
"""The events that answer a command: exactly one per command (CONTRACT.md §3)."""

AnyEvent: TypeAlias = OutcomeEvent | TrunkState
"""Everything the service writes: outcome events, and snapshots on the state topic."""

COMMAND_TYPES: Mapping[str, type[AnyCommand]] = {
    m.CE_TYPE: m for m in (CreateSipTrunk, UpdateSipTrunk, DeleteSipTrunk)
}
"""Types accepted on the commands topic."""

OUTCOME_TYPES: Mapping[str, type[OutcomeEvent]] = {
    m.CE_TYPE: m for m in (TrunkCreated, TrunkUpdated, TrunkDeleted, TrunkRejected)
}
"""Types of the events topic."""

EVENT_TYPES: Mapping[str, type[AnyEvent]] = {**OUTCOME_TYPES, TrunkState.CE_TYPE: TrunkState}
"""Types written by the service: the events topic, plus ``TrunkState`` on the state topic."""
