"""The read model's pages, from its per-tenant indexes, against a scan of every trunk it holds.

Random deliveries (state snapshots and tombstones, outcome events, deletes with and without
`ce_time`) over a few trunk ids, tenants and system trunks, with creation instants that tie so
that the id decides; a trunk may even move between tenants or become a system trunk. After every
delivery each tenant's pages, walked through the cursors the API gives out, must be the scan's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sip_trunk_contracts import TrunkCreated, TrunkDeleted, TrunkUpdated, format_utc

from service.entrypoints.gateway.pagination import decode_cursor, encode_cursor
from service.entrypoints.gateway.read_model import OrderKey, ReadModel, TrunkRecord

T0 = datetime(2024, 1, 15, 9, 30, tzinfo=UTC)
MS = timedelta(milliseconds=1)
IDS = ["a", "b", "c", "d", "e", "f", "g", "h"]
TENANTS = ["t1", "t2", None]
CALLERS = ["t1", "t2", "t3", None]  # t3 holds no trunk; None is a caller without a tenant
INSTANTS = [T0 + k * MS for k in range(6)]


@dataclass(frozen=True)
class Snapshot:
    """A trunk state, on the state topic or as the outcome event `ce_type`."""

    trunk_id: str
    created: datetime
    version: int
    tenant: str | None
    system: bool
    ce_type: str | None  # None: the state topic
    time: datetime | None

    def body(self) -> dict[str, Any]:
        stamp = format_utc(self.created)
        trunk = {"id": self.trunk_id, "isSystem": self.system, "createdAt": stamp}
        return {"trunk": trunk, "tenantId": self.tenant, "version": self.version}


@dataclass(frozen=True)
class Delete:
    """A TrunkDeleted event (`version` set) or the state topic's tombstone."""

    trunk_id: str
    version: int | None
    time: datetime | None


Delivery = Snapshot | Delete

times = st.none() | st.sampled_from(INSTANTS).map(lambda t: t + MS / 2)
snapshots = st.builds(
    Snapshot,
    trunk_id=st.sampled_from(IDS),
    created=st.sampled_from(INSTANTS),
    version=st.integers(1, 4),
    tenant=st.sampled_from(TENANTS),
    system=st.booleans(),
    ce_type=st.sampled_from([None, TrunkCreated.CE_TYPE, TrunkUpdated.CE_TYPE]),
    time=times,
)
deletes = st.builds(
    Delete,
    trunk_id=st.sampled_from(IDS),
    version=st.none() | st.integers(1, 5),
    time=times,
)
# A delete for three snapshots: each delete fences off its id's older revisions, and the pages
# should still hold a few trunks (about three at a story's end, half of them system trunks).
deliveries = st.lists(st.one_of(snapshots, snapshots, snapshots, deletes), min_size=10, max_size=40)


def deliver(model: ReadModel, delivery: Delivery) -> None:
    match delivery:
        case Snapshot(ce_type=None):
            model.snapshot(delivery.body())
        case Snapshot(ce_type=str(ce_type), time=time):
            model.apply(ce_type, delivery.body(), time)
        case Delete(trunk_id=trunk_id, version=None, time=time):
            model.tombstone(trunk_id, time)
        case Delete(trunk_id=trunk_id, version=int(version), time=time):
            body = {"trunkId": trunk_id, "tenantId": None, "version": version}
            model.apply(TrunkDeleted.CE_TYPE, body, time)


def scanned(model: ReadModel, caller: str | None, after: OrderKey | None) -> list[TrunkRecord]:
    """Every trunk the model holds that the caller sees, oldest first, after the cursor key."""
    held = [record for trunk_id in IDS if (record := model.get(trunk_id)) is not None]
    seen = sorted((r for r in held if r.visible_to(caller)), key=lambda r: r.order_key)
    return [r for r in seen if after is None or r.order_key > after]


def walked(model: ReadModel, caller: str | None, limit: int) -> list[TrunkRecord]:
    """Every page in turn, as the list endpoint serves them through its cursors."""
    seen: list[TrunkRecord] = []
    after = None
    for _ in IDS:  # each page but the last holds one trunk at least: a bound that fails a loop
        page = model.page(caller, after=after, limit=limit + 1)
        seen += page[:limit]
        if len(page) <= limit:
            return seen
        after = decode_cursor(encode_cursor(page[limit - 1].order_key))
    raise AssertionError(f"more pages than trunks: {seen}")


# Cursors name positions, held or not: every key a trunk could have, and between them.
POSITIONS: list[OrderKey | None] = [None] + [
    (instant + shift, trunk_id)
    for instant in [T0 - MS, *INSTANTS]
    for shift in (timedelta(0), MS / 2)
    for trunk_id in ["", *IDS]
]


@settings(max_examples=300, deadline=None)
@given(deliveries)
def test_pages_are_a_scan_of_every_trunk_after_each_delivery(story: list[Delivery]) -> None:
    model = ReadModel()
    for delivery in story:
        deliver(model, delivery)
        for caller in CALLERS:
            everything = scanned(model, caller, None)
            assert model.page(caller, after=None, limit=1000) == everything
            for limit in (1, 2):
                assert walked(model, caller, limit) == everything
    for caller in CALLERS:
        for after in POSITIONS:
            expected = scanned(model, caller, after)
            for limit in (1, 2, 3):
                assert model.page(caller, after=after, limit=limit) == expected[:limit]


def test_a_tenant_sees_its_own_and_the_system_trunks_merged_in_creation_order() -> None:
    model = ReadModel()
    placed = [("s1", None, True), ("x1", "t1", False), ("y1", "t2", False), ("x2", "t1", False)]
    for k, (trunk_id, tenant, system) in enumerate(placed):
        deliver(model, Snapshot(trunk_id, T0 + k * MS, 1, tenant, system, None, None))
    deliver(model, Snapshot("s0", T0 + 9 * MS, 1, None, True, None, None))
    assert [r.id for r in model.page("t1", after=None, limit=10)] == ["s1", "x1", "x2", "s0"]
    assert [r.id for r in model.page("t3", after=None, limit=10)] == ["s1", "s0"]
    # A newer revision that moves the trunk to another tenant moves it out of t1's pages.
    deliver(model, Snapshot("x1", T0 + MS, 2, "t2", False, None, None))
    assert [r.id for r in model.page("t1", after=None, limit=10)] == ["s1", "x2", "s0"]
    assert [r.id for r in model.page("t2", after=None, limit=10)] == ["s1", "x1", "y1", "s0"]


def test_a_snapshot_without_is_system_is_refused_on_arrival_and_pages_still_work() -> None:
    """It would pick no index; the state feed and the command bus skip a body that raises."""
    model = ReadModel()
    deliver(model, Snapshot("a", T0, 1, "t1", False, None, None))
    odd = Snapshot("b", T0 + MS, 1, "t1", False, None, None).body()
    del odd["trunk"]["isSystem"]
    with pytest.raises(KeyError):
        model.snapshot(odd)
    assert model.get("b") is None
    assert [r.id for r in model.page("t1", after=None, limit=10)] == ["a"]
