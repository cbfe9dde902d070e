"""The read model: exact creation order, and deletes that stay deleted whatever the order in
which the events topic and the state topic deliver (CONTRACT.md §4.1, read_model.py)."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from sip_trunk_contracts import TrunkCreated, TrunkDeleted, TrunkUpdated, format_utc

from service.entrypoints.gateway.pagination import decode_cursor, encode_cursor
from service.entrypoints.gateway.problems import ProblemError
from service.entrypoints.gateway.read_model import ReadModel, TrunkRecord

TENANT = "tenant-a"
T0 = datetime(2024, 1, 15, 9, 30, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def trunk(trunk_id: str, created: str | datetime, name: str = "t") -> dict[str, Any]:
    stamp = created if isinstance(created, str) else format_utc(created)
    return {
        "id": trunk_id,
        "name": name,
        "gateways": [{"ipOrDomain": "gw.example.com", "port": 5060, "name": "gw"}],
        "authentication": None,
        "advanced": {},
        "isSystem": False,
        "providerId": None,
        "createdAt": stamp,
        "updatedAt": stamp,
    }


def body(trunk_json: dict[str, Any], version: int) -> dict[str, Any]:
    return {"trunk": trunk_json, "tenantId": TENANT, "version": version}


def listed(model: ReadModel) -> list[str]:
    return [r.id for r in model.page(TENANT, after=None, limit=1000)]


# --- order -----------------------------------------------------------------------------------


def test_trunks_created_within_one_second_are_listed_in_creation_order() -> None:
    model = ReadModel()
    ids = sorted((str(uuid4()) for _ in range(5)), reverse=True)  # id order is not creation order
    for i, trunk_id in enumerate(ids):
        model.snapshot(body(trunk(trunk_id, T0 + i * timedelta(microseconds=7)), 1))
    assert listed(model) == ids


def test_whole_second_and_fractional_timestamps_order_as_instants() -> None:
    """Old snapshots carry no fraction; strings of varying width do not sort as instants."""
    model = ReadModel()
    stamps = ["2024-01-15T09:29:59.999999Z", "2024-01-15T09:30:00Z", "2024-01-15T09:30:00.5Z"]
    ids = [str(uuid4()) for _ in stamps]
    for trunk_id, stamp in reversed(list(zip(ids, stamps, strict=True))):
        model.snapshot(body(trunk(trunk_id, stamp), 1))
    assert listed(model) == ids
    whole = model.get(ids[1])
    assert whole is not None
    assert json.loads(whole.json)["createdAt"] == "2024-01-15T09:30:00Z"  # as on the wire


def test_pages_follow_creation_order_through_the_cursor() -> None:
    model = ReadModel()
    ids = sorted((str(uuid4()) for _ in range(5)), reverse=True)
    for i, trunk_id in enumerate(ids):
        model.snapshot(body(trunk(trunk_id, T0 + i * timedelta(microseconds=1)), 1))
    seen: list[str] = []
    after = None
    while page := model.page(TENANT, after=after, limit=2):
        seen += [r.id for r in page]
        after = decode_cursor(encode_cursor(page[-1].order_key))
    assert seen == ids


def test_a_cursor_given_out_with_whole_seconds_still_names_its_position() -> None:
    raw = json.dumps(["2024-01-15T09:30:00Z", "b"]).encode()
    old = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert decode_cursor(old) == (T0, "b")
    assert decode_cursor(encode_cursor((T0, "b"))) == (T0, "b")


@pytest.mark.parametrize(
    "key", [["yesterday", "b"], ["2024-01-15T09:30:00", "b"], {"2024-01-15T09:30:00Z": "b"}]
)
def test_a_cursor_without_an_rfc_3339_instant_is_refused(key: object) -> None:
    cursor = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()
    with pytest.raises(ProblemError):
        decode_cursor(cursor)


def test_a_record_without_an_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        TrunkRecord.of(trunk(str(uuid4()), "2024-01-15T09:30:00"), TENANT, 1)


# --- deletes, in every order of delivery -----------------------------------------------------

Delivery = Callable[[ReadModel], None]


@dataclass(frozen=True)
class Story:
    """Trunk `id`: incarnation 1 created, updated, deleted; then created afresh (incarnation 2).

    The deliveries of each topic, each list in the topic's order (per trunk, Kafka keeps it).
    """

    id: str
    events: list[tuple[str, Delivery]]
    state: list[tuple[str, Delivery]]


def story(*, gateway_saw_creation: bool, compacted: bool, recreated_after: timedelta) -> Story:
    trunk_id = str(uuid4())
    first = trunk(trunk_id, T0 + 500 * timedelta(microseconds=1), name="first")
    deleted_at = T0 + 2 * MS  # ce_time, to the millisecond
    second = trunk(trunk_id, deleted_at + recreated_after, name="second")

    def event(ce_type: str, payload: dict[str, Any], time: datetime) -> Delivery:
        return lambda model: model.apply(ce_type, payload, time)

    gone = {"trunkId": trunk_id, "tenantId": TENANT, "version": 3}
    events = [
        ("C1", event(TrunkCreated.CE_TYPE, body(first, 1), T0)),
        ("U1", event(TrunkUpdated.CE_TYPE, body(first, 2), T0 + MS)),
        ("D1", event(TrunkDeleted.CE_TYPE, gone, deleted_at)),
        ("C2", event(TrunkCreated.CE_TYPE, body(second, 1), deleted_at + recreated_after)),
    ]
    state: list[tuple[str, Delivery]] = [
        ("S1", lambda model: model.snapshot(body(first, 1))),
        ("S1'", lambda model: model.snapshot(body(first, 2))),
        ("T1", lambda model: model.tombstone(trunk_id, deleted_at)),
        ("S2", lambda model: model.snapshot(body(second, 1))),
    ]
    return Story(
        trunk_id,
        events if gateway_saw_creation else events[2:],  # the events topic is read from its end
        state[2:] if compacted else state,
    )


def interleavings(story: Story) -> Iterator[list[tuple[str, Delivery]]]:
    both = len(story.events) + len(story.state)
    for at in itertools.combinations(range(both), len(story.events)):
        events, state = iter(story.events), iter(story.state)
        yield [next(events) if i in at else next(state) for i in range(both)]


STORIES = {
    "running gateway": story(gateway_saw_creation=True, compacted=False, recreated_after=5 * MS),
    "fresh gateway": story(gateway_saw_creation=False, compacted=False, recreated_after=5 * MS),
    "fresh gateway, compacted state": story(
        gateway_saw_creation=False, compacted=True, recreated_after=5 * MS
    ),
    # Within the delete's millisecond: told apart only by each topic's own order.
    "running gateway, recreated at once": story(
        gateway_saw_creation=True, compacted=False, recreated_after=timedelta(microseconds=10)
    ),
}


@pytest.mark.parametrize("name", STORIES)
def test_a_deleted_trunk_never_returns_and_a_recreated_one_appears(name: str) -> None:
    told = STORIES[name]
    orders = 0
    for deliveries in interleavings(told):
        model = ReadModel()
        delivered: set[str] = set()
        for label, deliver in deliveries:
            deliver(model)
            delivered.add(label)
            record = model.get(told.id)
            name_now = json.loads(record.json)["name"] if record else None
            where = f"{[d[0] for d in deliveries]} after {label}"
            if delivered & {"C2", "S2"}:
                assert name_now == "second", where
                assert listed(model) == [told.id], where
            elif delivered & {"D1", "T1"}:
                assert name_now is None, where
                assert listed(model) == [], where
        orders += 1
    assert orders > 1


def test_a_deleted_incarnation_created_within_the_deletes_millisecond_stays_deleted() -> None:
    """ce_time is cut to the millisecond: a trunk created in it was still created before."""
    model = ReadModel()
    trunk_id = str(uuid4())
    model.apply(TrunkDeleted.CE_TYPE, {"trunkId": trunk_id, "tenantId": TENANT, "version": 2}, T0)
    model.snapshot(body(trunk(trunk_id, T0 + timedelta(microseconds=999)), 1))
    assert model.get(trunk_id) is None


def test_a_late_delete_leaves_a_trunk_created_after_it() -> None:
    """The state topic already shows the new incarnation; the events topic lags behind."""
    model = ReadModel()
    trunk_id = str(uuid4())
    model.snapshot(body(trunk(trunk_id, T0 + 5 * MS, name="second"), 1))
    model.apply(TrunkDeleted.CE_TYPE, {"trunkId": trunk_id, "tenantId": TENANT, "version": 7}, T0)
    record = model.get(trunk_id)
    assert record is not None
    assert json.loads(record.json)["name"] == "second"


@pytest.mark.parametrize("ce_time", [True, False])
def test_a_delete_without_ce_time_still_hides_the_trunk_it_deleted(ce_time: bool) -> None:
    """Read-your-writes for a trunk the model holds, even from a hook that gives no time."""
    model = ReadModel()
    trunk_id = str(uuid4())
    model.snapshot(body(trunk(trunk_id, T0), 2))
    gone = {"trunkId": trunk_id, "tenantId": TENANT, "version": 3}
    model.apply(TrunkDeleted.CE_TYPE, gone, T0 + MS if ce_time else None)
    assert model.get(trunk_id) is None
    model.snapshot(body(trunk(trunk_id, T0), 2))  # a lagging snapshot
    assert model.get(trunk_id) is None
    assert listed(model) == []


def test_a_tombstone_without_ce_time_ends_what_the_state_topic_showed() -> None:
    model = ReadModel()
    trunk_id = str(uuid4())
    model.snapshot(body(trunk(trunk_id, T0), 1))
    model.tombstone(trunk_id, None)
    assert model.get(trunk_id) is None
    model.snapshot(body(trunk(trunk_id, T0 + MS, name="second"), 1))
    assert model.get(trunk_id) is not None
