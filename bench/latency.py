"""Latency of the REST API as a user sees it: PATCH and GET over loopback on the dev stack.

Starts the real processes (worker, relay, gateway: `service/entrypoints/processes.py`, as
`make run` does) on the running broker with a fresh SQLite database, creates one trunk, warms up,
then sends BENCH_LATENCY_N (1000) sequential PATCHes that each change the name (so every one
goes through Kafka, the worker, LiveKit, the database, the relay and back), then as many GETs
(served from the read model). It does so twice in one run, with PROVIDER=livekit (the dev
livekit-server) and PROVIDER=none, so the difference is what keeping LiveKit in step costs a
command. Before them, the floor: a raw Kafka request-reply round trip on the same broker with
messages of the same sizes (`bench/request_reply.py`), so each PATCH row is also given as a ratio
to it. Reports p50/p90/p99/max in milliseconds; also written to .dev/bench-latency.json.
An unreachable LiveKit or a refused request ends the step with one line saying which.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import request_reply
from bench.results import percentiles, save
from service.config import Settings
from service.entrypoints.processes import running_stack

ROOT = Path(__file__).resolve().parents[1]
BASE = "/api/v1/sip-trunks"
RESULTS = ROOT / ".dev" / "bench-latency.json"


class Failed(Exception):
    """A service this step needs is unreachable or refused a request."""


def checked(response: httpx.Response, expected: int) -> httpx.Response:
    if response.status_code != expected:
        request = response.request
        raise Failed(f"{request.method} {request.url.path}: {response.status_code} {response.text}")
    return response


async def timed(api: httpx.AsyncClient, method: str, url: str, **kw: Any) -> float:
    started = time.perf_counter()
    response = await api.request(method, url, **kw)
    elapsed = time.perf_counter() - started
    checked(response, 200)
    return elapsed


async def require_livekit(url: str) -> None:
    try:
        async with httpx.AsyncClient(timeout=3) as client:
            await client.get(url)
    except httpx.HTTPError as exc:
        raise Failed(
            f"LiveKit is unreachable at {url} ({type(exc).__name__}): "
            "start it with dev/livekit.sh start (make bench does)"
        ) from exc


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
            created = checked(await api.post(BASE, json=body), 201)
            url = f"{BASE}/{created.json()['id']}"
            for i in range(50):  # warm-up: connections, caches
                await timed(api, "PATCH", url, json={"name": f"warm {i}"})
            patches = [await timed(api, "PATCH", url, json={"name": f"n{i}"}) for i in range(n)]
            gets = [await timed(api, "GET", url) for _ in range(n)]
    return {"patch_ms": percentiles(patches), "get_ms": percentiles(gets)}


def print_row(label: str, s: dict[str, float], ratio: str = "") -> None:
    print(
        f"{label:22}{s['n']:>6}{s['p50']:>9.1f}{s['p90']:>9.1f}{s['p99']:>9.1f}{s['max']:>9.1f}"
        f"  {ratio}"
    )


async def main() -> None:
    n = int(os.environ.get("BENCH_LATENCY_N", "1000"))
    settings = Settings()  # validated, as the service reads it
    await require_livekit(settings.livekit_url)
    bootstrap = settings.kafka_bootstrap_servers
    floor = percentiles(await request_reply.measure(settings, n))
    rows = {provider: await measure(provider, n, bootstrap) for provider in ("livekit", "none")}
    print(f"REST latency on the dev stack (loopback, {os.cpu_count()} cores, SQLite), ms:")
    print(f"{'':22}{'n':>6}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}  ratio p50 / p99")
    print_row("raw Kafka round trip", floor)
    for provider, row in rows.items():
        patch = row["patch_ms"]
        print_row(f"PATCH {provider}", patch, f"{patch['p50'] / floor['p50']:.2f} / "
                  f"{patch['p99'] / floor['p99']:.2f}")  # fmt: skip
        print_row(f"GET {provider}", row["get_ms"])
    cost = rows["livekit"]["patch_ms"]["p50"] - rows["none"]["patch_ms"]["p50"]
    print(f"LiveKit's cost per command (PATCH p50, livekit - none): {cost:.1f} ms")
    result = {
        "floor_ms": floor,
        "rows": rows,
        "livekit_cost_p50_ms": cost,
        "database": "sqlite",
    }
    save(RESULTS, result)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Failed as exc:
        sys.exit(f"bench.latency: {exc}")
