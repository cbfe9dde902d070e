"""Latency of the REST API as a user sees it: PATCH and GET over loopback on the dev stack.

Starts the real processes (worker, relay, gateway: `service/entrypoints/processes.py`, as
`make run` does) on the running broker with a fresh SQLite database, creates one trunk, warms up,
then sends BENCH_LATENCY_N (1000) sequential PATCHes that each change the name (so every one
goes through Kafka, the worker, LiveKit, the database, the relay and back), then as many GETs
(served from the read model). It does so twice in one run, with PROVIDER=livekit (the dev
livekit-server) and PROVIDER=none, so the difference is what keeping LiveKit in step costs a
command. Reports p50/p90/p99/max in milliseconds; also written to .dev/bench-latency.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from service.config import Settings
from service.entrypoints.processes import running_stack

ROOT = Path(__file__).resolve().parents[1]
BASE = "/api/v1/sip-trunks"


def summary(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"n": len(ms), "p50": q[49], "p90": q[89], "p99": q[98], "max": ms[-1]}


async def timed(api: httpx.AsyncClient, method: str, url: str, **kw: Any) -> float:
    started = time.perf_counter()
    response = await api.request(method, url, **kw)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{method} {url}: {response.status_code} {response.text}")
    return elapsed


async def measure(provider: str, n: int, bootstrap: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            running_stack(Path(tmp), bootstrap, LOG_LEVEL="WARNING", PROVIDER=provider) as stack,
            stack.client() as api,
        ):
            body = {
                "name": "Bench",
                "gateways": [{"ipOrDomain": "sip.example.com", "name": "g"}],
            }
            created = await api.post(BASE, json=body)
            url = f"{BASE}/{created.json()['id']}"
            for i in range(50):  # warm-up: connections, caches
                await timed(api, "PATCH", url, json={"name": f"warm {i}"})
            patches = [await timed(api, "PATCH", url, json={"name": f"n{i}"}) for i in range(n)]
            gets = [await timed(api, "GET", url) for _ in range(n)]
    return {"patch_ms": summary(patches), "get_ms": summary(gets)}


async def main() -> None:
    n = int(os.environ.get("BENCH_LATENCY_N", "1000"))
    bootstrap = Settings().kafka_bootstrap_servers  # validated, as the service reads it
    rows = {provider: await measure(provider, n, bootstrap) for provider in ("livekit", "none")}
    print(f"REST latency on the dev stack (loopback, {os.cpu_count()} cores, SQLite), ms:")
    print(f"{'':18}{'n':>6}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
    for provider, row in rows.items():
        for name in ("patch_ms", "get_ms"):
            s = row[name]
            label = f"{name[:-3].upper()} {provider}"
            print(
                f"{label:18}{s['n']:>6}{s['p50']:>9.1f}{s['p90']:>9.1f}{s['p99']:>9.1f}{s['max']:>9.1f}"
            )
    cost = rows["livekit"]["patch_ms"]["p50"] - rows["none"]["patch_ms"]["p50"]
    print(f"LiveKit's cost per command (PATCH p50, livekit - none): {cost:.1f} ms")
    result = {
        "rows": rows,
        "livekit_cost_p50_ms": cost,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "database": "sqlite",
    }
    out = ROOT / ".dev" / "bench-latency.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
