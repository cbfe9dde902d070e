"""``ce_type`` → model, so a consumer can decode a body by its header alone."""

from __future__ import annotations

from pydantic import BaseModel

from .commands import CreateSipTrunk, DeleteSipTrunk, UpdateSipTrunk
from .events import TrunkCreated, TrunkDeleted, TrunkRejected, TrunkState, TrunkUpdated

__all__ = ["COMMAND_TYPES", "EVENT_TYPES"]

COMMAND_TYPES: dict[str, type[BaseModel]] = {
    m.CE_TYPE: m for m in (CreateSipTrunk, UpdateSipTrunk, DeleteSipTrunk)
}
"""Types accepted on the commands topic."""

EVENT_TYPES: dict[str, type[BaseModel]] = {
    m.CE_TYPE: m for m in (TrunkCreated, TrunkUpdated, TrunkDeleted, TrunkRejected, TrunkState)
}
"""Types written by the service: the events topic, plus ``TrunkState`` on the state topic."""
