"""The command envelope (`CommandEnvelope`), the typed registry and the limits module."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime

import pytest
from sip_trunk_contracts import (
    COMMAND_TYPES,
    ENVELOPE_KEYS,
    EVENT_TYPES,
    OUTCOME_TYPES,
    CloudEventHeaders,
    CommandEnvelope,
    CreateSipTrunk,
    DeleteSipTrunk,
    TrunkState,
    UpdateSipTrunk,
    decode,
    limits,
    strict_json,
)

TRUNK_ID = uuid.UUID("3fa85f64-5717-4562-b3fc-2c963f66afa6")
FIELDS = {"name": "Office", "gateways": [{"ipOrDomain": "sip.example.com", "name": "gw"}]}


def test_create_lays_out_key_headers_and_body() -> None:
    at = datetime(2024, 1, 15, 9, 30, tzinfo=UTC)
    command = CommandEnvelope.create(
        FIELDS,
        trunk_id=TRUNK_ID,
        tenant_id="acme",
        source="/my-app",
        command_id="cmd-1",
        correlation_id="req-1",
        time=at,
    )
    assert command.key == command.trunk_id == str(TRUNK_ID)
    assert command.key_bytes() == str(TRUNK_ID).encode()
    assert command.body == {"trunkId": str(TRUNK_ID), "tenantId": "acme", **FIELDS}
    assert list(command.body)[:2] == list(ENVELOPE_KEYS)
    assert command.tenant_id == "acme"
    assert command.ce_type == CreateSipTrunk.CE_TYPE
    assert command.command_id == "cmd-1"
    assert command.headers == CloudEventHeaders(
        id="cmd-1", source="/my-app", type=CreateSipTrunk.CE_TYPE, time=at, correlation_id="req-1"
    )
    assert dict(command.kafka_headers())["ce_time"] == b"2024-01-15T09:30:00.000Z"


def test_fresh_ids_when_none_are_given() -> None:
    first, second = (
        CommandEnvelope.delete(trunk_id=TRUNK_ID, tenant_id="acme", source="/s") for _ in range(2)
    )
    assert first.command_id != second.command_id
    assert first.headers.correlation_id != second.headers.correlation_id
    assert first.headers.causation_id is None


def test_update_and_delete_carry_the_expected_version_only_when_given() -> None:
    update = CommandEnvelope.update(
        {"name": "x"}, trunk_id=TRUNK_ID, tenant_id=None, source="/s", expected_version=3
    )
    assert update.ce_type == UpdateSipTrunk.CE_TYPE
    assert update.body == {
        "trunkId": str(TRUNK_ID),
        "tenantId": None,
        "expectedVersion": 3,
        "changes": {"name": "x"},
    }
    delete = CommandEnvelope.delete(trunk_id=str(TRUNK_ID), tenant_id="acme", source="/s")
    assert delete.ce_type == DeleteSipTrunk.CE_TYPE
    assert delete.body == {"trunkId": str(TRUNK_ID), "tenantId": "acme"}


def test_what_is_built_is_what_a_consumer_decodes() -> None:
    for command in (
        CommandEnvelope.create(FIELDS, trunk_id=TRUNK_ID, tenant_id="acme", source="/s"),
        CommandEnvelope.update({}, trunk_id=TRUNK_ID, tenant_id="acme", source="/s"),
        CommandEnvelope.delete(
            trunk_id=TRUNK_ID, tenant_id="acme", source="/s", expected_version=1
        ),
    ):
        assert CloudEventHeaders.from_kafka(command.kafka_headers()) == command.headers
        model = decode(command.ce_type, command.value())
        assert isinstance(model, COMMAND_TYPES[command.ce_type])
        assert json.loads(command.value()) == command.body
        assert model.trunkId == TRUNK_ID


def test_fields_may_not_overwrite_the_envelope() -> None:
    for name in ENVELOPE_KEYS:
        with pytest.raises(ValueError, match=name):
            CommandEnvelope.create(
                {**FIELDS, name: "x"}, trunk_id=TRUNK_ID, tenant_id="acme", source="/s"
            )


def test_fields_are_passed_through_for_the_service_to_judge() -> None:
    odd = {"name": 3, "id": "read-only", "unknown": [1]}
    command = CommandEnvelope.create(odd, trunk_id=TRUNK_ID, tenant_id="acme", source="/s")
    assert {k: command.body[k] for k in odd} == odd


def test_value_is_strict_json_only() -> None:
    for bad in (math.nan, math.inf, "\ud800"):
        command = CommandEnvelope.update(
            {"name": bad}, trunk_id=TRUNK_ID, tenant_id="acme", source="/s"
        )
        with pytest.raises(strict_json.JsonError):
            command.value()


def test_registry_is_split_by_role() -> None:
    assert set(COMMAND_TYPES) == {
        m.CE_TYPE for m in (CreateSipTrunk, UpdateSipTrunk, DeleteSipTrunk)
    }
    assert dict(EVENT_TYPES) == {**OUTCOME_TYPES, TrunkState.CE_TYPE: TrunkState}


def test_limits_are_stated_once() -> None:
    assert strict_json.MAX_DEPTH is limits.MAX_DEPTH == 32
    assert limits.MAX_BODY_BYTES == 64 * 1024
    assert limits.TRANSPORTS == ("auto", "udp", "tcp", "tls")
    assert limits.MEDIA_ENCRYPTIONS == ("disable", "allow", "require")
    assert (limits.MIN_PORT, limits.MAX_PORT, limits.DEFAULT_PORT) == (1, 65535, 5060)
