"""The messages of one change share one encoded view: the bodies are, byte for byte, what the
contract's models encode; event before snapshot; headers are text until the Kafka edge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st
from sip_trunk_contracts import (
    CloudEventHeaders,
    Topics,
    TrunkCreated,
    TrunkDeleted,
    TrunkState,
    TrunkUpdated,
    encode,
)

from service.domain import SipTrunk, create_trunk
from service.service_layer.messages import OutgoingMessage, kafka_headers
from service.service_layer.outgoing import Cause, MessageFactory
from service.service_layer.views import to_view
from tests.unit.domain.test_domain_properties import FAST, valid_bodies

TOPICS = Topics.with_prefix("t.")
NOW = datetime(2024, 1, 15, 9, 30, 0, 123456, tzinfo=UTC)
CAUSE = Cause("corr-1", "cmd-1", "sip_trunks.UpdateSipTrunk.v1")
FACTORY = MessageFactory(TOPICS, "/svc", clock=lambda: NOW)
tenants = st.none() | st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20)
changed_fields = st.lists(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=12), max_size=4
)


def a_trunk() -> SipTrunk:
    fields = {"name": "A", "gateways": [{"ipOrDomain": "sip.example.com", "name": "g"}]}
    return create_trunk(None, trunk_id=UUID(int=7), tenant_id="acme", fields=fields, now=NOW).trunk


def kinds(messages: list[OutgoingMessage]) -> list[tuple[str, str | None]]:
    return [(m.topic, m.header("ce_type")) for m in messages]


@FAST
@given(body=valid_bodies, tenant=tenants, changed=changed_fields)
def test_bodies_are_the_contract_models_encoding(
    body: dict[str, Any], tenant: str | None, changed: list[str]
) -> None:
    trunk = create_trunk(None, trunk_id=UUID(int=7), tenant_id=tenant, fields=body, now=NOW).trunk
    view, version = to_view(trunk), trunk.version

    event, snapshot = FACTORY.created(trunk, CAUSE)
    assert event.payload == encode(TrunkCreated(trunk=view, tenantId=tenant, version=version))
    assert snapshot.payload == encode(TrunkState(trunk=view, tenantId=tenant, version=version))

    update = FACTORY.updated(trunk, tuple(changed), CAUSE)
    assert update[0].payload == encode(
        TrunkUpdated(trunk=view, tenantId=tenant, version=version, changedFields=changed)
    )
    assert [m.payload for m in update[1:]] == ([snapshot.payload] if changed else [])


def test_a_change_is_its_event_then_its_snapshot() -> None:
    trunk = a_trunk()
    created = FACTORY.created(trunk, CAUSE)
    assert kinds(created) == [
        (TOPICS.events, TrunkCreated.CE_TYPE),
        (TOPICS.state, TrunkState.CE_TYPE),
    ]
    assert created[0].payload is created[1].payload  # one encoding, shared
    assert kinds(FACTORY.updated(trunk, ("name",), CAUSE)) == [
        (TOPICS.events, TrunkUpdated.CE_TYPE),
        (TOPICS.state, TrunkState.CE_TYPE),
    ]
    assert kinds(FACTORY.updated(trunk, (), CAUSE)) == [(TOPICS.events, TrunkUpdated.CE_TYPE)]
    deleted = FACTORY.deleted(trunk, CAUSE)
    assert kinds(deleted) == [
        (TOPICS.events, TrunkDeleted.CE_TYPE),
        (TOPICS.state, TrunkState.CE_TYPE),
    ]
    assert deleted[1].payload is None  # the tombstone
    assert {m.key for m in [*created, *deleted]} == {str(trunk.id)}
    assert len({m.header("ce_id") for m in [*created, *deleted]}) == 4


def test_a_changes_snapshot_shares_its_events_envelope_but_its_id_and_type() -> None:
    trunk = a_trunk()
    for event, state in (FACTORY.created(trunk, CAUSE), FACTORY.deleted(trunk, CAUSE)):
        event_ce = CloudEventHeaders.from_kafka(event.kafka_headers())
        state_ce = CloudEventHeaders.from_kafka(state.kafka_headers())
        assert state_ce.type == TrunkState.CE_TYPE
        assert state_ce.id != event_ce.id
        assert [n for n, _ in state.headers] == [n for n, _ in event.headers]
        assert {**dict(state.headers), "ce_id": "", "ce_type": ""} == {
            **dict(event.headers),
            "ce_id": "",
            "ce_type": "",
        }


def test_headers_are_text_pairs_encoded_only_at_the_kafka_edge() -> None:
    trunk = a_trunk()
    message = FACTORY.created(trunk, Cause("corrélation", "cmd-1"))[0]
    assert all(isinstance(n, str) and isinstance(v, str) for n, v in message.headers)
    ce = CloudEventHeaders.from_kafka(message.kafka_headers())
    assert message.kafka_headers() == ce.to_kafka()
    assert ce.correlation_id == "corrélation"
    # A row read back from the outbox's JSON column holds 2-item arrays: the same bytes result.
    as_json = [list(pair) for pair in message.headers]
    assert kafka_headers(as_json) == message.kafka_headers()
    assert OutgoingMessage.from_json(message.to_json()) == message
