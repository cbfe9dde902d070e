"""`python -m tests.faults` (`make faults`): the fault suite against real components.

Starts the 3-node Kafka cluster (dev/kafka-cluster.sh) and a private PostgreSQL cluster
(dev/postgres.sh on .dev/faults/, port FAULTS_POSTGRES_PORT=15442); the dev LiveKit server must
be up (`make faults` starts it). Runs the scenarios, prints one table, exits 1 on any violation.

Environment: FAULTS_COMMANDS (minimum commands over all scenarios, 10000), FAULTS_SCENARIOS
(comma list, default all), FAULTS_SEED (7), FAULTS_KEEP=1 (leave the cluster and PostgreSQL
running). Logs: .dev/faults/runs/<run>/.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
import time
import warnings

from livekit import api

from service.logs import configure_logging
from tests.conftest import LIVEKIT_API_KEY, LIVEKIT_API_SECRET, LIVEKIT_URL
from tests.faults.infra import STATE, KafkaCluster, PrivatePostgres
from tests.faults.run import (
    Scenario,
    ScenarioResult,
    broker_down,
    livekit_down,
    postgres_down,
    relay_kill,
    run_scenario,
    say,
    worker_kill,
)

RUNS = STATE / "runs"
LATEST = STATE / "latest.json"


def scenarios(total: int) -> list[Scenario]:
    cluster_share = int(total * 0.6)
    return [
        Scenario(
            "cluster",
            database="sqlite",
            processes=["worker-1", "relay-1"],
            faults=[
                worker_kill("worker-1"),
                broker_down(1, clean=True, down_s=5),
                worker_kill("worker-1"),
                relay_kill("relay-1"),
                broker_down(2, clean=False, down_s=5),
                worker_kill("worker-1"),
                broker_down(3, clean=True, down_s=5),
                worker_kill("worker-1"),
                relay_kill("relay-1"),
                worker_kill("worker-1"),
            ],
            minimum=cluster_share,
            rate=80,
        ),
        Scenario(
            "postgres",
            database="postgresql",
            processes=["worker-1", "worker-2", "relay-1", "relay-2"],
            faults=[
                worker_kill("worker-1"),
                relay_kill(),
                postgres_down(10),
                worker_kill("worker-2"),
                livekit_down("refuse", 5, slack_s=10),
                relay_kill(),
                livekit_down("blackhole", 5, slack_s=10),
                worker_kill("worker-1"),
                postgres_down(8, restart=("worker-2", "relay-1")),
            ],
            minimum=total - cluster_share,
            rate=50,
            provider="livekit",
        ),
    ]


LEGEND = """\
at s: fault injected, seconds into the stream; down s: until the component was back (restarted,
started, forwarding); recov s: from the fault until every commands partition had answered a
command sent after it. TOTAL rows: commands sent; lost (no outcome); dup (more than one distinct
outcome event); reord (trunks whose outcomes are out of command order); vers (trunks whose
versions are not 1..n); unexp (an outcome the trunk's commands do not imply, a rejection outside
its fault, an event for no command, a DLT record); rejected (valid rejections: provider_unavailable
during a LiveKit fault, not_found after one; on a fault row: those published until the next
fault); re-sends (repeats of an event ce_id, allowed); state≠db (trunks whose latest state
record differs from the database); unsent (outbox rows not published, or parked); dead (service
processes, Kafka nodes or PostgreSQL not alive at the end)."""


def table(results: list[ScenarioResult]) -> str:
    head = (
        f"{'scenario':<9} {'fault':<44} {'at s':>6} {'down s':>6} {'recov s':>7} "
        f"{'commands':>8} {'lost':>4} {'dup':>3} {'reord':>5} {'vers':>4} {'unexp':>5} "
        f"{'rejected':>8} {'re-sends':>8} {'state≠db':>8} {'unsent':>6} {'dead':>4}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        for i, f in enumerate(r.faults, 1):
            recovery = f"{f.recovery_s:.1f}" if f.recovery_s is not None else "NEVER"
            lines.append(
                f"{r.scenario.name:<9} {f'{i}. {f.name}':<44.44} {f.at_s:>6.1f} "
                f"{f.down_s:>6.1f} {recovery:>7} {'':>8} {'':>4} {'':>3} {'':>5} {'':>4} "
                f"{'':>5} {f.rejected or '':>8}"
            )
        v = r.verdict
        total = f"TOTAL {len(r.faults)} faults, {r.restarts} restarts, {r.seconds:.0f}s"
        unexpected = len(v.unexpected) + len(v.stray) + r.dead_lettered
        lines.append(
            f"{r.scenario.name:<9} {total:<44} {'':>6} {'':>6} {'':>7} "
            f"{v.commands:>8} {len(v.lost):>4} {len(v.duplicated):>3} {len(v.reordered):>5} "
            f"{len(v.version_errors):>4} {unexpected:>5} "
            f"{sum(v.rejected.values()):>8} {v.resends:>8} {len(r.state_differences):>8} "
            f"{r.unsent_outbox:>6} {len(r.dead):>4}"
        )
        if v.rejected:
            reasons = ", ".join(f"{n} {why}" for why, n in v.rejected.most_common())
            lines.append(f"{'':<9} rejected: {reasons}")
        lines.append("")
    return "\n".join([*(line.rstrip() for line in lines), LEGEND])


def details(result: ScenarioResult) -> list[str]:
    """The first few examples of each violation, to start the diagnosis from."""
    v = result.verdict
    found = {
        "lost": v.lost,
        "duplicated": v.duplicated,
        "reordered trunks": v.reordered,
        "version errors (trunks)": v.version_errors,
        "unexpected outcomes": v.unexpected,
        "stray events": v.stray,
        "state topic != database": result.state_differences,
        "not alive": result.dead,
        "run errors": result.errors,
    }
    lines = [f"  {what}: {len(xs)}, e.g. {xs[:3]}" for what, xs in found.items() if xs]
    if result.dead_lettered:
        lines.append(f"  records on the DLT: {result.dead_lettered}")
    if result.unsent_outbox != 0:
        lines.append(f"  unsent outbox rows: {result.unsent_outbox}")
    lines += [
        f"  fault never recovered: {f.name} ({f.error})"
        for f in result.faults
        if f.recovery_s is None
    ]
    return lines


async def livekit_answers() -> None:
    client = api.LiveKitAPI(LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET)
    try:
        await asyncio.wait_for(client.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest()), 5)
    except Exception as exc:
        raise SystemExit(
            f"LiveKit not reachable at {LIVEKIT_URL} ({exc!r}): dev/livekit.sh start"
        ) from None
    finally:
        await client.aclose()


async def main() -> int:
    began = time.monotonic()
    total = int(os.environ.get("FAULTS_COMMANDS", "10000"))
    wanted = [s for s in os.environ.get("FAULTS_SCENARIOS", "").split(",") if s]
    chosen = [s for s in scenarios(total) if not wanted or s.name in wanted]
    run = time.strftime("%Y%m%d-%H%M%S")
    RUNS.mkdir(parents=True, exist_ok=True)
    for old in sorted(RUNS.iterdir())[:-2]:  # keep the last two runs' logs
        shutil.rmtree(old, ignore_errors=True)
    run_dir = RUNS / run
    run_dir.mkdir()
    infra_log = run_dir / "infra.log"
    # This process's library logs (aiokafka retrying while a broker is down) go to a file.
    logging.basicConfig(filename=run_dir / "client.log", level=logging.INFO)
    configure_logging("WARNING", "console")
    # The dev LiveKit server's well-known key `secret` is short (as in pyproject's pytest filter).
    warnings.filterwarnings("ignore", message="The HMAC key is 6 bytes long")
    kafka = KafkaCluster(infra_log)
    postgres = (
        PrivatePostgres(infra_log) if any(s.database == "postgresql" for s in chosen) else None
    )
    keep = os.environ.get("FAULTS_KEEP") == "1"
    results: list[ScenarioResult] = []
    try:
        if any(s.provider == "livekit" for s in chosen):
            await livekit_answers()
        also = " and a private PostgreSQL" if postgres else ""
        say(f"starting the 3-node Kafka cluster{also} (log {infra_log})")
        await kafka.start()
        if postgres:
            await postgres.start()
        for scenario in chosen:
            try:
                results.append(await run_scenario(scenario, kafka, postgres, run_dir))
            except Exception as exc:  # could not even start: a violation, and on to the next
                say(f"{scenario.name}: ERROR {type(exc).__name__}: {exc}")
                results.append(ScenarioResult(scenario, errors=[f"{type(exc).__name__}: {exc}"]))
            say(f"{scenario.name}: done, {results[-1].violations} violations")
    finally:
        if not keep:
            say("stopping the Kafka cluster and the private PostgreSQL")
            await kafka.stop()
            if postgres:
                await postgres.stop()
    print()
    print(table(results))
    violations = sum(r.violations for r in results)
    for r in results:
        if r.violations:
            print(f"{r.scenario.name}: {r.violations} violations")
            print("\n".join(details(r)))
    seconds = time.monotonic() - began
    LATEST.write_text(
        json.dumps(
            {
                "run": run,
                "seconds": round(seconds, 1),
                "bootstrap": kafka.bootstrap,
                "table": table(results),
                "violations": violations,
            },
            indent=2,
        )
    )
    commands = sum(r.verdict.commands for r in results)
    faults = sum(len(r.faults) for r in results)
    print(
        f"{commands} commands, {faults} faults, {violations} violations in {seconds:.0f}s "
        f"(logs: {run_dir})"
    )
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
