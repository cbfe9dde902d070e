"""The REST API under concurrent clients: requests per second and latency with PATCH and GET mixed.

Starts the real processes (worker, relay, gateway: `service/entrypoints/processes.py`, as
`make run` does) on the running broker with a fresh SQLite database and PROVIDER=none (override
with BENCH_CONCURRENCY_PROVIDER), creates one trunk per client, then runs
BENCH_CONCURRENCY_CLIENTS (20) clients at once, each on its own keep-alive connection and its own
trunk, each alternating a PATCH that renames its trunk (through Kafka, the worker, the database,
the relay and back) and a GET of it (from the read model): half the requests each. After a
warm-up of BENCH_CONCURRENCY_WARMUP_S (3) the clients run BENCH_CONCURRENCY_S (30) seconds.

The load client runs in this process on the same machine, so it competes for the cores with the
service; it speaks HTTP/1.1 itself (`Connection`: httpx cost about 1 ms of CPU a request here).
Its CPU is reported beside the gateway's, worker's, relay's and broker's (share of one core
during the window, from /proc, and that share over req/s: CPU µs per request), and so is the
whole machine's busy share (other work on the machine shows there). Reports req/s and PATCH and
GET p50/p90/p99/max in milliseconds; also written to .dev/bench-concurrency.json. The run's
topics are deleted at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.latency import BASE, Failed
from bench.results import percentiles, save
from bench.throughput import CpuMeter, broker_pid
from service.config import Settings
from service.entrypoints.processes import Stack, running_stack

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / ".dev" / "bench-concurrency.json"
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


class Connection:
    """One keep-alive HTTP/1.1 connection with a bearer token. Lean on purpose: httpx costs
    about 1 ms of CPU a request here, as much as the gateway spends answering it, and the client
    shares the machine's cores with the service."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: str
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._headers = headers  # those of every request, each line ending in CRLF

    @classmethod
    async def open(cls, stack: Stack) -> Connection:
        url = urlsplit(stack.base_url)
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        headers = (
            f"Host: {url.netloc}\r\nAuthorization: Bearer {stack.token()}\r\n"
            "Content-Type: application/json\r\n"
        )
        return cls(reader, writer, headers)

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()

    async def request(self, method: str, path: str, body: Any = None) -> bytes:
        """The response's body; raises Failed on a status other than 2xx."""
        content = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\n{self._headers}Content-Length: {len(content)}\r\n\r\n"
        self._writer.write(head.encode() + content)
        response = await self._reader.readuntil(b"\r\n\r\n")
        status = int(response[9:12])  # "HTTP/1.1 200 OK"
        length = _CONTENT_LENGTH.search(response)
        payload = await self._reader.readexactly(int(length.group(1)) if length else 0)
        if not 200 <= status < 300:
            raise Failed(f"{method} {path}: {status} {payload.decode(errors='replace')}")
        return payload

    async def timed(self, method: str, path: str, body: Any = None) -> float:
        started = time.perf_counter()
        await self.request(method, path, body)
        return time.perf_counter() - started


def busy_cores() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


async def client(
    stack: Stack, url: str, until: float, patches: list[float], gets: list[float]
) -> None:
    """PATCH, GET, PATCH, ... on one trunk, on a connection of its own, until `until`."""
    connection = await Connection.open(stack)
    try:
        n = 0
        while time.perf_counter() < until:
            patches.append(await connection.timed("PATCH", url, {"name": f"n{n}"}))
            gets.append(await connection.timed("GET", url))
            n += 1
    finally:
        await connection.close()


async def run(stack: Stack, urls: list[str], seconds: float) -> tuple[list[float], list[float]]:
    patches: list[float] = []
    gets: list[float] = []
    until = time.perf_counter() + seconds
    await asyncio.gather(*(client(stack, url, until, patches, gets) for url in urls))
    return patches, gets


async def measure_on(stack: Stack, clients: int, seconds: float, warmup_s: float) -> dict[str, Any]:
    setup = await Connection.open(stack)
    body = {"name": "Bench", "gateways": [{"ipOrDomain": "sip.example.com", "name": "g"}]}
    created = [await setup.request("POST", BASE, body) for _ in range(clients)]
    await setup.close()
    urls = [f"{BASE}/{json.loads(trunk)['id']}" for trunk in created]
    await run(stack, urls, warmup_s)
    pids = {role: p.pid for role, p in stack.processes.items()}
    cpu = CpuMeter({"client": os.getpid(), **pids, **broker_pid()})
    machine_before = busy_cores()
    cpu.start()
    started = time.perf_counter()
    patches, gets = await run(stack, urls, seconds)
    elapsed = time.perf_counter() - started
    shares = cpu.stop()
    busy, total = (a - b for a, b in zip(busy_cores(), machine_before, strict=True))
    rate = (len(patches) + len(gets)) / elapsed
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "requests": len(patches) + len(gets),
        "req_per_s": round(rate, 1),
        "patch_ms": percentiles(patches),
        "get_ms": percentiles(gets),
        "cpu": shares,  # share of one core, per process
        "cpu_us_per_request": {name: round(share / rate * 1e6) for name, share in shares.items()},
        "machine_busy_cores": round(busy / total * len(os.sched_getaffinity(0)), 2),
    }


async def measure(clients: int, seconds: float, warmup_s: float) -> dict[str, Any]:
    """On a stack of its own (its topics deleted at the end, as `running_stack` does)."""
    settings = Settings()  # validated, as the service reads it
    provider = os.environ.get("BENCH_CONCURRENCY_PROVIDER", "none")
    with tempfile.TemporaryDirectory() as tmp:
        async with running_stack(
            Path(tmp),
            settings.kafka_bootstrap_servers,
            prefix="bench-conc",
            LOG_LEVEL="WARNING",
            PROVIDER=provider,
        ) as stack:
            row = await measure_on(stack, clients, seconds, warmup_s)
    return {**row, "provider": provider}


def report(row: dict[str, Any]) -> None:
    print(
        f"REST under {row['clients']} concurrent clients (PATCH/GET alternating, own trunk each; "
        f"{os.cpu_count()} cores, SQLite, PROVIDER={row['provider']}, {row['seconds']:.0f} s):"
    )
    print(f"  {row['req_per_s']:,.0f} req/s ({row['requests']:,} requests)")
    print(f"  {'ms':8}{'n':>7}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}")
    for name in ("patch_ms", "get_ms"):
        s = row[name]
        print(
            f"  {name[:-3].upper():8}{s['n']:>7}{s['p50']:>8.1f}{s['p90']:>8.1f}"
            f"{s['p99']:>8.1f}{s['max']:>8.1f}"
        )
    shares = "  ".join(f"{name} {share:.2f}" for name, share in row["cpu"].items())
    print(f"  CPU (cores): {shares}; whole machine busy {row['machine_busy_cores']:.2f}")
    per_request = "  ".join(f"{name} {us:,.0f}" for name, us in row["cpu_us_per_request"].items())
    print(f"  CPU µs per request: {per_request}")


async def main() -> None:
    clients = int(os.environ.get("BENCH_CONCURRENCY_CLIENTS", "20"))
    seconds = float(os.environ.get("BENCH_CONCURRENCY_S", "30"))
    warmup_s = float(os.environ.get("BENCH_CONCURRENCY_WARMUP_S", "3"))
    row = await measure(clients, seconds, warmup_s)
    report(row)
    save(RESULTS, {**row, "database": "sqlite"})


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Failed as exc:
        raise SystemExit(f"bench.concurrency: {exc}") from None
