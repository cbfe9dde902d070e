"""Hand-over after a crash: a worker restarted after SIGKILL consumes again at once.

Static group membership (KIP-345): the new process joins under the instance id of the one it
replaces, so the broker hands it the partitions without waiting for the dead member's session
to time out (10 s). Measured from the moment the restarted worker asks to join the group (its
Python imports alone take over a second on a loaded machine, and are no part of the hand-over).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from datetime import datetime
from pathlib import Path

from service.adapters.kafka_topics import ensure_topics
from service.config import Settings
from service.entrypoints.processes import isolated_env, start_process, stop_process
from tests.conftest import KAFKA_BOOTSTRAP
from tests.integration.kafka_stack import CREATE, Client

SESSION_TIMEOUT_S = 10.0  # the consumer's default: what a restart waited for before


def create_body() -> dict[str, object]:
    return {
        "trunkId": str(uuid.uuid4()),
        "tenantId": "acme",
        "name": "T",
        "gateways": [{"ipOrDomain": "sip.example.com", "name": "gw"}],
    }


def joining_at(log: Path) -> float:
    """When the worker writing `log` set out to join its group (epoch seconds)."""
    for line in log.read_text().splitlines():
        entry = json.loads(line) if line.startswith("{") else {}
        if entry.get("event") == "worker.joining_group":
            return datetime.fromisoformat(entry["timestamp"]).timestamp()
    raise AssertionError(f"no worker.joining_group in {log}")


async def test_a_worker_restarted_after_sigkill_consumes_within_2_s(tmp_path: Path) -> None:
    env = isolated_env(tmp_path, KAFKA_BOOTSTRAP, "restart")
    settings = Settings(
        kafka_bootstrap_servers=KAFKA_BOOTSTRAP, kafka_topic_prefix=env["KAFKA_TOPIC_PREFIX"]
    )
    await ensure_topics(settings)
    relay = await start_process("relay", env, tmp_path / "relay.log")
    worker = await start_process("worker", env, tmp_path / "worker-1.log")
    client = Client(settings)
    await client.start()
    try:
        await client.request(CREATE, create_body())  # the worker is in the group and consuming
        worker.send_signal(signal.SIGKILL)
        await worker.wait()

        restarted_at = time.time()
        worker = await start_process("worker", env, tmp_path / "worker-2.log")
        command = await client.send(CREATE, create_body())
        await asyncio.wait_for(client.outcome(command), SESSION_TIMEOUT_S + 10)
        answered_at = time.time()
    finally:
        await asyncio.gather(stop_process(worker), stop_process(relay))
        await client.stop()
    handed_over_in = answered_at - joining_at(tmp_path / "worker-2.log")
    print(
        f"process start to outcome {answered_at - restarted_at:.2f} s, "
        f"joining the group to outcome {handed_over_in:.2f} s"
    )
    assert handed_over_in < 2.0
