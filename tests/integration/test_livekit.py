"""The LiveKit provider against a real livekit-server (with Redis), driven through Kafka.

After each command, LiveKit is read back with its own API. Each test run has its own
LIVEKIT_OWNER, topics and database, so reconciliation here never touches another run's trunks.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Any

from livekit import api

from service.adapters.kafka_topics import ensure_topics
from service.bootstrap import build
from service.config import Settings
from tests.conftest import (
    LIVEKIT_API_KEY,
    LIVEKIT_API_SECRET,
    LIVEKIT_URL,
    at_livekit,
)
from tests.e2e.stack import start_process, stop_process
from tests.integration.kafka_stack import (
    CREATE,
    DELETE,
    UPDATE,
    Client,
    isolated_settings,
    running_service,
)
from tests.integration.tcp_proxy import TcpProxy

PASSWORD = "LiveKit-pa55word"


def settings_for(tmp: Path, **overrides: Any) -> Settings:
    """`isolated_settings` (prefix `lk`) with the provider LiveKit, owner `test-<run>`."""
    run = uuid.uuid4().hex[:8]
    livekit: dict[str, Any] = {
        "provider": "livekit",
        "livekit_url": LIVEKIT_URL,
        "livekit_api_key": LIVEKIT_API_KEY,
        "livekit_api_secret": LIVEKIT_API_SECRET,
        "livekit_owner": f"test-{run}",
        "reconcile_interval_s": 0,
    }
    return isolated_settings(tmp, "lk", **(livekit | overrides))


async def for_trunk(livekit: api.LiveKitAPI, trunk_id: str) -> list[api.SIPOutboundTrunkInfo]:
    listed = await livekit.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())
    return [t for t in listed.items if json.loads(t.metadata or "{}").get("trunkId") == trunk_id]


def create_body(**fields: Any) -> dict[str, Any]:
    return {
        "trunkId": str(uuid.uuid4()),
        "tenantId": "acme",
        "name": "Office",
        "gateways": [{"ipOrDomain": "sip.example.com", "port": 5061, "name": "primary"}],
        "authentication": {"username": "office", "password": PASSWORD},
        "advanced": {
            "transport": "tls",
            "numbers": ["+15550100", "+15550101"],
            "headers": {"X-Tenant": "acme"},
            "destinationCountry": "US",
            "mediaEncryption": "allow",
        },
        **fields,
    }


async def test_create_update_delete_are_mirrored(livekit: api.LiveKitAPI, tmp_path: Path) -> None:
    async with running_service(settings_for(tmp_path)) as client:
        body = create_body()
        created = await client.request(CREATE, body)
        trunk = created["body"]["trunk"]
        assert trunk["providerId"].startswith("ST_")
        info = await at_livekit(livekit, trunk["providerId"])
        assert info is not None
        assert info.name == "Office"
        assert info.address == "sip.example.com:5061"
        assert list(info.numbers) == ["+15550100", "+15550101"]
        assert info.transport == api.SIPTransport.SIP_TRANSPORT_TLS
        assert info.auth_username == "office"
        assert info.auth_password == PASSWORD
        assert dict(info.headers) == {"X-Tenant": "acme"}
        assert info.destination_country == "US"
        assert info.media_encryption == api.SIPMediaEncryption.SIP_MEDIA_ENCRYPT_ALLOW
        assert json.loads(info.metadata)["trunkId"] == trunk["id"]

        ids = {"trunkId": trunk["id"], "tenantId": "acme"}
        masked = {"name": "Renamed", "authentication": {"password": "********"}}
        await client.request(UPDATE, {**ids, "changes": masked})
        info = await at_livekit(livekit, trunk["providerId"])
        assert info is not None
        assert (info.name, info.auth_password) == ("Renamed", PASSWORD)  # password kept

        moved = {
            "gateways": [{"ipOrDomain": "10.1.2.3", "port": 5080, "name": "new"}],
            "advanced": {"numbers": None},
            "authentication": {"password": "N3w-password"},
        }
        await client.request(UPDATE, {**ids, "changes": moved})
        info = await at_livekit(livekit, trunk["providerId"])
        assert info is not None
        assert info.address == "10.1.2.3:5080"
        assert info.auth_password == "N3w-password"
        assert list(info.numbers) == [client.settings.livekit_default_number]

        deleted = await client.request(DELETE, ids)
        assert deleted["headers"]["ce_type"] == "sip_trunks.TrunkDeleted.v1"
        assert await at_livekit(livekit, trunk["providerId"]) is None


async def test_livekit_refusal_is_provider_rejected(
    livekit: api.LiveKitAPI, tmp_path: Path
) -> None:
    # `From` is a valid SIP header name for us, but LiveKit will not let a trunk set it.
    async with running_service(settings_for(tmp_path)) as client:
        body = create_body(advanced={"headers": {"From": "sip:x@example.com"}})
        event = await client.request(CREATE, body)
        assert event["body"]["reason"] == "provider_rejected"
        assert "header name From not supported" in event["body"]["detail"]
        assert await for_trunk(livekit, body["trunkId"]) == []


async def test_outage_gives_provider_unavailable_then_recovers(
    livekit: api.LiveKitAPI, tmp_path: Path
) -> None:
    host, port = LIVEKIT_URL.removeprefix("http://").split(":")
    async with TcpProxy(host, int(port)) as proxy:
        settings = settings_for(
            tmp_path,
            livekit_url=f"http://127.0.0.1:{proxy.port}",
            livekit_timeout_s=1.0,
            livekit_breaker_s=0.5,
        )
        bound_s = 3 * 1.0 + 0.2 + 0.5 + 1.0  # tries x timeout + backoffs, with slack
        async with running_service(settings) as client:
            for mode in ("refuse", "blackhole"):  # livekit-server down; or hung
                proxy.mode = mode
                body = create_body()
                started = asyncio.get_running_loop().time()
                event = await client.request(CREATE, body)
                took = asyncio.get_running_loop().time() - started
                assert event["body"]["reason"] == "provider_unavailable", event
                assert took < bound_s + 2
                assert await for_trunk(livekit, body["trunkId"]) == []  # nothing half-applied
                # Right after a failure the breaker answers at once, without waiting out tries.
                started = asyncio.get_running_loop().time()
                fast = await client.request(CREATE, create_body())
                assert fast["body"]["reason"] == "provider_unavailable"
                assert asyncio.get_running_loop().time() - started < 1.0
                await asyncio.sleep(0.6)  # the breaker closes
            proxy.mode = "blackhole"  # many at once: their calls wait out a bound together
            await asyncio.sleep(0.6)  # the breaker closes
            bodies = [create_body() for _ in range(20)]
            started = asyncio.get_running_loop().time()
            sent = [await client.send(CREATE, body) for body in bodies]
            events = [await client.outcome(command) for command in sent]
            took = asyncio.get_running_loop().time() - started
            assert {e["body"]["reason"] for e in events} == {"provider_unavailable"}
            # The worker may poll them in two batches (the first before the rest arrived), and
            # this test's breaker (0.5 s) may close in between: two bounds at most.
            assert took < 2 * bound_s + 2
            await asyncio.sleep(0.6)  # the breaker closes
            proxy.mode = "forward"
            again = await client.request(CREATE, create_body())
            assert again["headers"]["ce_type"] == "sip_trunks.TrunkCreated.v1"


async def test_a_batch_on_many_trunks_is_mirrored_in_each_trunks_order(
    livekit: api.LiveKitAPI, tmp_path: Path
) -> None:
    """Sent together, so batched: calls of different trunks overlap, each trunk's in order."""
    async with running_service(settings_for(tmp_path, livekit_concurrency=4)) as client:
        bodies = [create_body(name=f"Trunk {i}") for i in range(12)]
        sent = []
        for body in bodies:
            ids = {"trunkId": body["trunkId"], "tenantId": "acme"}
            sent.append(await client.send(CREATE, body))
            sent.append(await client.send(UPDATE, {**ids, "changes": {"name": "Renamed"}}))
        events = [await client.outcome(command) for command in sent]
    assert [e["headers"]["ce_type"] for e in events] == [
        "sip_trunks.TrunkCreated.v1",
        "sip_trunks.TrunkUpdated.v1",
    ] * len(bodies)
    for created, updated in zip(events[::2], events[1::2], strict=True):
        trunk = updated["body"]["trunk"]
        assert updated["body"]["version"] == 2
        assert trunk["providerId"] == created["body"]["trunk"]["providerId"]
        info = await at_livekit(livekit, trunk["providerId"])
        assert info is not None
        assert info.name == "Renamed"


async def test_crash_between_provider_call_and_commit_then_reconcile(
    livekit: api.LiveKitAPI, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path)
    env = {**os.environ, **{k.upper(): str(v) for k, v in settings_env(settings).items()}}
    log = tmp_path / "processes.log"
    client = Client(settings)
    await ensure_topics(settings)
    relay = await start_process("relay", env, log)
    crashing = await start_process("worker", {**env, "FAULT_EXIT_AFTER_PROVIDER_CALL": "true"}, log)
    await client.start()
    try:
        body = create_body()
        command = await client.send(CREATE, body)
        assert await asyncio.wait_for(crashing.wait(), 60) == 86  # died after the LiveKit call
        assert len(await for_trunk(livekit, body["trunkId"])) == 1  # made, never recorded
        worker = await start_process("worker", env, log)
        try:
            event = await client.outcome(command)  # the redelivered command is applied
            provider_id = event["body"]["trunk"]["providerId"]
        finally:
            await stop_process(worker)
    finally:
        await stop_process(relay)
        await client.stop()
    assert len(await for_trunk(livekit, body["trunkId"])) == 2  # one orphan
    container = await build(settings)
    seen: dict[str, float] = {}
    try:
        # LiveKit keeps no creation time: an orphan waits out the grace, counted from when this
        # process first saw it (it might belong to a command in flight).
        first = await container.reconcile(orphan_grace_s=30, seen=seen)
        assert first.counts() == {"in_step": 1, "skipped": 1}
        report = await container.reconcile(orphan_grace_s=0, seen=seen)
    finally:
        await container.close()
    assert report.counts() == {"in_step": 1, "orphan_deleted": 1}
    assert [t.sip_trunk_id for t in await for_trunk(livekit, body["trunkId"])] == [provider_id]


async def test_drift_at_livekit_is_repaired(livekit: api.LiveKitAPI, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    async with running_service(settings) as client:
        trunk = (await client.request(CREATE, create_body()))["body"]["trunk"]
    provider_id = trunk["providerId"]
    info = await at_livekit(livekit, provider_id)
    assert info is not None
    info.name, info.address, info.auth_password = "Changed by hand", "evil.example.com:5060", "x"
    await livekit.sip.update_outbound_trunk(provider_id, info)
    container = await build(settings)
    try:
        report = await container.reconcile(orphan_grace_s=0)
    finally:
        await container.close()
    assert report.counts() == {"drift_repaired": 1}
    repaired = await at_livekit(livekit, provider_id)
    assert repaired is not None
    assert (repaired.name, repaired.address, repaired.auth_password) == (
        "Office",
        "sip.example.com:5061",
        PASSWORD,
    )


async def test_a_trunk_deleted_at_livekit_is_made_anew_on_the_next_change(
    livekit: api.LiveKitAPI, tmp_path: Path
) -> None:
    async with running_service(settings_for(tmp_path)) as client:
        trunk = (await client.request(CREATE, create_body()))["body"]["trunk"]
        await livekit.sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=trunk["providerId"]))
        ids = {"trunkId": trunk["id"], "tenantId": "acme"}
        event = await client.request(UPDATE, {**ids, "changes": {"name": "Back"}})
        assert event["headers"]["ce_type"] == "sip_trunks.TrunkUpdated.v1", event
        new_id = event["body"]["trunk"]["providerId"]
        assert new_id != trunk["providerId"]
        info = await at_livekit(livekit, new_id)
        assert info is not None
        assert info.name == "Back"


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as the environment of a `sip-trunks` process."""
    values = settings.model_dump(
        mode="json",
        # Secrets dump as stars; the Kafka password comes from the tests' environment.
        exclude={"database_url", "encryption_key", "auth_jwt_secret", "kafka_sasl_password"},
    )
    values["livekit_api_secret"] = LIVEKIT_API_SECRET
    return {k: str(v) for k, v in values.items() if v is not None}
