"""Fault test: the worker process is killed (SIGKILL) mid-stream and restarted.

Asserts the contract's guarantees across the crash: every command gets its outcome, a command
applied before the crash is not applied again (a repeat carries the original event's `ce_id`),
and each trunk's events keep command order.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections import defaultdict
from pathlib import Path

from service.adapters.kafka_topics import ensure_topics
from service.config import Settings
from service.entrypoints.processes import isolated_env, start_process, stop_process
from tests.conftest import KAFKA_BOOTSTRAP
from tests.integration.kafka_stack import CREATE, UPDATE, Client, headers_of

TRUNKS = 150


async def test_sigkill_mid_stream_loses_nothing_and_applies_once(tmp_path: Path) -> None:
    env = isolated_env(
        tmp_path, KAFKA_BOOTSTRAP, "crash", WORKER_BATCH_SIZE="10", LOG_LEVEL="WARNING"
    )
    settings = Settings(
        kafka_bootstrap_servers=KAFKA_BOOTSTRAP, kafka_topic_prefix=env["KAFKA_TOPIC_PREFIX"]
    )
    await ensure_topics(settings)
    log = tmp_path / "processes.log"
    relay = await start_process("relay", env, log)
    worker = await start_process("worker", env, log)
    client = Client(settings)
    await client.start()
    events = client.taps[settings.topics.events]
    try:
        sent: list[dict[str, str]] = []
        for _ in range(TRUNKS):
            trunk_id = str(uuid.uuid4())
            body = {
                "trunkId": trunk_id,
                "tenantId": "acme",
                "name": "T",
                "gateways": [{"ipOrDomain": "sip.example.com", "name": "gw"}],
            }
            sent.append(await client.send(CREATE, body))
            change = {"trunkId": trunk_id, "tenantId": "acme", "changes": {"name": "T2"}}
            sent.append(await client.send(UPDATE, change))
        # Kill the worker once it has answered some of the commands, but not all.
        await events.wait_for(lambda r: True, count=TRUNKS // 3, within=60)
        worker.send_signal(signal.SIGKILL)
        await worker.wait()
        answered_before = len(events.records)
        assert answered_before < len(sent), "the worker finished before it could be killed"
        worker = await start_process("worker", env, log)

        by_command: dict[str, list[dict[str, str]]] = defaultdict(list)

        def all_answered() -> bool:
            by_command.clear()
            for record in events.records:
                by_command[headers_of(record)["ce_causationid"]].append(headers_of(record))
            return all(command["ce_id"] in by_command for command in sent)

        await events.wait_for(lambda r: all_answered(), count=1, within=90)
    finally:
        await asyncio.gather(stop_process(worker), stop_process(relay))
        await client.stop()

    outcome_ids = {cmd: {h["ce_id"] for h in answers} for cmd, answers in by_command.items()}
    assert all(len(ids) == 1 for ids in outcome_ids.values())  # repeats are the same event
    per_trunk: dict[str, list[str]] = defaultdict(list)
    for record in events.records:
        per_trunk[record.key.decode()].append(headers_of(record)["ce_type"])
    for types in per_trunk.values():
        assert types[0] == "sip_trunks.TrunkCreated.v1"
        assert "sip_trunks.TrunkRejected.v1" not in types  # the update never overtook its create
    # Per trunk, once repeats are dropped by `ce_id` (as the contract asks consumers to do),
    # versions strictly increase in topic order.
    versions: dict[str, list[int]] = defaultdict(list)
    first_seen: set[str] = set()
    for record in events.records:
        event_id = headers_of(record)["ce_id"]
        if event_id not in first_seen:
            first_seen.add(event_id)
            versions[record.key.decode()].append(json.loads(record.value)["version"])
    assert len(versions) == TRUNKS
    assert all(v == [1, 2] for v in versions.values())
