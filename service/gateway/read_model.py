"""The gateway's read model: the latest snapshot of every trunk, in memory.

Fed by the compacted `sip-trunks.state` topic (from the beginning at start) and by every
outcome event the gateway sees, so a client reads its own writes. The two topics are read
independently, so either may lag: every change is guarded by its `revision`, (createdAt,
version). An older snapshot never overwrites a newer one, and a deleted trunk is not brought
back by a lagging snapshot of itself; an id created afresh after a delete has a later
createdAt, so it is a newer revision.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sip_trunk_contracts import TrunkCreated, TrunkDeleted, TrunkState, TrunkUpdated

__all__ = ["ReadModel", "TrunkRecord"]

_SNAPSHOTS = {TrunkCreated.CE_TYPE, TrunkUpdated.CE_TYPE, TrunkState.CE_TYPE}


@dataclass(frozen=True, slots=True)
class TrunkRecord:
    trunk: Mapping[str, Any]  # the trunk JSON exactly as on the wire (CONTRACT §1)
    tenant_id: str | None
    version: int

    @property
    def id(self) -> str:
        return str(self.trunk["id"])

    @property
    def revision(self) -> tuple[str, int]:
        return (str(self.trunk["createdAt"]), self.version)

    @property
    def order_key(self) -> tuple[str, str]:
        """Oldest first; RFC 3339 UTC strings of one format sort as their instants."""
        return (str(self.trunk["createdAt"]), self.id)

    def visible_to(self, tenant_id: str | None) -> bool:
        return bool(self.trunk["isSystem"]) or self.tenant_id == tenant_id


class ReadModel:
    def __init__(self) -> None:
        self._trunks: dict[str, TrunkRecord] = {}
        self._order: list[tuple[str, str]] = []  # order keys, sorted
        self._deleted: dict[str, tuple[str, int]] = {}  # id -> revision of the delete

    def __len__(self) -> int:
        return len(self._trunks)

    def get(self, trunk_id: str) -> TrunkRecord | None:
        return self._trunks.get(trunk_id)

    def page(
        self, tenant_id: str | None, *, after: tuple[str, str] | None, limit: int
    ) -> list[TrunkRecord]:
        """Up to `limit` trunks visible to the tenant, oldest first, after the cursor key."""
        start = bisect.bisect_right(self._order, after) if after else 0
        found: list[TrunkRecord] = []
        for key in self._order[start:]:
            record = self._trunks[key[1]]
            if record.visible_to(tenant_id):
                found.append(record)
                if len(found) == limit:
                    break
        return found

    def apply(self, ce_type: str, body: Mapping[str, Any]) -> None:
        """Apply an event or a state snapshot body (ignores what is not about trunk state)."""
        if ce_type in _SNAPSHOTS:
            self.upsert(TrunkRecord(body["trunk"], body["tenantId"], int(body["version"])))
        elif ce_type == TrunkDeleted.CE_TYPE:
            self.delete(str(body["trunkId"]), int(body["version"]))

    def upsert(self, record: TrunkRecord) -> None:
        current = self._trunks.get(record.id)
        if current is not None and current.revision >= record.revision:
            return
        if record.revision <= self._deleted.get(record.id, ("", 0)):
            return
        if current is not None:
            self._drop(current)
        self._trunks[record.id] = record
        bisect.insort(self._order, record.order_key)

    def delete(self, trunk_id: str, version: int) -> None:
        """A delete seen on the events topic, at the version the delete produced."""
        current = self._trunks.get(trunk_id)
        created = str(current.trunk["createdAt"]) if current else ""
        self._deleted[trunk_id] = max((created, version), self._deleted.get(trunk_id, ("", 0)))
        if current is not None and current.version < version:
            self._drop(current)

    def tombstone(self, trunk_id: str) -> None:
        """The state topic's tombstone: the trunk's latest incarnation is gone."""
        current = self._trunks.get(trunk_id)
        if current is not None:
            self._deleted[trunk_id] = max(
                (str(current.trunk["createdAt"]), current.version + 1),
                self._deleted.get(trunk_id, ("", 0)),
            )
            self._drop(current)

    def _drop(self, record: TrunkRecord) -> None:
        del self._trunks[record.id]
        index = bisect.bisect_left(self._order, record.order_key)
        del self._order[index]
