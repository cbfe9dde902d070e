"""The one table of `make bench`, from what its steps wrote, and .dev/bench-latest.json.

Reads the steps' files (bench.throughput, bench.latency, bench.read_model, bench.gateway_start,
bench.concurrency, bench.scale); `make bench` deletes
them first, so a step that did not run shows as missing, never as an older run's figure. Only
what the steps measured is shown; the derived figure is CPU per command: a process's share of a
core during the throughput window over the row's msgs/s.

BENCH_RECORD=1 also appends the run's headline figures as one row to docs/performance.md.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import concurrency, gateway_start, latency, read_model, scale, throughput
from bench.results import run_facts, save

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / ".dev" / "bench-latest.json"
HISTORY = ROOT / "docs" / "performance.md"
STEPS = {
    "throughput": throughput.RESULTS,
    "latency": latency.RESULTS,
    "read_model": read_model.RESULTS,
    "gateway_start": gateway_start.RESULTS,
    "concurrency": concurrency.RESULTS,
    "scale": scale.RESULTS,
}
HEADERS = ("what", "figure", "floor", "ratio", "CPU µs per command")
NONE = "—"

Step = dict[str, Any]
Line = tuple[str, str, str, str, str]


def load() -> dict[str, Step | None]:
    return {
        name: json.loads(path.read_text()) if path.exists() else None
        for name, path in STEPS.items()
    }


def cpu_per_command(row: Step) -> str:
    rate = row["msgs_per_s"]
    if not rate:
        return NONE
    return ", ".join(f"{name} {share / rate * 1e6:,.0f}" for name, share in row["cpu"].items())


def throughput_lines(step: Step) -> list[Line]:
    floor = step["rows"][0]
    return [
        (
            f"{row['scenario']}{' (floor)' if row is floor else ''}, N={step['n']:,}"
            + ("" if row["complete"] else " INCOMPLETE"),
            f"{row['msgs_per_s']:,.0f} msgs/s",
            NONE if row is floor else f"{floor['msgs_per_s']:,.0f} msgs/s",
            NONE if row is floor else f"{row['ratio']:.3f}",
            cpu_per_command(row),
        )
        for row in step["rows"]
    ]


def p50_p99(sample: Step, digits: int) -> str:
    return f"p50 {sample['p50']:.{digits}f} / p99 {sample['p99']:.{digits}f} ms"


def latency_lines(step: Step) -> list[Line]:
    floor = step["floor_ms"]
    lines: list[Line] = [
        (f"raw Kafka request-reply (floor), n={floor['n']:,}", p50_p99(floor, 1), NONE, NONE, NONE)
    ]
    for provider, row in step["rows"].items():
        for name, sample in row.items():
            patch = name == "patch_ms"
            lines.append(
                (
                    f"REST {name[:-3].upper()}, PROVIDER={provider}, n={sample['n']:,}",
                    p50_p99(sample, 1),
                    p50_p99(floor, 1) if patch else NONE,
                    f"{sample['p50'] / floor['p50']:.2f} / {sample['p99'] / floor['p99']:.2f}"
                    if patch
                    else NONE,
                    NONE,
                )
            )
    return lines


def read_model_lines(step: Step) -> list[Line]:
    lines: list[Line] = [
        (f"read model {name}", p50_p99(sample, 4), NONE, NONE, NONE)
        for name, sample in step["rows_ms"].items()
    ]
    trunks = f"{step['trunks']:,} trunks"
    lines.append((f"read model feed, {trunks}", f"{step['feed_s']:.2f} s", NONE, NONE, NONE))
    memory = f"{step['bytes_per_trunk']:,} B a trunk"
    lines.append((f"read model memory, {trunks} (tracemalloc)", memory, NONE, NONE, NONE))
    return lines


def gateway_start_lines(step: Step) -> list[Line]:
    trunks = f"{step['trunks']:,} trunks on the state topic"
    memory = f"{step['rss_mb']:,.0f} MB (peak {step['rss_peak_mb']:,.0f} MB)"
    return [
        (f"gateway start to /readyz, {trunks}", f"{step['ready_s']:.2f} s", NONE, NONE, NONE),
        (f"gateway RSS when ready, {trunks}", memory, NONE, NONE, NONE),
        (f"REST list, empty tenant, {trunks}", p50_p99(step["list_ms"], 2), NONE, NONE, NONE),
    ]


def concurrency_lines(step: Step) -> list[Line]:
    clients = f"{step['clients']} clients, PROVIDER={step['provider']}"
    cpu = ", ".join(f"{name} {share:.2f}" for name, share in step["cpu"].items())
    return [
        (f"REST under {clients}", f"{step['req_per_s']:,.0f} req/s", NONE, NONE, NONE),
        (f"  PATCH, n={step['patch_ms']['n']:,}", p50_p99(step["patch_ms"], 1), NONE, NONE, NONE),
        (f"  GET, n={step['get_ms']['n']:,}", p50_p99(step["get_ms"], 1), NONE, NONE, NONE),
        ("  CPU, cores busy", cpu, NONE, NONE, NONE),
    ]


def scale_lines(step: Step) -> list[Line]:
    creates = [row for row in step["rows"] if row["phase"] == "create"]
    first, last = creates[0], creates[-1]
    growth = ", ".join(
        f"{role} {mb:+,.0f} MB" for role, mb in step["rss_growth_during_updates_mb"].items()
    )
    final = ", ".join(f"{role} {mb:,.0f}" for role, mb in step["rows"][-1]["rss_mb"].items())
    return [
        (
            f"worker CPU per create, {first['stored_before']:,} -> {last['stored_before']:,}"
            " trunks stored",
            f"{first['worker_cpu_us']:,.0f} -> {last['worker_cpu_us']:,.0f} µs",
            NONE,
            f"x{step['cost_growth']:.2f}",
            NONE,
        ),
        (f"RSS change over {step['n']:,} updates", growth, NONE, NONE, NONE),
        (f"RSS MB after {2 * step['n']:,} commands", final, NONE, NONE, NONE),
    ]


LINES = {
    "throughput": throughput_lines,
    "latency": latency_lines,
    "read_model": read_model_lines,
    "gateway_start": gateway_start_lines,
    "concurrency": concurrency_lines,
    "scale": scale_lines,
}


def table(steps: dict[str, Step | None]) -> list[Line]:
    lines: list[Line] = []
    for name, step in steps.items():
        if step is None:
            missing = STEPS[name].relative_to(ROOT)
            lines.append((f"{name}: not run ({missing} missing)", NONE, NONE, NONE, NONE))
        else:
            lines += LINES[name](step)
    return lines


def render(lines: Sequence[Sequence[str]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADERS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def machine(steps: dict[str, Step | None]) -> dict[str, Any]:
    """Cores, Python and commit of this run, with the CPU, broker and databases bench.throughput
    names."""
    measured = steps["throughput"]
    return (measured["machine"] if measured else {}) | run_facts()


def history_row(latest: dict[str, Any]) -> str:
    """The headline figures, in the column order of docs/performance.md."""
    steps, facts = latest["steps"], latest["machine"]
    date = latest["finished_at"][:16].replace("T", " ")
    figures: list[str] = [date, facts["code"], str(facts["cores"])]
    if tp := steps["throughput"]:
        rows = {row["scenario"]: row for row in tp["rows"]}
        sqlite, pg = rows.get("service sqlite"), rows.get("service postgresql")
        pg2 = rows.get("service postgresql, 2 workers")
        figures += [f"{tp['n']:,}", f"{rows['raw pipe']['msgs_per_s']:,.0f}"]
        for row in (sqlite, pg):
            figures.append(f"{row['msgs_per_s']:,.0f} ({row['ratio']:.3f})" if row else NONE)
        if pg and pg2:
            scale = pg2["msgs_per_s"] / pg["msgs_per_s"]
            figures[-1] += f"; 2 workers {pg2['msgs_per_s']:,.0f} (x{scale:.2f})"
        figures.append(cpu_per_command(sqlite) if sqlite else NONE)
    else:
        figures += [NONE] * 5
    if lat := steps["latency"]:
        for provider in ("livekit", "none"):
            patch = lat["rows"][provider]["patch_ms"]
            figures.append(f"{patch['p50']:.1f} / {patch['p99']:.1f}")
        figures.append(f"{lat['rows']['none']['get_ms']['p50']:.1f}")
    else:
        figures += [NONE] * 3
    if rm := steps["read_model"]:
        empty = next(sample for name, sample in rm["rows_ms"].items() if "empty" in name)
        figures += [f"{empty['p50']:.4f}", f"{rm['bytes_per_trunk']:,}"]
    else:
        figures += [NONE] * 2
    if lat:
        floor = lat["floor_ms"]
        figures.append(f"{floor['p50']:.1f} / {floor['p99']:.1f}")
    else:
        figures.append(NONE)
    start = steps["gateway_start"]
    figures.append(f"{start['ready_s']:.1f} / {start['rss_mb']:,.0f}" if start else NONE)
    if big := steps["scale"]:
        figures.append(f"x{big['cost_growth']:.2f}")
    else:
        figures.append(NONE)
    if load := steps["concurrency"]:
        p99s = f"{load['patch_ms']['p99']:.0f} / {load['get_ms']['p99']:.0f}"
        figures.append(f"{load['req_per_s']:,.0f} ({p99s})")
    else:
        figures.append(NONE)
    return "| " + " | ".join(figures) + " |\n"


def main() -> int:
    steps = load()
    latest: dict[str, Any] = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(steps),
        "steps": steps,
    }
    lines = table(steps)
    latest["table"] = [dict(zip(HEADERS, line, strict=True)) for line in lines]
    facts = latest["machine"]
    print()
    print(
        f"make bench, {latest['finished_at']}, {facts['code']}: {facts['cores']} cores"
        f" ({facts.get('cpu', '?')}), Python {facts['python']}, {facts.get('kafka', 'Kafka ?')},"
        f" SQLite {facts.get('sqlite', '?')}, PostgreSQL: {facts.get('postgresql', '?')}"
    )
    print(render([HEADERS, *lines]))
    save(RESULTS, latest)
    print(f"results: {RESULTS.relative_to(ROOT)}")
    if os.environ.get("BENCH_RECORD") == "1":
        with HISTORY.open("a") as history:
            history.write(history_row(latest))
        print(f"recorded: one row appended to {HISTORY.relative_to(ROOT)}")
    return 0 if all(steps.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
