"""The service layer with in-memory fakes: outcomes, state messages, idempotency, transactions."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from sip_trunk_contracts import (
    MASKED_PASSWORD,
    TrunkCreated,
    TrunkDeleted,
    TrunkRejected,
    TrunkState,
    TrunkUpdated,
)
from sip_trunk_contracts.strict_json import canonical

from service.domain import Reason
from service.service_layer.handlers import handle_command
from service.service_layer.inbound import InboundCommand
from service.service_layer.messages import OutgoingMessage
from tests.unit.service.fakes import (
    CREATE,
    DELETE,
    DIGEST_KEY,
    OTHER_TENANT,
    PASSWORD,
    SERVICE_SOURCE,
    TENANT,
    TOPICS,
    UPDATE,
    FakeDatabase,
    FakeUnitOfWork,
    Harness,
    ce_type,
    command,
    create,
    create_body,
    delete,
    payload,
    update,
)

CREATED = TrunkCreated.CE_TYPE
UPDATED = TrunkUpdated.CE_TYPE
DELETED = TrunkDeleted.CE_TYPE
REJECTED = TrunkRejected.CE_TYPE
STATE = TrunkState.CE_TYPE


@pytest.fixture
def h() -> Harness:
    return Harness()


async def created_trunk(h: Harness, **fields: Any) -> UUID:
    trunk_id = uuid4()
    out = await h.run(create(trunk_id, **fields))
    assert ce_type(out[0]) == CREATED
    return trunk_id


def assert_rejected(
    message: OutgoingMessage, reason: Reason, trunk_id: UUID, tenant: str | None = TENANT
) -> dict[str, Any]:
    assert message.topic == TOPICS.events
    assert ce_type(message) == REJECTED
    assert message.key == str(trunk_id)
    body = payload(message)
    assert body["reason"] == reason.value
    assert body["trunkId"] == str(trunk_id)
    assert body["tenantId"] == tenant
    assert body["detail"]
    return body


def assert_same_event(
    again: OutgoingMessage, original: OutgoingMessage, cmd: InboundCommand
) -> None:
    """The original event again (same ce_id, body), addressed to the repeating command."""
    assert again.header("ce_id") == original.header("ce_id")
    assert (again.topic, again.key, again.payload) == (
        original.topic,
        original.key,
        original.payload,
    )
    assert again.header("ce_correlationid") == cmd.ce.correlation_id
    rest = {k: v for k, v in again.headers if k != "ce_correlationid"}
    assert rest == {k: v for k, v in original.headers if k != "ce_correlationid"}


# --- create / update / delete ---------------------------------------------------------------


async def test_create_emits_trunk_created_and_state_and_records_the_command(h: Harness) -> None:
    trunk_id = uuid4()
    cmd = create(trunk_id)

    out = await h.run(cmd)

    assert [(m.topic, ce_type(m)) for m in out] == [
        (TOPICS.events, CREATED),
        (TOPICS.state, STATE),
    ]
    assert all(m.key == str(trunk_id) for m in out)
    event, state = payload(out[0]), payload(out[1])
    assert event["version"] == 1
    assert event["tenantId"] == TENANT
    assert event["trunk"]["id"] == str(trunk_id)
    assert event["trunk"]["name"] == "Main Office SIP Trunk"
    assert event["trunk"]["authentication"] == {
        "username": "office_sip_user",
        "password": MASKED_PASSWORD,
    }
    assert event["trunk"]["isSystem"] is False
    assert event["trunk"]["createdAt"].endswith("Z")
    assert state == {"trunk": event["trunk"], "tenantId": TENANT, "version": 1}
    TrunkCreated.model_validate_json(out[0].payload or b"")
    TrunkState.model_validate_json(out[1].payload or b"")

    stored = h.db.trunks[trunk_id]
    assert stored.version == 1
    assert stored.authentication is not None
    assert stored.authentication.password == PASSWORD
    record = h.db.processed[("/test", cmd.ce.id)]
    assert record.command_type == CREATE
    # Of the body with the password opened (a retry seals it anew: test_passwords.py), keyed:
    # a bare hash would let a database reader test password guesses against it.
    opened = {**cmd.body, "authentication": {"username": "office_sip_user", "password": PASSWORD}}
    bare = hashlib.sha256(canonical(opened)).hexdigest()
    assert record.body_sha256 == hmac.new(DIGEST_KEY, bare.encode(), "sha256").hexdigest()
    assert record.body_sha256 != bare
    assert record.outcome == out[0]
    assert h.db.commits == 1


async def test_create_stores_the_provider_id(h: Harness) -> None:
    first, second = uuid4(), uuid4()
    out = await h.run(create(first), create(second))

    assert h.db.trunks[first].provider_id == "ST_1"
    assert h.db.trunks[second].provider_id == "ST_2"
    assert payload(out[0])["trunk"]["providerId"] == "ST_1"
    assert payload(out[1])["trunk"]["providerId"] == "ST_1"  # the state snapshot too
    assert [(op, t.id) for op, t in h.provider.calls] == [("create", first), ("create", second)]


async def test_update_emits_changed_fields_and_state(h: Harness) -> None:
    trunk_id = await created_trunk(h)

    out = await h.run(
        update(
            trunk_id,
            {"name": "Renamed", "authentication": {"password": "An0ther-pass"}},
            expected_version=1,
        )
    )

    assert [(m.topic, ce_type(m)) for m in out] == [(TOPICS.events, UPDATED), (TOPICS.state, STATE)]
    event = payload(out[0])
    assert event["version"] == 2
    assert event["changedFields"] == ["authentication.password", "name"]
    assert event["trunk"]["name"] == "Renamed"
    assert event["trunk"]["providerId"] == "ST_1"  # kept through the provider update
    assert payload(out[1])["version"] == 2
    stored = h.db.trunks[trunk_id]
    assert (stored.version, stored.name, stored.provider_id) == (2, "Renamed", "ST_1")
    assert stored.authentication is not None
    assert stored.authentication.password == "An0ther-pass"
    assert h.provider.ops() == ["create", "update"]


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"name": "Main Office SIP Trunk"},
        {"authentication": {"password": MASKED_PASSWORD}},
        {"advanced": {}},
    ],
    ids=["empty", "same-name", "masked-password", "empty-advanced"],
)
async def test_noop_update_keeps_version_calls_no_provider_and_sends_no_state(
    h: Harness, changes: dict[str, object]
) -> None:
    trunk_id = await created_trunk(h)
    before = h.db.trunks[trunk_id]

    out = await h.run(update(trunk_id, changes))

    assert [ce_type(m) for m in out] == [UPDATED]
    event = payload(out[0])
    assert event["changedFields"] == []
    assert event["version"] == 1
    assert event["trunk"]["updatedAt"] == event["trunk"]["createdAt"]
    assert h.db.trunks[trunk_id] == before
    assert h.provider.ops() == ["create"]


async def test_delete_emits_trunk_deleted_and_a_tombstone(h: Harness) -> None:
    trunk_id = await created_trunk(h)

    out = await h.run(delete(trunk_id, expected_version=1))

    assert [(m.topic, ce_type(m)) for m in out] == [(TOPICS.events, DELETED), (TOPICS.state, STATE)]
    assert payload(out[0]) == {"trunkId": str(trunk_id), "tenantId": TENANT, "version": 2}
    tombstone = out[1]
    assert tombstone.payload is None
    assert tombstone.key == str(trunk_id)
    assert trunk_id not in h.db.trunks
    op, trunk = h.provider.calls[-1]
    assert (op, trunk.id, trunk.provider_id) == ("delete", trunk_id, "ST_1")


async def test_handle_command_returns_its_messages_and_does_not_commit() -> None:
    db = FakeDatabase()
    h = Harness(db=db)
    async with FakeUnitOfWork(db) as uow:
        messages = await handle_command(create(uuid4()), uow, h.services)
        assert [ce_type(m) for m in messages] == [CREATED, STATE]
        assert uow.committed == 0
    assert db.trunks == {}
    assert db.outbox == []
    assert db.processed == {}


# --- rejections ------------------------------------------------------------------------------


async def test_validation_failed_from_the_domain_carries_pointers(h: Harness) -> None:
    trunk_id = uuid4()
    bad = create(
        trunk_id,
        gateways=[{"ipOrDomain": "sip:x@example.com", "port": "5060", "name": "gw"}],
        id="cmd-1",
    )

    out = await h.run(bad)

    assert len(out) == 1
    body = assert_rejected(out[0], Reason.VALIDATION_FAILED, trunk_id)
    pointers = {e["pointer"] for e in body["errors"]}
    assert pointers == {"/gateways/0/ipOrDomain", "/gateways/0/port"}
    assert body["commandId"] == "cmd-1"
    assert body["commandType"] == CREATE
    assert trunk_id not in h.db.trunks
    assert h.provider.calls == []
    assert ("/test", "cmd-1") in h.db.processed  # a permanent refusal is remembered


async def test_validation_failed_on_update_points_into_the_patch(h: Harness) -> None:
    trunk_id = await created_trunk(h)

    out = await h.run(update(trunk_id, {"gateways": [], "isSystem": True}))

    body = assert_rejected(out[0], Reason.VALIDATION_FAILED, trunk_id)
    pointers = {e["pointer"] for e in body["errors"]}
    assert pointers == {"/isSystem", "/gateways"}  # pointers into the patch, as on REST
    assert h.db.trunks[trunk_id].version == 1


@pytest.mark.parametrize(
    ("ce", "body", "pointer"),
    [
        (UPDATE, {"changes": 3}, "/changes"),
        (UPDATE, {"changes": {}, "expectedVersion": "1"}, "/expectedVersion"),
        (DELETE, {"tenantId": 5}, "/tenantId"),
    ],
    ids=["changes-not-object", "version-string", "tenant-int"],
)
async def test_validation_failed_for_a_malformed_envelope(
    h: Harness, ce: str, body: dict[str, object], pointer: str
) -> None:
    trunk_id = await created_trunk(h)
    full = {"trunkId": str(trunk_id), "tenantId": TENANT, **body}

    out = await h.run(command(ce, full))

    tenant = full["tenantId"] if isinstance(full["tenantId"], str) else None
    result = assert_rejected(out[0], Reason.VALIDATION_FAILED, trunk_id, tenant=tenant)
    assert pointer in {e["pointer"] for e in result["errors"]}
    assert h.db.trunks[trunk_id].version == 1
    assert h.provider.ops() == ["create"]


@pytest.mark.parametrize("op", ["update", "delete"])
async def test_not_found_for_an_unknown_trunk(h: Harness, op: str) -> None:
    trunk_id = uuid4()
    cmd = update(trunk_id, {"name": "x"}) if op == "update" else delete(trunk_id)

    out = await h.run(cmd)

    assert_rejected(out[0], Reason.NOT_FOUND, trunk_id)
    assert h.provider.calls == []
    assert (cmd.ce.source, cmd.ce.id) in h.db.processed


@pytest.mark.parametrize("op", ["update", "delete"])
async def test_another_tenants_trunk_is_not_found(h: Harness, op: str) -> None:
    trunk_id = await created_trunk(h)
    cmd = (
        update(trunk_id, {"name": "x"}, tenant=OTHER_TENANT)
        if op == "update"
        else delete(trunk_id, tenant=OTHER_TENANT, expected_version=99)
    )

    out = await h.run(cmd)

    assert_rejected(out[0], Reason.NOT_FOUND, trunk_id, tenant=OTHER_TENANT)
    assert h.db.trunks[trunk_id].version == 1
    assert h.provider.ops() == ["create"]


@pytest.mark.parametrize("op", ["update", "delete"])
async def test_system_trunk_is_immutable(h: Harness, op: str) -> None:
    system = h.seed_system_trunk()
    cmd = update(system.id, {"name": "mine now"}) if op == "update" else delete(system.id)

    out = await h.run(cmd)

    assert_rejected(out[0], Reason.SYSTEM_TRUNK_IMMUTABLE, system.id)
    assert h.db.trunks[system.id] == system
    assert h.provider.calls == []


@pytest.mark.parametrize("op", ["update", "delete"])
async def test_version_conflict(h: Harness, op: str) -> None:
    trunk_id = await created_trunk(h)
    cmd = (
        update(trunk_id, {"name": "x"}, expected_version=2)
        if op == "update"
        else delete(trunk_id, expected_version=0)
    )

    out = await h.run(cmd)

    assert_rejected(out[0], Reason.VERSION_CONFLICT, trunk_id)
    assert h.db.trunks[trunk_id].version == 1
    assert h.provider.ops() == ["create"]


async def test_create_with_an_id_in_use_is_already_exists(h: Harness) -> None:
    trunk_id = await created_trunk(h)
    before = h.db.trunks[trunk_id]

    out = await h.run(create(trunk_id, name="Another"))

    assert_rejected(out[0], Reason.ALREADY_EXISTS, trunk_id)
    assert h.db.trunks[trunk_id] == before
    assert h.provider.ops() == ["create"]


async def test_create_over_a_system_trunk_id_is_already_exists(h: Harness) -> None:
    system = h.seed_system_trunk()

    out = await h.run(create(system.id))

    assert_rejected(out[0], Reason.ALREADY_EXISTS, system.id)


async def test_same_command_id_with_another_body_is_idempotency_key_reused(h: Harness) -> None:
    trunk_id = uuid4()
    first = await h.run(create(trunk_id, id="key-1"))

    out = await h.run(create(trunk_id, id="key-1", name="Different"))

    body = assert_rejected(out[0], Reason.IDEMPOTENCY_KEY_REUSED, trunk_id)
    assert body["commandId"] == "key-1"
    assert out[0].header("ce_id") != first[0].header("ce_id")
    assert h.db.trunks[trunk_id].name == "Main Office SIP Trunk"
    assert h.db.processed[("/test", "key-1")].outcome == first[0]  # the original stays
    assert h.provider.ops() == ["create"]


async def test_same_command_id_with_another_type_is_idempotency_key_reused(h: Harness) -> None:
    trunk_id = await created_trunk(h)
    await h.run(update(trunk_id, {"name": "x"}, id="key-2"))

    out = await h.run(delete(trunk_id, id="key-2"))

    assert_rejected(out[0], Reason.IDEMPOTENCY_KEY_REUSED, trunk_id)
    assert trunk_id in h.db.trunks


async def test_provider_unavailable_is_the_commands_one_outcome(h: Harness) -> None:
    # Exactly one outcome per command (CONTRACT §3): a redelivery gets the same rejection; a
    # caller that wants to try again sends a new command.
    trunk_id = uuid4()
    cmd = create(trunk_id, id="cmd-retry")
    h.provider.fail(Reason.PROVIDER_UNAVAILABLE, times=1)

    out = await h.run(cmd)

    assert_rejected(out[0], Reason.PROVIDER_UNAVAILABLE, trunk_id)
    assert trunk_id not in h.db.trunks
    assert h.db.processed[("/test", "cmd-retry")].outcome == out[0]

    again = await h.run(cmd)

    assert again[0].header("ce_id") == out[0].header("ce_id")
    assert trunk_id not in h.db.trunks
    assert h.provider.ops() == ["create"]

    fresh = await h.run(create(trunk_id, id="cmd-new"))
    assert [ce_type(m) for m in fresh] == [CREATED, STATE]


@pytest.mark.parametrize("op", ["update", "delete"])
async def test_provider_unavailable_on_update_or_delete_changes_nothing(
    h: Harness, op: str
) -> None:
    trunk_id = await created_trunk(h)
    before = h.db.trunks[trunk_id]
    cmd = update(trunk_id, {"name": "x"}) if op == "update" else delete(trunk_id)
    h.provider.fail(Reason.PROVIDER_UNAVAILABLE, times=1)

    out = await h.run(cmd)

    assert [ce_type(m) for m in out] == [REJECTED]
    assert_rejected(out[0], Reason.PROVIDER_UNAVAILABLE, trunk_id)
    assert h.db.trunks[trunk_id] == before


async def test_provider_rejected_is_remembered(h: Harness) -> None:
    trunk_id = uuid4()
    cmd = create(trunk_id)
    h.provider.fail(Reason.PROVIDER_REJECTED, times=1)

    out = await h.run(cmd)

    assert_rejected(out[0], Reason.PROVIDER_REJECTED, trunk_id)
    assert trunk_id not in h.db.trunks
    assert h.db.processed[(cmd.ce.source, cmd.ce.id)].outcome == out[0]

    again = await h.run(cmd)

    assert len(again) == 1
    assert_same_event(again[0], out[0], cmd)  # the same refusal, not a second try
    assert h.provider.ops() == ["create"]


# --- duplicates ----------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["create", "update", "delete", "rejected"])
async def test_duplicate_gets_the_original_outcome_and_applies_nothing(h: Harness, op: str) -> None:
    trunk_id = await created_trunk(h)
    cmd = {
        "create": create(trunk_id if op == "rejected" else uuid4()),
        "rejected": create(trunk_id),
        "update": update(trunk_id, {"name": "Renamed"}),
        "delete": delete(trunk_id),
    }[op]
    first = await h.run(cmd)
    trunks, calls = dict(h.db.trunks), list(h.provider.calls)

    again = await h.run(cmd)

    assert len(again) == 1  # only the outcome, no state message
    assert_same_event(again[0], first[0], cmd)
    assert h.db.trunks == trunks
    assert h.provider.calls == calls


async def test_duplicate_within_one_batch_is_applied_once(h: Harness) -> None:
    trunk_id = await created_trunk(h)
    cmd = update(trunk_id, {"name": "Renamed"})

    out = await h.run(cmd, cmd)

    assert [ce_type(m) for m in out] == [UPDATED, STATE, UPDATED]
    assert_same_event(out[2], out[0], cmd)
    assert h.db.trunks[trunk_id].version == 2
    assert h.provider.ops() == ["create", "update"]


async def test_duplicate_with_reordered_json_keys_is_the_same_command(h: Harness) -> None:
    trunk_id = uuid4()
    body = create_body(trunk_id)
    reordered = dict(reversed(list(body.items())))
    first = await h.run(command(CREATE, body, id="same"))

    repeat = command(CREATE, reordered, id="same", correlation_id="a-later-request")
    again = await h.run(repeat)

    assert len(again) == 1
    assert_same_event(again[0], first[0], repeat)
    assert again[0].header("ce_correlationid") == "a-later-request"
    assert h.provider.ops() == ["create"]


async def test_a_command_processed_before_digests_were_keyed_is_still_recognised(
    h: Harness,
) -> None:
    """Rows written by an older worker hold the bare SHA-256 of the body until purged."""
    trunk_id = uuid4()
    cmd = create(trunk_id)
    first = await h.run(cmd)
    opened = {**cmd.body, "authentication": {"username": "office_sip_user", "password": PASSWORD}}
    bare = hashlib.sha256(canonical(opened)).hexdigest()
    key = (cmd.ce.source, cmd.ce.id)
    h.db.processed[key] = dataclasses.replace(h.db.processed[key], body_sha256=bare)

    again = await h.run(cmd)

    assert_same_event(again[0], first[0], cmd)
    assert h.provider.ops() == ["create"]


async def test_same_id_from_another_source_is_another_command(h: Harness) -> None:
    trunk_id = await created_trunk(h)
    changes = {"advanced": {"numbers": ["+15551234567"]}}
    await h.run(update(trunk_id, changes, id="shared-id", source="/gateway"))
    await h.run(update(trunk_id, {"name": "B"}, id="shared-id", source="/batch-importer"))

    assert h.db.trunks[trunk_id].version == 3
    assert h.db.trunks[trunk_id].name == "B"
    assert ("/gateway", "shared-id") in h.db.processed
    assert ("/batch-importer", "shared-id") in h.db.processed


# --- headers and secrets -------------------------------------------------------------------


async def scenario(h: Harness) -> list[tuple[OutgoingMessage, str, str]]:
    """Every kind of outcome, each with the command (correlation id, ce_id) that caused it."""
    trunk_id, other = uuid4(), uuid4()
    commands = [
        create(trunk_id),
        update(trunk_id, {"authentication": {"password": "N3w-password"}}),
        update(trunk_id, {"authentication": {"password": MASKED_PASSWORD}}),  # no-op
        update(trunk_id, {"authentication": {"password": "short"}}),  # validation_failed
        create(other, authentication={"username": "u", "password": "*" * 8}),
        create(uuid4(), authentication={"username": "u", "password": "Pässwort-geheim"}),
        create(uuid4(), authentication={"username": PASSWORD, "password": "x" * 129}),
        command(UPDATE, {"trunkId": str(trunk_id), "tenantId": TENANT, "changes": PASSWORD}),
        delete(trunk_id),
    ]
    result = []
    for cmd in commands:
        for message in await h.run(cmd):
            result.append((message, cmd.ce.correlation_id, cmd.ce.id))
    return result


async def test_every_outcome_carries_the_commands_correlation_and_causation(h: Harness) -> None:
    sent = await scenario(h)

    assert {ce_type(m) for m, _, _ in sent} == {CREATED, UPDATED, DELETED, REJECTED, STATE}
    ids = [m.header("ce_id") for m, _, _ in sent]
    assert len(set(ids)) == len(ids)
    for message, correlation_id, command_id in sent:
        headers = dict(message.headers)
        assert headers["ce_specversion"] == "1.0"
        assert headers["ce_source"] == SERVICE_SOURCE
        assert headers["ce_correlationid"] == correlation_id
        assert headers["ce_causationid"] == command_id
        assert headers["content-type"] == "application/json"
        assert headers["ce_time"].endswith("Z")
        datetime.fromisoformat(headers["ce_time"])
        assert len(message.headers) == len(headers)  # no header twice


async def test_no_plaintext_password_in_any_outbox_message(h: Harness) -> None:
    sent = await scenario(h)

    for message, _, _ in sent:
        blob = json.dumps(message.to_json(), ensure_ascii=False).encode()
        blob += b"".join(v for _, v in message.kafka_headers())
        for secret in (PASSWORD, "N3w-password", "short", "Pässwort-geheim", "x" * 129):
            assert secret.encode() not in blob, (ce_type(message), secret)


# --- batches and transactions ---------------------------------------------------------------


async def test_a_batch_on_one_trunk_is_applied_in_order_in_one_commit(h: Harness) -> None:
    trunk_id = uuid4()

    out = await h.run(
        create(trunk_id),
        update(trunk_id, {"name": "Two"}, expected_version=1),
        update(trunk_id, {"advanced": {"transport": "tls"}}, expected_version=2),
        delete(trunk_id, expected_version=3),
    )

    assert h.db.commits == 1
    events = [m for m in out if m.topic == TOPICS.events]
    assert [ce_type(m) for m in events] == [CREATED, UPDATED, UPDATED, DELETED]
    assert [payload(m)["version"] for m in events] == [1, 2, 3, 4]
    assert payload(events[2])["changedFields"] == ["advanced.transport"]
    states = [m for m in out if m.topic == TOPICS.state]
    assert [payload(m)["version"] for m in states[:-1]] == [1, 2, 3]
    assert states[-1].payload is None
    assert trunk_id not in h.db.trunks
    assert len(h.db.processed) == 4
    assert h.provider.ops() == ["create", "update", "update", "delete"]


async def test_a_batch_with_an_unexpected_error_commits_nothing(h: Harness) -> None:
    kept = await created_trunk(h)
    snapshot = (dict(h.db.trunks), list(h.db.outbox), dict(h.db.processed), h.db.commits)
    trunk_id = uuid4()

    class Boom(Exception):
        pass

    h.provider.fail(Boom("a bug in the provider client"), on="update")
    batch = [create(trunk_id), update(kept, {"name": "Changed"}), delete(kept)]

    with pytest.raises(Boom):
        await h.run(*batch)

    assert (dict(h.db.trunks), list(h.db.outbox), dict(h.db.processed), h.db.commits) == snapshot
    assert h.provider.ops() == ["create", "create", "update"]  # the delete never reached


async def test_a_uow_left_without_commit_discards_its_changes() -> None:
    db = FakeDatabase()
    h = Harness(db=db)
    uow = db.unit_of_work()
    async with uow:
        await handle_command(create(uuid4()), uow, h.services)
        assert len(await uow.trunks.list_all()) == 1
    assert (db.trunks, db.outbox, db.processed, uow.committed) == ({}, [], {}, 0)
