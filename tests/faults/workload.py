"""The commands of a fault run and what came back: a paced stream of creates, updates and
deletes over many trunks, published by an outside raw-aiokafka client with contract headers
(tests/integration/kafka_stack.Client), and the outcome events read back from the topic."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from tests.faults.checks import REJECTED, Kind, Outcome, Sent
from tests.integration.kafka_stack import CREATE, DELETE, UPDATE, Client, headers_of

_CE_TYPES: dict[Kind, str] = {"create": CREATE, "update": UPDATE, "delete": DELETE}
SOURCE = "/fault-suite"


@dataclass
class Workload:
    """Random but reproducible (seeded) commands. About `pool` trunks live at a time, so two
    commands of one trunk are far apart in the stream; every update changes the name (no no-op
    updates: each applied command makes a new version)."""

    seed: int
    tenant: str = "faults"
    pool: int = 150
    rng: random.Random = field(init=False)
    live: list[str] = field(default_factory=list)
    updates: dict[str, int] = field(default_factory=dict)
    n: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def next(self) -> tuple[Kind, str, dict[str, Any]]:
        self.n += 1
        rng = self.rng
        if len(self.live) < self.pool or rng.random() < 0.25:
            trunk_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            self.live.append(trunk_id)
            self.updates[trunk_id] = 0
            body: dict[str, Any] = {
                "trunkId": trunk_id,
                "tenantId": self.tenant,
                "name": f"trunk {self.n}",
                "gateways": [{"ipOrDomain": f"sip{self.n % 7}.example.com", "name": "main"}],
            }
            if rng.random() < 0.5:
                body["authentication"] = {"username": f"user{self.n}", "password": "s3cret-pass"}
            return "create", trunk_id, body
        index = rng.randrange(len(self.live))
        trunk_id = self.live[index]
        if self.updates[trunk_id] >= 1 and rng.random() < 0.3:
            self.live[index] = self.live[-1]
            self.live.pop()
            return "delete", trunk_id, {"trunkId": trunk_id, "tenantId": self.tenant}
        self.updates[trunk_id] += 1
        changes: dict[str, Any] = {"name": f"trunk {self.n}"}
        if rng.random() < 0.3:
            changes["gateways"] = [{"ipOrDomain": f"gw{self.n % 5}.example.org", "name": "alt"}]
        return (
            "update",
            trunk_id,
            {"trunkId": trunk_id, "tenantId": self.tenant, "changes": changes},
        )


class Driver:
    """Publishes the workload at `rate` commands/s, one at a time (acks=all, idempotent
    producer): a send that fails is retried with the same `ce_id` before the next command, so
    per-trunk order holds and a repeat is the service's to dedupe."""

    def __init__(self, client: Client, workload: Workload, partitions: int) -> None:
        self.client = client
        self.workload = workload
        self.partitions = list(range(partitions))
        self.sent: list[Sent] = []
        self.send_retries = 0

    def partition_of(self, trunk_id: str) -> int:
        # The producer's own partitioner on the record key (the trunk id).
        return int(DefaultPartitioner()(trunk_id.encode(), self.partitions, self.partitions))

    async def run(self, rate: float, minimum: int, done: asyncio.Event) -> None:
        """Until `done` is set and at least `minimum` were sent; unpaced once `done` is set."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        paced = 0
        while not done.is_set() or len(self.sent) < minimum:
            if not done.is_set():
                delay = start + paced / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                paced += 1
            await self._send_one()

    async def _send_one(self) -> None:
        kind, trunk_id, body = self.workload.next()
        command_id = str(uuid.uuid4())
        sent_at = time.time()
        while True:
            try:
                await self.client.send(_CE_TYPES[kind], body, command_id=command_id, source=SOURCE)
                break
            except KafkaError:  # a broker fault: the same command again (same ce_id)
                self.send_retries += 1
                await asyncio.sleep(0.5)
        self.sent.append(
            Sent(len(self.sent), command_id, trunk_id, kind, self.partition_of(trunk_id), sent_at)
        )


class Outcomes:
    """The events topic as `Outcome`s, parsed incrementally from the client's tap."""

    def __init__(self, client: Client) -> None:
        self._records = client.taps[client.topics.events].records
        self._parsed = 0
        self.all: list[Outcome] = []
        self.answered: set[str] = set()

    def update(self) -> list[Outcome]:
        new = []
        records = self._records
        while self._parsed < len(records):
            record = records[self._parsed]
            self._parsed += 1
            headers = headers_of(record)
            body = json.loads(record.value) if record.value is not None else {}
            outcome = Outcome(
                event_id=headers.get("ce_id", ""),
                command_id=headers.get("ce_causationid"),
                trunk_id=record.key.decode() if record.key is not None else "",
                ce_type=headers.get("ce_type", ""),
                version=body.get("version"),
                reason=body.get("reason") if headers.get("ce_type") == REJECTED else None,
                published_at=record.timestamp / 1000,
                partition=record.partition,
                offset=record.offset,
            )
            new.append(outcome)
            if outcome.command_id:
                self.answered.add(outcome.command_id)
        self.all.extend(new)
        return new
