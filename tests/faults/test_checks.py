"""The fault suite's checks catch what they are meant to: made-up histories with one violation
each. (Fast, no services: part of `make test`; the suite itself runs with `make faults`.)"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tests.faults.checks import (
    CREATED,
    DELETED,
    REJECTED,
    UPDATED,
    Kind,
    Outcome,
    Sent,
    compare_state,
    recovery_s,
    verify,
)

_TYPES = {"create": CREATED, "update": UPDATED, "delete": DELETED}


class History:
    """Commands and the events that answer them, built step by step."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.outcomes: list[Outcome] = []
        self.offsets: dict[int, int] = {}

    def command(self, trunk: str, kind: Kind, *, partition: int = 0, at: float = 0.0) -> Sent:
        c = Sent(len(self.sent), f"cmd-{len(self.sent)}", trunk, kind, partition, at)
        self.sent.append(c)
        return c

    def answer(
        self,
        c: Sent,
        version: int | None,
        *,
        reason: str | None = None,
        at: float = 1.0,
        event_id: str | None = None,
    ) -> Outcome:
        offset = self.offsets.get(c.partition, 0)
        self.offsets[c.partition] = offset + 1
        o = Outcome(
            event_id=event_id or f"evt-{c.command_id}",
            command_id=c.command_id,
            trunk_id=c.trunk_id,
            ce_type=REJECTED if reason else _TYPES[c.kind],
            version=None if reason else version,
            reason=reason,
            published_at=at,
            partition=c.partition,
            offset=offset,
        )
        self.outcomes.append(o)
        return o

    def resend(self, o: Outcome) -> None:
        offset = self.offsets[o.partition]
        self.offsets[o.partition] = offset + 1
        self.outcomes.append(dataclasses.replace(o, offset=offset))


def healthy() -> History:
    """Trunk a: create, update, delete; trunk b: create, update (interleaved)."""
    h = History()
    a1, b1, a2, b2, a3 = (
        h.command("a", "create"),
        h.command("b", "create"),
        h.command("a", "update"),
        h.command("b", "update"),
        h.command("a", "delete"),
    )
    for c, v in ((a1, 1), (b1, 1), (a2, 2), (b2, 2), (a3, 3)):
        h.answer(c, v)
    return h


def test_a_healthy_history_passes_and_resends_are_counted_not_duplicates() -> None:
    h = healthy()
    h.resend(h.outcomes[0])
    h.resend(h.outcomes[2])
    verdict = verify(h.sent, h.outcomes)
    assert verdict.violations == 0, verdict
    assert (verdict.commands, verdict.outcomes, verdict.resends) == (5, 5, 2)


def test_a_command_without_outcome_is_lost() -> None:
    h = healthy()
    lost = h.outcomes.pop()
    verdict = verify(h.sent, h.outcomes)
    assert verdict.lost == [lost.command_id]


def test_two_distinct_outcomes_for_one_command_is_a_duplicate() -> None:
    h = healthy()
    h.answer(h.sent[1], 2, event_id="another-event")  # b's create applied twice
    verdict = verify(h.sent, h.outcomes)
    assert verdict.duplicated == [h.sent[1].command_id]
    assert "b" in verdict.version_errors


def test_outcomes_out_of_command_order_are_reordered() -> None:
    h = History()
    c1, c2, c3 = h.command("a", "create"), h.command("a", "update"), h.command("a", "update")
    h.answer(c1, 1)
    h.answer(c3, 2)
    h.answer(c2, 3)
    verdict = verify(h.sent, h.outcomes)
    assert verdict.reordered == ["a"]
    assert verdict.unexpected  # c3 answered at v2 although c2 (v2) came first


def test_order_is_topic_order_of_first_copies_not_arrival_of_resends() -> None:
    h = History()
    c1, c2 = h.command("a", "create"), h.command("a", "update")
    first = h.answer(c1, 1)
    h.answer(c2, 2)
    h.resend(first)  # a re-send after the later event is no reordering
    assert verify(h.sent, h.outcomes).violations == 0


@pytest.mark.parametrize("versions", [[1, 3], [1, 1], [2, 3]])
def test_versions_must_be_one_to_n(versions: list[int]) -> None:
    h = History()
    for c, v in zip([h.command("a", "create"), h.command("a", "update")], versions, strict=True):
        h.answer(c, v)
    assert verify(h.sent, h.outcomes).version_errors == ["a"]


def test_rejections_only_for_allowed_reasons_and_the_not_found_they_imply() -> None:
    h = History()
    create, update = h.command("a", "create"), h.command("a", "update")
    h.answer(create, None, reason="provider_unavailable")
    h.answer(update, None, reason="not_found")  # the trunk was never made: right
    assert verify(h.sent, h.outcomes, {"provider_unavailable"}).violations == 0
    assert len(verify(h.sent, h.outcomes).unexpected) == 1  # not allowed here
    h2 = History()
    c = h2.command("a", "create")
    h2.answer(c, 1)
    h2.answer(h2.command("a", "update"), None, reason="not_found")  # it exists: wrong
    assert verify(h2.sent, h2.outcomes, {"provider_unavailable"}).unexpected


def test_an_applied_command_must_be_the_outcome_its_kind_implies() -> None:
    h = History()
    c = h.command("a", "create")
    h.answer(c, 1)
    h.outcomes[0] = dataclasses.replace(h.outcomes[0], ce_type=UPDATED)
    assert verify(h.sent, h.outcomes).unexpected


def test_an_event_for_no_command_of_ours_is_stray() -> None:
    h = healthy()
    h.outcomes.append(dataclasses.replace(h.outcomes[0], event_id="x", command_id="unknown"))
    assert verify(h.sent, h.outcomes).stray == ["x"]


def test_recovery_waits_for_every_partition() -> None:
    h = History()
    before = h.command("a", "create", partition=0, at=9.0)
    h.answer(before, 1, at=10.5)  # sent before the fault: says nothing about recovery
    p0 = h.command("b", "create", partition=0, at=10.1)
    p1 = h.command("c", "create", partition=1, at=10.2)
    h.answer(p0, 1, at=11.0)
    assert recovery_s(10.0, h.sent, h.outcomes, partitions=2) is None
    h.answer(p1, 1, at=14.0)
    assert recovery_s(10.0, h.sent, h.outcomes, partitions=2) == pytest.approx(4.0)


def _row(version: int, **kw: Any) -> dict[str, Any]:
    return {
        "version": version,
        "tenant_id": "t",
        "name": "n",
        "provider_id": None,
        "username": None,
        "gateways": [{"ipOrDomain": "h", "port": 5060, "name": "g"}],
    } | kw


def test_state_must_match_the_database() -> None:
    assert compare_state({"a": _row(2), "b": None}, {"a": _row(2)}) == []
    assert compare_state({"a": _row(1)}, {"a": _row(2)})  # stale snapshot
    assert compare_state({"a": _row(2, name="x")}, {"a": _row(2)})  # different content
    assert compare_state({"a": None}, {"a": _row(2)})  # tombstone for a live trunk
    assert compare_state({}, {"a": _row(1)})  # no snapshot at all
    assert compare_state({"a": _row(3)}, {})  # snapshot of a deleted trunk
