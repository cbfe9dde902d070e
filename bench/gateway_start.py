"""A gateway's start-up on a full state topic: time to ready, memory, and a list while loaded.

Fills a fresh deployment's state topic with BENCH_START_N (100,000) trunk snapshots (those of
bench/read_model.py: one busy tenant, a 100-trunk tenant among them, 3 system trunks), then
starts `sip-trunks gateway` as its own process (as `make run` does) and reports:

- ready_s: from the process start to the first `GET /readyz` that answers 200 (the read model has
  read the whole state topic; imports and the Kafka connection included);
- rss_mb: the process's resident memory (VmRSS) then, and its high-water mark (VmHWM);
- list_ms: `GET /api/v1/sip-trunks?limit=100` of a tenant with no trunk, p50/p99 over 200 calls
  over HTTP, now that the model holds every trunk.

Written to .dev/bench-gateway-start.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sip_trunk_contracts import Topics

from bench import read_model
from bench.results import percentiles, save
from bench.throughput import Message, publish, rss_mb
from service.adapters.kafka_topics import delete_topics
from service.config import Settings
from service.entrypoints.gateway.tokens import READ_SCOPE, mint_token
from service.entrypoints.processes import free_port, isolated_env, start_process, stop_process

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / ".dev" / "bench-gateway-start.json"
LIST_CALLS = 200


async def ready_after(url: str, within_s: float = 120) -> float:
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=2) as client:
        while time.perf_counter() - started < within_s:
            try:
                if (await client.get(url)).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"the gateway was not ready within {within_s:.0f} s")


async def measure(n: int) -> dict[str, Any]:
    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp:
        port, secret = free_port(), "bench-gateway-start-" + "x" * 32
        env = isolated_env(
            Path(tmp),
            settings.kafka_bootstrap_servers,
            "bench-start",
            GATEWAY_PORT=str(port),
            AUTH_JWT_SECRET=secret,
            LOG_LEVEL="WARNING",
        )
        prefix = env["KAFKA_TOPIC_PREFIX"]
        log = Path(tmp) / "gateway.log"
        try:
            if await (await start_process("topics", env, log)).wait() != 0:
                raise RuntimeError(f"`sip-trunks topics` failed:\n{log.read_text()}")
            bodies = read_model.snapshots(n)
            messages: list[Message] = [
                (b["trunk"]["id"].encode(), json.dumps(b).encode(), []) for b in bodies
            ]
            await publish(settings, Topics.with_prefix(prefix).state, messages)
            gateway = await start_process("gateway", env, log)
            try:
                base = f"http://127.0.0.1:{port}"
                ready_s = await ready_after(f"{base}/readyz")
                memory = rss_mb(gateway.pid)
                token = mint_token(secret, tenant="nobody", scopes=[READ_SCOPE], ttl_s=600)
                headers = {"Authorization": f"Bearer {token}"}
                samples = []
                async with httpx.AsyncClient(base_url=base, headers=headers) as client:
                    for _ in range(LIST_CALLS):
                        t0 = time.perf_counter()
                        response = await client.get("/api/v1/sip-trunks?limit=100")
                        samples.append(time.perf_counter() - t0)
                        response.raise_for_status()
            finally:
                await stop_process(gateway)
        finally:
            await delete_topics(settings, prefix)
    return {
        "trunks": len(bodies),
        "ready_s": round(ready_s, 2),
        "rss_mb": round(memory["VmRSS"], 1),
        "rss_peak_mb": round(memory["VmHWM"], 1),
        "list_ms": percentiles(samples),
    }


def main() -> None:
    n = int(os.environ.get("BENCH_START_N", "100000"))
    result = asyncio.run(measure(n))
    print(
        f"gateway start-up with {result['trunks']:,} trunks on the state topic: ready in "
        f"{result['ready_s']:.2f} s, RSS {result['rss_mb']:.0f} MB (peak "
        f"{result['rss_peak_mb']:.0f} MB); empty tenant's list over HTTP p50 "
        f"{result['list_ms']['p50']:.2f} / p99 {result['list_ms']['p99']:.2f} ms"
    )
    save(RESULTS, result)


if __name__ == "__main__":
    main()
