"""What a list costs the gateway: `ReadModel.page` in-process, with many trunks of other tenants.

The model holds BENCH_READ_MODEL_N (100,000) trunks of one busy tenant, 100 trunks of a small
tenant spread evenly among them in creation order, and 3 system trunks (visible to every
tenant), fed as state-topic snapshots in creation order. Rows, each BENCH_READ_MODEL_REPEATS
(200) calls of what `GET /api/v1/sip-trunks?limit=100` asks the model for (101 records: one more
shows whether there is a next page), p50/p99 in ms:

- empty tenant: a tenant with no trunk of its own (sees the system trunks);
- 100-trunk tenant: the small tenant's first page;
- busy tenant, mid-list: the busy tenant's page after the cursor of its N/2-th trunk.

Also the time to feed every snapshot (a start-up's share) and the model's memory per trunk
(tracemalloc, with the snapshot bodies allocated before tracing: records with the encoded trunk
JSON they keep, parsed instants and indexes; not the parsed bodies they were made from).
Written to .dev/bench-read-model.json.
"""

from __future__ import annotations

import os
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sip_trunk_contracts import format_utc

from bench.results import percentiles, save
from service.entrypoints.gateway.read_model import ReadModel

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / ".dev" / "bench-read-model.json"
PAGE = 100
SMALL = 100
SYSTEM = 3
T0 = datetime(2024, 1, 15, 9, 30, tzinfo=UTC)


def snapshot(tenant: str | None, created: datetime) -> dict[str, Any]:
    stamp = format_utc(created)
    trunk = {
        "id": str(uuid.uuid4()),
        "name": "Main Office SIP Trunk",
        "gateways": [{"ipOrDomain": "sip-gateway.example.com", "port": 5060, "name": "Primary"}],
        "authentication": {"username": "office_sip_user", "password": "********"},
        "advanced": {},
        "isSystem": tenant is None,
        "providerId": "ST_xxxxxxxxxxxx",
        "createdAt": stamp,
        "updatedAt": stamp,
    }
    return {"trunk": trunk, "tenantId": tenant, "version": 1}


def snapshots(n: int) -> list[dict[str, Any]]:
    """In creation order: the system trunks first, the small tenant's every n/SMALL busy ones."""
    tick = timedelta(microseconds=1)
    bodies = [snapshot(None, T0 + i * tick) for i in range(SYSTEM)]
    spacing = max(n // SMALL, 1)
    for i in range(n):
        if i % spacing == 0 and i // spacing < SMALL:
            bodies.append(snapshot("small", T0 + len(bodies) * tick))
        bodies.append(snapshot("busy", T0 + len(bodies) * tick))
    return bodies


def fed(bodies: list[dict[str, Any]]) -> ReadModel:
    model = ReadModel()
    for body in bodies:
        model.snapshot(body)
    return model


def timed(call: Callable[[], object], repeats: int) -> dict[str, float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def main() -> None:
    n = int(os.environ.get("BENCH_READ_MODEL_N", "100000"))
    repeats = int(os.environ.get("BENCH_READ_MODEL_REPEATS", "200"))
    bodies = snapshots(n)

    started = time.perf_counter()
    model = fed(bodies)
    feed_s = time.perf_counter() - started

    busy = [b["trunk"] for b in bodies if b["tenantId"] == "busy"]
    middle = model.get(busy[len(busy) // 2]["id"])
    assert middle is not None
    pages: dict[str, Callable[[], list[Any]]] = {
        f"list, empty tenant, {n:,} other trunks": lambda: model.page(
            "empty", after=None, limit=PAGE + 1
        ),
        f"list, {SMALL}-trunk tenant, {n:,} other trunks": lambda: model.page(
            "small", after=None, limit=PAGE + 1
        ),
        f"list, {n:,}-trunk tenant, mid-list page": lambda: model.page(
            "busy", after=middle.order_key, limit=PAGE + 1
        ),
    }
    sizes = {name: len(page()) for name, page in pages.items()}
    assert list(sizes.values()) == [SYSTEM, PAGE + 1, PAGE + 1], sizes
    rows = {name: timed(page, repeats) for name, page in pages.items()}
    del model

    tracemalloc.start()
    model = fed(bodies)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per_trunk = held / len(model)

    print(f"ReadModel in-process ({len(os.sched_getaffinity(0))} cores), page of {PAGE} (+1), ms:")
    print(f"{'':46}{'n':>6}{'p50':>10}{'p99':>10}{'max':>10}")
    for name, s in rows.items():
        print(f"{name:46}{s['n']:>6}{s['p50']:>10.3f}{s['p99']:>10.3f}{s['max']:>10.3f}")
    print(f"feeding {len(bodies):,} snapshots: {feed_s:.2f} s")
    print(f"model memory: {per_trunk:,.0f} B a trunk (tracemalloc; its encoded JSON included)")
    save(
        RESULTS,
        {
            "trunks": len(bodies),
            "rows_ms": rows,
            "feed_s": round(feed_s, 3),
            "bytes_per_trunk": round(per_trunk),
        },
    )


if __name__ == "__main__":
    main()
