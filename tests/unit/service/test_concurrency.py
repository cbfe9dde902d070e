"""A batch's provider calls run concurrently across trunks, bounded, each trunk's in order."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from uuid import uuid4

import pytest
from sip_trunk_contracts import TrunkCreated, TrunkDeleted, TrunkRejected, TrunkUpdated

from service.domain import Reason, SipTrunk
from service.service_layer.concurrency import chains, run_bounded
from service.service_layer.messages import OutgoingMessage
from tests.unit.service.fakes import (
    TOPICS,
    FakeProvider,
    Harness,
    ce_type,
    create,
    delete,
    payload,
    update,
)

CREATED, UPDATED = TrunkCreated.CE_TYPE, TrunkUpdated.CE_TYPE
DELETED, REJECTED = TrunkDeleted.CE_TYPE, TrunkRejected.CE_TYPE


@dataclass
class SlowProvider(FakeProvider):
    """Each call takes a while (the later a trunk's first call, the shorter), so calls overlap
    and end out of batch order; records the most calls in flight at once."""

    in_flight: int = 0
    most_in_flight: int = 0

    async def _slow(self) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.02 / len(self.calls))
        self.in_flight -= 1

    async def create(self, trunk: SipTrunk) -> str | None:
        provider_id = await super().create(trunk)
        await self._slow()
        return provider_id

    async def update(self, before: SipTrunk, after: SipTrunk) -> str | None:
        provider_id = await super().update(before, after)
        await self._slow()
        return provider_id

    async def delete(self, trunk: SipTrunk) -> None:
        await super().delete(trunk)
        await self._slow()


def harness(concurrency: int) -> Harness:
    return Harness(provider=SlowProvider(), concurrency=concurrency)


def events(out: list[OutgoingMessage]) -> list[OutgoingMessage]:
    return [m for m in out if m.topic == TOPICS.events]


async def test_calls_overlap_across_trunks_at_most_the_bound() -> None:
    h = harness(concurrency=4)

    out = await h.run(*(create(uuid4()) for _ in range(12)))

    assert isinstance(h.provider, SlowProvider)
    assert h.provider.most_in_flight == 4
    assert [ce_type(m) for m in events(out)] == [CREATED] * 12
    assert h.db.commits == 1


async def test_a_trunks_commands_keep_their_order_and_the_outbox_the_batchs() -> None:
    h = harness(concurrency=8)
    a, b, c = uuid4(), uuid4(), uuid4()
    batch = [
        create(a),
        create(b),
        update(a, {"name": "A2"}, expected_version=1),
        create(c),
        update(b, {"name": "B2"}, expected_version=1),
        update(a, {"name": "A3"}, expected_version=2),
        delete(b, expected_version=2),
        delete(a, expected_version=3),
    ]

    out = await h.run(*batch)

    outcomes = events(out)
    assert [m.header("ce_causationid") for m in outcomes] == [cmd.ce.id for cmd in batch]
    assert [ce_type(m) for m in outcomes] == [CREATED] * 2 + [UPDATED, CREATED, UPDATED] + [
        UPDATED,
        DELETED,
        DELETED,
    ]
    for trunk_id, versions in ((a, [1, 2, 3, 4]), (b, [1, 2, 3]), (c, [1])):
        mine = [m for m in outcomes if m.key == str(trunk_id)]
        assert [payload(m)["version"] for m in mine] == versions
    calls = [(op, t.id) for op, t in h.provider.calls]
    assert [op for op, i in calls if i == a] == ["create", "update", "update", "delete"]
    assert [op for op, i in calls if i == b] == ["create", "update", "delete"]
    assert set(h.db.trunks) == {c}


async def test_one_command_id_on_two_trunks_is_one_chain() -> None:
    h = harness(concurrency=8)
    first, reused = create(uuid4(), id="same-id"), create(uuid4(), id="same-id")

    out = await h.run(first, reused)

    assert [ce_type(m) for m in events(out)] == [CREATED, REJECTED]
    assert payload(events(out)[1])["reason"] == Reason.IDEMPOTENCY_KEY_REUSED.value
    assert h.provider.ops() == ["create"]


async def test_a_failing_chain_commits_nothing_and_raises_its_own_error() -> None:
    h = harness(concurrency=8)

    class Boom(Exception):
        pass

    h.provider.fail(Boom("a bug in the provider client"), on="update")
    kept = uuid4()
    await h.run(create(kept))
    snapshot = (dict(h.db.trunks), list(h.db.outbox), dict(h.db.processed), h.db.commits)

    with pytest.raises(Boom):  # itself, not an ExceptionGroup: the batch policy judges it
        await h.run(*(create(uuid4()) for _ in range(5)), update(kept, {"name": "X"}))

    assert (dict(h.db.trunks), list(h.db.outbox), dict(h.db.processed), h.db.commits) == snapshot


def test_chains_join_commands_by_trunk_and_by_command_id() -> None:
    a, b, c, d = uuid4(), uuid4(), uuid4(), uuid4()
    batch = [
        create(a),
        create(b, id="x"),
        create(c),
        update(a, {"name": "2"}),
        create(d, id="x"),  # b's id: joins b's chain
        update(c, {"name": "2"}),
        delete(d),
    ]

    assert chains(batch) == [[0, 3], [1, 4, 6], [2, 5]]


async def test_run_bounded_in_this_task_when_the_bound_is_one() -> None:
    ran: list[int] = []
    here = asyncio.current_task()

    async def run(item: int) -> None:
        assert asyncio.current_task() is here
        ran.append(item)

    await run_bounded([1, 2, 3], run, 1)

    assert ran == [1, 2, 3]
