"""Cost and memory at scale: does a command cost more when 100,000 trunks are stored, does a
process grow with the commands it has handled?

Starts the real processes (worker, relay, gateway: `service/entrypoints/processes.py`) on the
running broker with a fresh SQLite database and PROVIDER=none, then sends BENCH_SCALE_N
(100,000) commands in steps of BENCH_SCALE_STEP (10,000), each step published at once and
waited for until every command of it has its outcome event:

1. creates: N new trunks, so a step starts with 0, 10,000, ... trunks already stored;
2. updates: each of those N trunks renamed once, so the stored count stays at N.

Per step: msgs/s (from the step's publish to its last outcome), the worker's CPU µs per command
(its CPU time over the step's commands), and the resident memory (VmRSS) of the worker, the
relay and the gateway at the end of the step. Flat cost: the last create step against the first;
flat memory: the update steps, where the stored data does not grow (the gateway's read model
holds every trunk, so it grows with creates by design). Written to .dev/bench-scale.json.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from nacl.public import PrivateKey
from sip_trunk_contracts import CommandEnvelope, Topics

from bench.results import save
from bench.throughput import (
    Message,
    cpu_seconds,
    create_commands,
    publish,
    rss_mb,
    tenant_of,
)
from service.adapters import kafka_clients
from service.config import Settings
from service.entrypoints.processes import Stack, running_stack

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / ".dev" / "bench-scale.json"
STEP_TIMEOUT_S = 120


def update_commands(creates: Sequence[Message]) -> list[Message]:
    """A rename of each trunk that `creates` made."""
    commands = []
    for i, (key, _, _) in enumerate(creates):
        command = CommandEnvelope.update(
            {"name": f"Renamed trunk {i}"},
            trunk_id=key.decode(),
            tenant_id=tenant_of(i),
            source="/bench",
        )
        commands.append((command.key_bytes(), command.value(), command.kafka_headers()))
    return commands


class Answers:
    """Counts the commands answered on the events topic (once each, by ce_causationid)."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self._consumer = kafka_clients.consumer(settings, enable_auto_commit=False)
        self._topic = topic
        self._seen: set[bytes] = set()

    async def start(self) -> None:
        await self._consumer.start()
        partitions = [TopicPartition(self._topic, p) for p in range(Settings().kafka_partitions)]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def until(self, count: int) -> float:
        """Waits until `count` commands are answered; the time the last answer arrived."""
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while len(self._seen) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(self._seen)} of {count} answered in {STEP_TIMEOUT_S} s")
            batches = await self._consumer.getmany(timeout_ms=200, max_records=10_000)
            for records in batches.values():
                self._seen.update(dict(r.headers)["ce_causationid"] for r in records)
        return time.perf_counter()


async def run_steps(
    stack: Stack, answers: Answers, phase: str, commands: list[Message], step: int, done: int
) -> list[dict[str, Any]]:
    settings = Settings()
    topic = Topics.with_prefix(stack.env["KAFKA_TOPIC_PREFIX"]).commands
    pids = {role: process.pid for role, process in stack.processes.items()}
    rows = []
    for start in range(0, len(commands), step):
        chunk = commands[start : start + step]
        cpu_before = cpu_seconds(pids["worker"]) or 0.0
        began = time.perf_counter()
        await publish(settings, topic, chunk)
        ended = await answers.until(done + start + len(chunk))
        cpu = (cpu_seconds(pids["worker"]) or 0.0) - cpu_before
        row = {
            "phase": phase,
            "stored_before": start if phase == "create" else len(commands),
            "commands": len(chunk),
            "msgs_per_s": round(len(chunk) / (ended - began), 1),
            "worker_cpu_us": round(cpu / len(chunk) * 1e6, 1),
            "rss_mb": {role: round(rss_mb(pid)["VmRSS"], 1) for role, pid in pids.items()},
        }
        print_row(row)
        rows.append(row)
    return rows


def print_row(row: dict[str, Any]) -> None:
    rss = "  ".join(f"{role} {mb:>5.0f}" for role, mb in row["rss_mb"].items())
    print(
        f"{row['phase']:8}{row['stored_before']:>10,}{row['commands']:>9,}"
        f"{row['msgs_per_s']:>10,.0f}{row['worker_cpu_us']:>10,.0f}   {rss}",
        flush=True,
    )


async def measure(n: int, step: int) -> dict[str, Any]:
    settings = Settings()
    seal_key = PrivateKey.generate()
    creates = create_commands(n, bytes(seal_key.public_key))
    updates = update_commands(creates)
    with tempfile.TemporaryDirectory() as tmp:
        async with running_stack(
            Path(tmp),
            settings.kafka_bootstrap_servers,
            prefix="bench-scale",
            PROVIDER="none",
            LOG_LEVEL="WARNING",
            PASSWORD_SEAL_PRIVATE_KEY=base64.b64encode(bytes(seal_key)).decode(),
        ) as stack:
            events = Topics.with_prefix(stack.env["KAFKA_TOPIC_PREFIX"]).events
            answers = Answers(settings, events)
            await answers.start()
            try:
                print(
                    f"{'phase':8}{'stored':>10}{'commands':>9}{'msgs/s':>10}{'µs/cmd':>10}   RSS MB"
                )
                rows = await run_steps(stack, answers, "create", creates, step, 0)
                rows += await run_steps(stack, answers, "update", updates, step, n)
            finally:
                await answers.stop()
    first, last = rows[0], rows[len(rows) // 2 - 1]
    updates_rss = [row["rss_mb"] for row in rows if row["phase"] == "update"]
    return {
        "n": n,
        "step": step,
        "rows": rows,
        "cost_growth": round(last["worker_cpu_us"] / first["worker_cpu_us"], 3),
        "rss_growth_during_updates_mb": {
            role: round(updates_rss[-1][role] - updates_rss[0][role], 1) for role in updates_rss[0]
        },
    }


def main() -> int:
    n = int(os.environ.get("BENCH_SCALE_N", "100000"))
    step = int(os.environ.get("BENCH_SCALE_STEP", "10000"))
    result = asyncio.run(measure(n, step))
    growth = ", ".join(
        f"{r} {mb:+.0f} MB" for r, mb in result["rss_growth_during_updates_mb"].items()
    )
    print(
        f"worker CPU per create with {n - step:,} trunks stored vs none: "
        f"x{result['cost_growth']:.2f}; RSS change over the update steps: {growth}"
    )
    save(RESULTS, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
