"""The command service on the real broker, driven as an outside producer would drive it.

Runs once per database backend (SQLite, PostgreSQL). Each test uses fresh trunk ids, so they
share one running worker + relay per backend.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from service.adapters import kafka_clients
from service.adapters.database import create_engine
from service.adapters.encryption import load_cipher
from service.adapters.sql_unit_of_work import SqlUnitOfWork
from service.config import Settings
from tests.integration.conftest import BACKENDS, NewDatabase, new_database_for
from tests.integration.kafka_stack import (
    CREATE,
    DELETE,
    UPDATE,
    Client,
    headers_of,
    isolated_settings,
    running_service,
)

PASSWORD = "Sup3r-secret-pw"
SYSTEM_TRUNK_ID = str(uuid.uuid4())
GATEWAY = {"ipOrDomain": "sip.example.com", "port": 5060, "name": "Primary"}


@pytest_asyncio.fixture(scope="session", params=BACKENDS)
async def service(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    new_postgres_database: NewDatabase,
) -> AsyncIterator[Client]:
    tmp = tmp_path_factory.mktemp(request.param)
    system_file = tmp / "system-trunks.json"
    system_file.write_text(
        json.dumps([{"id": SYSTEM_TRUNK_ID, "name": "Platform", "gateways": [GATEWAY]}])
    )
    settings = isolated_settings(
        tmp,
        database_url=await new_database_for(request.param, tmp, new_postgres_database),
        system_trunks_file=system_file,
    )
    async with running_service(settings) as client:
        yield client


def create_body(tenant: str = "acme", **fields: Any) -> dict[str, Any]:
    return {
        "trunkId": str(uuid.uuid4()),
        "tenantId": tenant,
        "name": "Main Office",
        "gateways": [GATEWAY],
        "authentication": {"username": "office", "password": PASSWORD},
        **fields,
    }


async def created(service: Client, tenant: str = "acme") -> dict[str, Any]:
    event = await service.request(CREATE, create_body(tenant))
    assert event["headers"]["ce_type"] == "sip_trunks.TrunkCreated.v1", event
    return event["body"]


async def stored_password(service: Client, trunk_id: str) -> str:
    engine = create_engine(service.settings.resolved_database_url)
    try:
        async with SqlUnitOfWork(engine, load_cipher(None, service.settings.data_dir)) as uow:
            trunk = await uow.trunks.get(uuid.UUID(trunk_id))
    finally:
        await engine.dispose()
    assert trunk is not None
    assert trunk.authentication is not None
    return trunk.authentication.password


async def test_create_gives_trunk_created_version_1(service: Client) -> None:
    body = create_body()
    command = await service.send(CREATE, body)
    # Found by its causation id: `outcome` matches on the correlation id asserted below.
    [event] = await service.events("ce_causationid", command["ce_id"])
    headers = event["headers"]
    assert headers["ce_type"] == "sip_trunks.TrunkCreated.v1"
    assert headers["ce_causationid"] == command["ce_id"]
    assert headers["ce_correlationid"] == command["ce_correlationid"]
    assert headers["ce_specversion"] == "1.0"
    assert headers["content-type"] == "application/json"
    assert event["body"]["version"] == 1
    assert event["body"]["tenantId"] == "acme"
    trunk = event["body"]["trunk"]
    assert trunk["id"] == body["trunkId"]
    assert trunk["authentication"] == {"username": "office", "password": "********"}
    assert trunk["providerId"] is None
    assert trunk["createdAt"].endswith("Z")


async def test_update_gives_changed_fields_and_masked_password_keeps_it(service: Client) -> None:
    trunk = (await created(service))["trunk"]
    event = await service.request(
        UPDATE,
        {
            "trunkId": trunk["id"],
            "tenantId": "acme",
            "changes": {"name": "Renamed", "authentication": {"password": "********"}},
        },
    )
    assert event["headers"]["ce_type"] == "sip_trunks.TrunkUpdated.v1"
    assert event["body"]["changedFields"] == ["name"]
    assert event["body"]["version"] == 2
    assert event["body"]["trunk"]["name"] == "Renamed"
    assert await stored_password(service, trunk["id"]) == PASSWORD


async def test_system_trunk_is_immutable(service: Client) -> None:
    event = await service.request(
        UPDATE, {"trunkId": SYSTEM_TRUNK_ID, "tenantId": "acme", "changes": {"name": "Mine"}}
    )
    assert event["body"]["reason"] == "system_trunk_immutable"
    event = await service.request(DELETE, {"trunkId": SYSTEM_TRUNK_ID, "tenantId": "acme"})
    assert event["body"]["reason"] == "system_trunk_immutable"


async def test_creating_an_existing_trunk_id_is_already_exists(service: Client) -> None:
    """CONTRACT §3 on the real database: a second create of one id (another command) is
    refused, and the first trunk stays as it was; a system trunk's id too."""
    body = create_body()
    first = await service.request(CREATE, body)
    again = await service.request(CREATE, {**body, "name": "Second"})
    assert again["headers"]["ce_type"] == "sip_trunks.TrunkRejected.v1"
    assert again["body"]["reason"] == "already_exists"
    assert first["body"]["version"] == 1
    update = await service.request(UPDATE, {**_ids(body), "changes": {}})
    assert update["body"]["version"] == 1
    assert update["body"]["trunk"]["name"] == body["name"]
    system = await service.request(CREATE, {**create_body(), "trunkId": SYSTEM_TRUNK_ID})
    assert system["body"]["reason"] == "already_exists"


def _ids(body: dict[str, Any]) -> dict[str, Any]:
    return {"trunkId": body["trunkId"], "tenantId": body["tenantId"]}


async def test_another_tenants_trunk_is_not_found(service: Client) -> None:
    trunk = (await created(service, tenant="acme"))["trunk"]
    for ce_type, body in [
        (UPDATE, {"trunkId": trunk["id"], "tenantId": "globex", "changes": {"name": "x"}}),
        (DELETE, {"trunkId": trunk["id"], "tenantId": "globex"}),
    ]:
        event = await service.request(ce_type, body)
        assert event["headers"]["ce_type"] == "sip_trunks.TrunkRejected.v1"
        assert event["body"]["reason"] == "not_found"
        assert event["body"]["tenantId"] == "globex"


async def test_stale_expected_version_is_a_conflict(service: Client) -> None:
    trunk = (await created(service))["trunk"]
    body = {"trunkId": trunk["id"], "tenantId": "acme", "expectedVersion": 1}
    ok = await service.request(UPDATE, {**body, "changes": {"name": "v2"}})
    assert ok["body"]["version"] == 2
    stale = await service.request(UPDATE, {**body, "changes": {"name": "v3"}})
    assert stale["body"]["reason"] == "version_conflict"
    stale_delete = await service.request(DELETE, body)
    assert stale_delete["body"]["reason"] == "version_conflict"


async def test_invalid_command_gets_field_errors(service: Client) -> None:
    body = create_body(gateways=[{"ipOrDomain": "sip:x.com", "port": "5060", "name": "a"}])
    event = await service.request(CREATE, body)
    rejected = event["body"]
    assert rejected["reason"] == "validation_failed"
    assert rejected["commandType"] == CREATE
    pointers = {e["pointer"] for e in rejected["errors"]}
    assert {"/gateways/0/ipOrDomain", "/gateways/0/port"} <= pointers


async def test_duplicate_command_gets_the_original_outcome_applied_once(service: Client) -> None:
    trunk = (await created(service))["trunk"]
    body = {"trunkId": trunk["id"], "tenantId": "acme", "changes": {"name": "Once"}}
    command_id = str(uuid.uuid4())
    first = await service.send(UPDATE, body, command_id=command_id)
    again = await service.send(UPDATE, body, command_id=command_id)
    original, repeated = await service.outcome(first), await service.outcome(again)
    assert repeated["headers"]["ce_id"] == original["headers"]["ce_id"]
    assert repeated["body"] == original["body"]
    assert original["body"]["version"] == 2
    # applied once: the next change makes version 3, not 4
    nxt = await service.request(UPDATE, {**body, "changes": {"name": "Twice"}})
    assert nxt["body"]["version"] == 3
    # the same command id with another body is refused
    reused = await service.request(
        UPDATE, {**body, "changes": {"name": "Other"}}, command_id=command_id
    )
    assert reused["body"]["reason"] == "idempotency_key_reused"


async def test_the_same_id_from_another_source_is_another_command(service: Client) -> None:
    """CONTRACT §3: a duplicate is the same `ce_source` + `ce_id`; the same `ce_id` from
    another producer is applied as a command of its own (in the real database's key too)."""
    trunk = (await created(service))["trunk"]
    body = {"trunkId": trunk["id"], "tenantId": "acme", "changes": {"name": "From A"}}
    command_id = str(uuid.uuid4())
    first = await service.request(UPDATE, body, command_id=command_id, source="/producer-a")
    other = await service.request(
        UPDATE, {**body, "changes": {"name": "From B"}}, command_id=command_id, source="/producer-b"
    )
    assert (
        first["headers"]["ce_type"] == other["headers"]["ce_type"] == "sip_trunks.TrunkUpdated.v1"
    )
    assert (first["body"]["version"], other["body"]["version"]) == (2, 3)
    assert other["body"]["trunk"]["name"] == "From B"
    assert other["headers"]["ce_id"] != first["headers"]["ce_id"]


async def test_garbage_goes_to_dlt_and_the_next_command_is_processed(service: Client) -> None:
    marker = uuid.uuid4().hex
    garbage = b"\xff\xfegarbage " + PASSWORD.encode()
    await service.send_raw(garbage, [("ce_type", b"nonsense")], key=marker)
    dead = await service.taps[service.topics.dlt].wait_for(lambda r: r.key == marker.encode())
    # Not strict JSON: withheld, since a password in it cannot be found (CONTRACT §4.2).
    assert dead[0].value is None
    headers = headers_of(dead[0])
    assert headers["kafka_dlt-value-length"] == str(len(garbage))
    assert headers["kafka_dlt-original-topic"] == service.topics.commands
    assert int(headers["kafka_dlt-original-offset"]) >= 0
    assert headers["kafka_dlt-original-partition"].isdigit()
    assert headers["kafka_dlt-exception-message"]
    assert headers["ce_type"] == "nonsense"  # the message as received, headers kept
    await created(service)  # the worker moved on


async def test_unknown_type_and_missing_trunk_id_go_to_dlt(service: Client) -> None:
    good = await service.send(CREATE, create_body())
    for ce_type, body in [("sip_trunks.Frobnicate.v1", create_body()), (CREATE, {"name": "x"})]:
        sent = await service.send(ce_type, body)
        await service.taps[service.topics.dlt].wait_for(
            lambda r, sent=sent: headers_of(r).get("ce_id") == sent["ce_id"]
        )
    await service.outcome(good)


def _deep(trunk_id: str, depth: int) -> bytes:
    nested = b"[" * depth + b"]" * depth
    return b'{"trunkId": "%s", "tenantId": "acme", "changes": {"advanced": {"numbers": %s}}}' % (
        trunk_id.encode(),
        nested,
    )


async def test_a_command_32_deep_is_judged_not_dead_lettered(service: Client) -> None:
    """CONTRACT §4.1: the limit is 32 levels; a command at exactly 32 (a PATCH body of 31,
    wrapped in `changes`) reaches the domain and is answered, never sent to the DLT."""
    tid = (await created(service))["trunk"]["id"]
    headers = await service.send_raw_command(UPDATE, _deep(tid, 29), key=tid)
    [event] = await service.events("ce_causationid", headers["ce_id"])
    assert event["body"]["reason"] == "validation_failed"
    assert not [
        r
        for r in service.taps[service.topics.dlt].records
        if headers_of(r).get("ce_id") == headers["ce_id"]
    ]


async def test_hostile_commands_each_get_one_answer_and_never_stall_the_worker(
    service: Client,
) -> None:
    """Issue 7's reproductions on the real broker: each record is answered once (an outcome or
    a DLT entry), and the good command sent after them all is applied at once."""
    trunk = await created(service)
    tid = trunk["trunk"]["id"]
    hostile = {
        "600 deep": _deep(tid, 600),
        "33 deep": _deep(tid, 30),  # the envelope adds 3 levels
        "NaN": b'{"trunkId": "%s", "tenantId": "acme", "changes": {"name": NaN}}' % tid.encode(),
        "Infinity": b'{"trunkId": "%s", "tenantId": "acme", "name": 1e99999}' % tid.encode(),
        "lone surrogate": b'{"trunkId": "%s", "tenantId": "\\ud800"}' % tid.encode(),
        "NUL in tenant": json.dumps(create_body("ac\x00me")).encode(),
        "deep with a password": b'{"trunkId": "%s", "x": %s{"password": "%s"}%s}'
        % (tid.encode(), b"[" * 40, PASSWORD.encode(), b"]" * 40),
        "huge": json.dumps({**create_body(), "name": "x" * 900_000}).encode(),
    }
    sent = {}
    for name, value in hostile.items():
        ce_type = CREATE if name in ("NUL in tenant", "huge", "Infinity") else UPDATE
        sent[name] = await service.send_raw_command(ce_type, value, key=tid)
    good = await service.send(CREATE, create_body())
    event = await service.outcome(good)
    assert event["headers"]["ce_type"] == "sip_trunks.TrunkCreated.v1"

    dlt, events = service.taps[service.topics.dlt], service.taps[service.topics.events]
    for name, headers in sent.items():
        ce_id = headers["ce_id"]
        # Each tap reads its partitions on its own, so the good command's answer says nothing
        # about whether this one's has been read yet: wait for either, then count both.
        waits = [
            asyncio.create_task(dlt.wait_for(lambda r, i=ce_id: headers_of(r).get("ce_id") == i)),
            asyncio.create_task(
                events.wait_for(lambda r, i=ce_id: headers_of(r).get("ce_causationid") == i)
            ),
        ]
        await asyncio.wait(waits, timeout=20, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
        dead = [r for r in dlt.records if headers_of(r).get("ce_id") == ce_id]
        answers = [r for r in events.records if headers_of(r).get("ce_causationid") == ce_id]
        assert len(dead) + len(answers) == 1, (name, len(dead), len(answers))
        for record in dead:
            assert PASSWORD.encode() not in (record.value or b""), name
    for name in ("600 deep", "33 deep", "NaN", "Infinity", "lone surrogate"):
        dead_names = [headers_of(r).get("ce_id") for r in dlt.records]
        assert sent[name]["ce_id"] in dead_names, name


async def test_state_topic_holds_snapshot_then_tombstone(service: Client) -> None:
    trunk = (await created(service))["trunk"]
    await service.request(
        UPDATE, {"trunkId": trunk["id"], "tenantId": "acme", "changes": {"name": "Latest"}}
    )
    state = service.taps[service.topics.state]
    snapshots = await state.wait_for(lambda r: r.key.decode() == trunk["id"], count=2)
    latest = json.loads(snapshots[-1].value)
    assert latest["version"] == 2
    assert latest["trunk"]["name"] == "Latest"
    assert headers_of(snapshots[-1])["ce_type"] == "sip_trunks.TrunkState.v1"
    deleted = await service.request(DELETE, {"trunkId": trunk["id"], "tenantId": "acme"})
    assert deleted["body"] == {"trunkId": trunk["id"], "tenantId": "acme", "version": 3}
    records = await state.wait_for(lambda r: r.key.decode() == trunk["id"], count=3)
    assert records[-1].value is None


async def cleanup_policies(settings: Settings, names: list[str]) -> dict[str, str]:
    """Each topic's `cleanup.policy`, as the broker reports it."""
    admin = kafka_clients.admin(settings)
    await admin.start()
    try:
        described = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
    finally:
        await admin.close()
    return {
        resource["resource_name"]: entry["config_value"]
        for response in described
        for resource in response.to_object()["resources"]
        for entry in resource["config_entries"]
        if entry["config_names"] == "cleanup.policy"
    }


async def test_state_topic_is_compacted_and_the_others_keep_every_record(service: Client) -> None:
    """CONTRACT §3: the state topic is compacted (the latest snapshot per trunk stays); the
    commands, events and the DLT are not (compacting them would lose records of a trunk)."""
    topics = service.topics
    policies = await cleanup_policies(
        service.settings, [topics.commands, topics.events, topics.state, topics.dlt]
    )
    assert policies[topics.state] == "compact"
    for name in (topics.commands, topics.events, topics.dlt):
        assert "compact" not in policies[name], name


async def test_system_trunk_is_announced_on_the_state_topic(service: Client) -> None:
    state = service.taps[service.topics.state]
    [snapshot] = await state.wait_for(lambda r: r.key.decode() == SYSTEM_TRUNK_ID)
    body = json.loads(snapshot.value)
    assert body["tenantId"] is None
    assert body["trunk"]["isSystem"] is True


async def test_no_password_on_any_topic_or_in_the_sqlite_file(service: Client) -> None:
    await created(service)
    for record in service.all_records():
        assert PASSWORD.encode() not in (record.value or b"")
        assert all(PASSWORD.encode() not in (v or b"") for _, v in record.headers)
    url = service.settings.resolved_database_url
    if url.startswith("sqlite"):  # (PostgreSQL's storage: see test_sql_unit_of_work)
        db = Path(url.split("///", 1)[1])
        files = list(db.parent.glob(db.name + "*"))
        assert files
        assert all(PASSWORD.encode() not in f.read_bytes() for f in files)
