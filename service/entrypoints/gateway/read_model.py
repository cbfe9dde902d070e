"""The gateway's read model: the latest snapshot of every trunk, in memory.

Fed by the compacted `sip-trunks.state` topic (from the beginning at start: `snapshot`,
`tombstone`) and by every outcome event the gateway sees on `sip-trunks.events` (`apply`), so a
client reads its own writes. Each topic is in order per trunk, but the two are read
independently, so either may lag behind the other:

- An incarnation of a trunk id is told by its createdAt: an id deleted and created afresh gets a
  later one (the worker's clock never goes back). A record's revision is (createdAt, version);
  an older record never overwrites a newer one.
- A delete (TrunkDeleted, or the state topic's tombstone) ends an incarnation: every revision up
  to it is dead, so a lagging snapshot never brings a deleted trunk back, while an id created
  afresh is newer and appears. Which incarnation: the one the delete's own topic showed last;
  when that topic showed none since the gateway started (TrunkDeleted arriving before the
  trunk's snapshot on a freshly started gateway), every one created before the delete's
  `ce_time`; without a usable `ce_time`, the record held, if older than the delete.

A list reads only what its caller sees: each audience (one tenant's trunks, or the system
trunks that every tenant sees) has its own sorted list of order keys, and a page merges the
caller's tenant's with the system trunks from the cursor on. So a page costs its own size, not
the model's (`python -m bench.read_model`: a tenant without trunks among 100,000 of another's).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeAlias

from pydantic import TypeAdapter
from sip_trunk_contracts import TrunkCreated, TrunkDeleted, TrunkUpdated, UtcDateTime
from sip_trunk_contracts.strict_json import dumps

__all__ = ["OrderKey", "ReadModel", "TrunkRecord", "parse_instant"]

OrderKey: TypeAlias = tuple[datetime, str]  # (createdAt, id): oldest first, exact
Revision: TypeAlias = tuple[datetime, int]  # (createdAt, version)
Audience: TypeAlias = tuple[bool, str | None]  # (system, tenant id): who sees a trunk

_EVENT_SNAPSHOTS = {TrunkCreated.CE_TYPE, TrunkUpdated.CE_TYPE}
_ALL_VERSIONS = sys.maxsize
# `ce_time` is written to the millisecond (sip_trunk_contracts.cloudevents): the delete happened
# before its ce_time plus this.
_CE_TIME_RESOLUTION = timedelta(milliseconds=1)
_INSTANT: TypeAdapter[datetime] = TypeAdapter(UtcDateTime)
_SYSTEM: Audience = (True, None)


def parse_instant(text: object) -> datetime:
    """An RFC 3339 timestamp as a UTC instant, whatever its number of fractional digits (old
    snapshots have none): strings of varying width do not sort as instants, datetimes do.
    Raises ValueError."""
    return _INSTANT.validate_python(text)


@dataclass(frozen=True, slots=True)
class TrunkRecord:
    # The trunk JSON as the API answers it (CONTRACT §1), encoded once on arrival: bytes are a
    # fifth of the memory of the parsed objects, and a GET or a list sends them as they are.
    json: bytes
    id: str
    tenant_id: str | None
    version: int
    created: datetime = field(repr=False)
    # Read once, on arrival: it picks the record's index, so a body without it is refused.
    is_system: bool = field(repr=False)

    @classmethod
    def of(cls, trunk: Mapping[str, Any], tenant_id: str | None, version: int) -> TrunkRecord:
        """From the trunk JSON as on the wire. Raises KeyError, TypeError or ValueError."""
        return cls(
            dumps(trunk),  # as Starlette's JSONResponse would write it: the same bytes
            str(trunk["id"]),
            tenant_id,
            version,
            parse_instant(trunk["createdAt"]),
            bool(trunk["isSystem"]),
        )

    @property
    def revision(self) -> Revision:
        return (self.created, self.version)

    @property
    def order_key(self) -> OrderKey:
        """Creation order (CONTRACT §4.1); an id breaks a tie between workers' clocks."""
        return (self.created, self.id)

    def visible_to(self, tenant_id: str | None) -> bool:
        return self.is_system or self.tenant_id == tenant_id

    @property
    def audience(self) -> Audience:
        return _SYSTEM if self.is_system else (False, self.tenant_id)


class ReadModel:
    def __init__(self) -> None:
        self._trunks: dict[str, TrunkRecord] = {}
        # audience -> the order keys of its trunks, sorted (keys only: the records are in
        # _trunks). An audience without trunks has no entry.
        self._index: dict[Audience, list[OrderKey]] = {}
        self._dead: dict[str, Revision] = {}  # id -> every revision up to this one is deleted
        # id -> createdAt of the incarnation each topic showed last (until it showed its end)
        self._seen_on_events: dict[str, datetime] = {}
        self._seen_on_state: dict[str, datetime] = {}

    def __len__(self) -> int:
        return len(self._trunks)

    def get(self, trunk_id: str) -> TrunkRecord | None:
        return self._trunks.get(trunk_id)

    def page(
        self, tenant_id: str | None, *, after: OrderKey | None, limit: int
    ) -> list[TrunkRecord]:
        """Up to `limit` trunks visible to the tenant, oldest first, after the cursor key."""
        runs = [self._run(audience, after, limit) for audience in ((False, tenant_id), _SYSTEM)]
        merged = itertools.islice(heapq.merge(*runs), limit)
        return [self._trunks[trunk_id] for _, trunk_id in merged]

    def _run(self, audience: Audience, after: OrderKey | None, limit: int) -> list[OrderKey]:
        """The audience's first `limit` keys after the cursor key: all a page may take from it."""
        keys = self._index.get(audience, [])
        start = bisect.bisect_right(keys, after) if after else 0
        return keys[start : start + limit]

    def apply(self, ce_type: str, body: Mapping[str, Any], time: datetime | None = None) -> None:
        """An event of the events topic, `time` its `ce_time` (ignores what is not about trunk
        state). Raises KeyError, TypeError or ValueError for a body that does not fit."""
        if ce_type in _EVENT_SNAPSHOTS:
            record = _record(body)
            self._seen_on_events[record.id] = record.created
            self.upsert(record)
        elif ce_type == TrunkDeleted.CE_TYPE:
            # At the version the delete produced: above every version of what it ended.
            version = int(body["version"])
            self._end(str(body["trunkId"]), self._seen_on_events, time, version)

    def snapshot(self, body: Mapping[str, Any]) -> None:
        """A TrunkState body of the state topic. Raises as `apply`."""
        record = _record(body)
        self._seen_on_state[record.id] = record.created
        self.upsert(record)

    def tombstone(self, trunk_id: str, time: datetime | None = None) -> None:
        """The state topic's tombstone, `time` its `ce_time`."""
        self._end(trunk_id, self._seen_on_state, time)

    def upsert(self, record: TrunkRecord) -> None:
        current = self._trunks.get(record.id)
        if current is not None and current.revision >= record.revision:
            return
        dead = self._dead.get(record.id)
        if dead is not None and record.revision <= dead:
            return
        if current is not None:
            if current.order_key == record.order_key and current.audience == record.audience:
                self._trunks[record.id] = record  # an update: same place in the same index
                return
            self._drop(current)
        self._trunks[record.id] = record
        bisect.insort(self._index.setdefault(record.audience, []), record.order_key)

    def _end(
        self,
        trunk_id: str,
        seen: dict[str, datetime],
        time: datetime | None,
        version: int | None = None,
    ) -> None:
        """A delete seen on the topic whose last incarnations are `seen`: end the incarnation
        that topic showed last or, not knowing it, every one created before the delete's
        `time`; with neither (no usable ce_time), the current one if older than `version`."""
        incarnation = seen.pop(trunk_id, None)
        current = self._trunks.get(trunk_id)
        if incarnation is not None:
            fence = (incarnation, _ALL_VERSIONS)
        elif time is not None:
            fence = (time + _CE_TIME_RESOLUTION, 0)
        elif current is not None and (version is None or current.version < version):
            fence = (current.created, _ALL_VERSIONS)
        else:
            return
        fence = max(fence, self._dead.get(trunk_id, fence))
        self._dead[trunk_id] = fence
        if current is not None and current.revision <= fence:
            self._drop(current)

    def _drop(self, record: TrunkRecord) -> None:
        keys = self._index[record.audience]
        del keys[bisect.bisect_left(keys, record.order_key)]
        if not keys:
            del self._index[record.audience]
        del self._trunks[record.id]


def _record(body: Mapping[str, Any]) -> TrunkRecord:
    return TrunkRecord.of(body["trunk"], body["tenantId"], int(body["version"]))
