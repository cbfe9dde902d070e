"""Runs one fault scenario: the service's processes on the 3-node cluster, a paced command
stream, faults one after another (each waited out until every partition answers again), then
the checks of `checks.py` on everything that was sent and everything that came back."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

from cryptography.fernet import Fernet
from livekit import api
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from service.adapters.kafka_topics import ensure_topics
from service.adapters.schema import outbox, outbox_parked, sip_trunks
from service.config import Settings
from tests.conftest import LIVEKIT_API_KEY, LIVEKIT_API_SECRET, LIVEKIT_URL
from tests.faults.checks import (
    REJECTED,
    Outcome,
    Verdict,
    compare_state,
    recovery_s,
    state_values,
    verify,
)
from tests.faults.infra import KafkaCluster, PrivatePostgres, Processes, relay_lease_holder
from tests.faults.workload import Driver, Outcomes, Workload
from tests.integration.kafka_stack import Client
from tests.integration.tcp_proxy import TcpProxy

PARTITIONS = 6
_STARTED = time.monotonic()


def say(message: str) -> None:
    elapsed = int(time.monotonic() - _STARTED)
    print(f"[faults {elapsed // 60}:{elapsed % 60:02d}] {message}", flush=True)


@dataclass
class Context:
    """What a fault may act on."""

    processes: Processes
    kafka: KafkaCluster
    postgres: PrivatePostgres | None
    proxy: TcpProxy | None
    database_url: str
    topics: list[str]
    # Reason -> time windows (epoch s) in which a rejection for it is a valid outcome.
    rejection_windows: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Fault:
    name: str
    # Breaks the component and, for outages, brings it back after the outage: returns then.
    inject: Callable[[Context], Awaitable[None]]
    # After recovery: waits until the next fault may be injected (e.g. replicas in sync).
    settle: Callable[[Context], Awaitable[None]] | None = None


def worker_kill(name: str) -> Fault:
    async def inject(ctx: Context) -> None:
        await ctx.processes.restart_killed(name)

    return Fault(f"SIGKILL {name}, restarted", inject)


def relay_kill(name: str | None = None) -> Fault:
    """SIGKILL a relay (None: the one holding the PostgreSQL lease), restarted at once."""

    async def inject(ctx: Context) -> None:
        target = name or await relay_lease_holder(ctx.database_url, ctx.processes)
        if target is None:
            raise RuntimeError("no relay holds the lease")
        await ctx.processes.restart_killed(target)

    return Fault(f"SIGKILL {name or 'active relay'}, restarted", inject)


def broker_down(node: int, *, clean: bool, down_s: float) -> Fault:
    async def inject(ctx: Context) -> None:
        began = time.monotonic()
        await (ctx.kafka.node_stop(node) if clean else ctx.kafka.node_kill(node))
        stopped = time.monotonic()
        await asyncio.sleep(down_s)
        await ctx.kafka.node_start(node)
        say(
            f"  node {node} {'stopped' if clean else 'killed'} in {stopped - began:.1f}s, "
            f"started again in {time.monotonic() - stopped - down_s:.1f}s"
        )

    async def settle(ctx: Context) -> None:
        await ctx.kafka.wait_fully_replicated(ctx.topics, within=90)

    how = "clean restart" if clean else "SIGKILL"
    return Fault(f"Kafka node {node} {how}, down {down_s:.0f}s", inject, settle)


def postgres_down(down_s: float, *, restart: tuple[str, ...] = ()) -> Fault:
    """PostgreSQL stopped; the processes in `restart` are SIGKILLed and started again during
    the outage, so they must wait for the database at start instead of exiting."""

    async def inject(ctx: Context) -> None:
        assert ctx.postgres is not None
        await ctx.postgres.stop()
        for name in restart:
            await ctx.processes.restart_killed(name)
        await asyncio.sleep(down_s)
        await ctx.postgres.start()

    meanwhile = f", {' and '.join(restart)} restarted in it" if restart else ""
    return Fault(f"PostgreSQL stopped {down_s:.0f}s{meanwhile}", inject)


def livekit_down(mode: Literal["refuse", "blackhole"], down_s: float, slack_s: float) -> Fault:
    """LiveKit refuses connections or hangs; `provider_unavailable` is then a valid outcome,
    until `slack_s` after it is back (breaker, retries and the relay's lag)."""

    async def inject(ctx: Context) -> None:
        assert ctx.proxy is not None
        started = time.time()
        ctx.proxy.mode = mode
        try:
            await asyncio.sleep(down_s)
        finally:
            ctx.proxy.mode = "forward"
        window = (started, time.time() + slack_s)
        ctx.rejection_windows.setdefault("provider_unavailable", []).append(window)

    what = "refuses connections" if mode == "refuse" else "hangs (accepts, never answers)"
    return Fault(f"LiveKit {what} {down_s:.0f}s", inject)


@dataclass
class Scenario:
    name: str
    database: Literal["sqlite", "postgresql"]
    processes: list[str]
    faults: list[Fault]
    minimum: int  # commands at least
    rate: float  # commands/s while faults are injected
    provider: Literal["none", "livekit"] = "none"


@dataclass
class FaultResult:
    name: str
    at_s: float  # since the stream started
    down_s: float  # until the component was back
    recovery_s: float | None  # until every partition answered a command sent after the fault
    t0: float
    error: str | None = None
    rejected: int = 0  # rejections published from this fault until the next one


@dataclass
class ScenarioResult:
    scenario: Scenario
    verdict: Verdict = field(default_factory=Verdict)
    faults: list[FaultResult] = field(default_factory=list)
    seconds: float = 0.0
    send_retries: int = 0
    state_differences: list[str] = field(default_factory=list)
    unsent_outbox: int = -1
    dead: list[str] = field(default_factory=list)  # processes and components not alive at the end
    errors: list[str] = field(default_factory=list)  # the run itself went wrong (timeouts, ...)
    restarts: int = 0
    dead_lettered: int = 0  # every command is valid: none may reach the DLT

    @property
    def violations(self) -> int:
        unrecovered = sum(1 for f in self.faults if f.recovery_s is None)
        return (
            self.verdict.violations
            + self.dead_lettered
            + len(self.state_differences)
            + max(self.unsent_outbox, 0)
            + (self.unsent_outbox < 0)
            + len(self.dead)
            + len(self.errors)
            + unrecovered
        )


def service_env(
    settings: Settings, data_dir: Path, database_url: str, **extra: str
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KAFKA_", "LIVEKIT_", "DATABASE_URL", "WORKER_INSTANCE"))
        and k not in ("SYSTEM_TRUNKS_FILE", "PROVIDER", "RECONCILE_INTERVAL_S")
    }
    return env | {
        "KAFKA_BOOTSTRAP_SERVERS": os.environ.get(
            "TMP_SERVICE_BOOTSTRAP", settings.kafka_bootstrap_servers
        ),
        "KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
        "KAFKA_REPLICATION_FACTOR": str(settings.kafka_replication_factor),
        "KAFKA_PARTITIONS": str(settings.kafka_partitions),
        "KAFKA_CONSUMER_GROUP": f"{settings.kafka_topic_prefix}workers",
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",  # `worker.started` / `relay.started` tell a restart is complete
        "RECONCILE_INTERVAL_S": "0",
        **extra,
    }


async def _wait(condition: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {within:.0f}s")
        await asyncio.sleep(0.25)


async def read_database(database_url: str) -> tuple[dict[str, dict[str, Any]], int]:
    """Trunk rows by id (`trunk_row` fields) and the number of outbox rows not published:
    unsent, or parked by the relay (for a topic it could not find)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(sip_trunks))).mappings().all()
            unsent = (
                await conn.execute(
                    select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
                )
            ).scalar_one()
            parked = (
                await conn.execute(select(func.count()).select_from(outbox_parked))
            ).scalar_one()
    finally:
        await engine.dispose()
    return {row["id"]: dict(row) for row in rows}, int(unsent) + int(parked)


def latest_state(client: Client) -> dict[str, dict[str, Any] | None]:
    return {
        key: (state_values(json.loads(value)) if value is not None else None)
        for key, value in client.latest_state().items()
    }


async def run_scenario(
    scenario: Scenario, kafka: KafkaCluster, postgres: PrivatePostgres | None, run_dir: Path
) -> ScenarioResult:
    result = ScenarioResult(scenario)
    run = run_dir.name
    data_dir = run_dir / scenario.name
    data_dir.mkdir(parents=True)
    settings = Settings(
        kafka_bootstrap_servers=kafka.bootstrap,
        data_dir=data_dir,  # the client seals passwords for the workers' dev key there
        kafka_topic_prefix=f"faults-{run}-{scenario.name}.",
        kafka_replication_factor=3,
        kafka_partitions=PARTITIONS,
    )
    topics = settings.topics
    topic_names = [topics.commands, topics.events, topics.state, topics.dlt]
    await ensure_topics(settings)
    database_name = f"faults_{run.replace('-', '_')}_{scenario.name}"
    if scenario.database == "postgresql":
        assert postgres is not None
        database_url = await postgres.new_database(database_name)
    else:
        database_url = f"sqlite+aiosqlite:///{data_dir / 'sip_trunks.sqlite3'}"

    async with contextlib.AsyncExitStack() as stack:
        extra: dict[str, str] = {}
        proxy: TcpProxy | None = None
        if scenario.provider == "livekit":
            host, port = LIVEKIT_URL.removeprefix("http://").split(":")
            proxy = await stack.enter_async_context(TcpProxy(host, int(port)))
            extra = {
                "PROVIDER": "livekit",
                "LIVEKIT_URL": f"http://127.0.0.1:{proxy.port}",
                "LIVEKIT_API_KEY": LIVEKIT_API_KEY,
                "LIVEKIT_API_SECRET": LIVEKIT_API_SECRET,
                "LIVEKIT_OWNER": f"faults-{run}",
                "LIVEKIT_TIMEOUT_S": "0.5",
                "LIVEKIT_RETRIES": "1",
                "LIVEKIT_BREAKER_S": "1",
            }
            stack.push_async_callback(_clean_livekit, f"faults-{run}")
        env = service_env(settings, data_dir, database_url, **({"PROVIDER": "none"} | extra))
        processes = Processes(env, data_dir)
        ctx = Context(processes, kafka, postgres, proxy, database_url, topic_names)
        stack.push_async_callback(processes.stop_all)
        for name in scenario.processes:
            await processes.start(name)
        await processes.wait_started(within=90)
        client = Client(settings, acks="all", enable_idempotence=True, request_timeout_ms=10000)
        await client.start()
        stack.push_async_callback(client.stop)
        outcomes = Outcomes(client)
        driver = Driver(client, Workload(seed=int(os.environ.get("FAULTS_SEED", "7"))), PARTITIONS)
        done = asyncio.Event()
        say(
            f"{scenario.name}: {', '.join(scenario.processes)} on {scenario.database}, "
            f"KAFKA_BOOTSTRAP_SERVERS={kafka.bootstrap}; streaming ≥{scenario.minimum} commands "
            f"at {scenario.rate:.0f}/s"
        )
        started = time.time()
        sending = asyncio.create_task(driver.run(scenario.rate, scenario.minimum, done))
        stack.push_async_callback(_finish, sending, done)

        async def recovered_since(t0: float) -> bool:
            if sending.done():
                sending.result()  # the driver failed: say why
            if dead := processes.dead():  # exited on its own: no use waiting for it
                raise RuntimeError(f"service process exited: {dead}")
            outcomes.update()
            return recovery_s(t0, driver.sent, outcomes.all, PARTITIONS) is not None

        try:
            await _wait(partial(recovered_since, started), 120, "first outcomes on all partitions")
            say(f"{scenario.name}: all partitions answer; {len(scenario.faults)} faults to inject")
            for i, fault in enumerate(scenario.faults, 1):
                await asyncio.sleep(2.0)  # traffic between faults
                t0 = time.time()
                say(f"{scenario.name}: fault {i}/{len(scenario.faults)}: {fault.name}")
                entry = FaultResult(fault.name, t0 - started, 0.0, None, t0)
                result.faults.append(entry)
                await fault.inject(ctx)
                entry.down_s = time.time() - t0
                await _wait(partial(recovered_since, t0), 120, f"recovery from {fault.name}")
                entry.recovery_s = recovery_s(t0, driver.sent, outcomes.all, PARTITIONS)
                if fault.settle:
                    await fault.settle(ctx)
                # Faults one at a time: a process restarted by this one is up before the next.
                await processes.wait_started(within=60)
                say(f"{scenario.name}:   recovered in {entry.recovery_s:.1f}s")
            done.set()
            await sending
            say(f"{scenario.name}: {len(driver.sent)} commands sent; waiting for every outcome")

            async def all_answered() -> bool:
                outcomes.update()
                return all(c.command_id in outcomes.answered for c in driver.sent)

            with contextlib.suppress(TimeoutError):
                await _wait(all_answered, 120, "an outcome for every command")

            async def settled() -> bool:
                rows, unsent = await read_database(database_url)
                return unsent == 0 and not compare_state(latest_state(client), rows)

            with contextlib.suppress(TimeoutError):
                await _wait(settled, 30, "outbox published and state topic caught up")
        except Exception as exc:  # the run could not go on: report it, still check what came
            result.errors.append(f"{type(exc).__name__}: {exc}")
            say(f"{scenario.name}: ERROR {type(exc).__name__}: {exc}")
            if result.faults and result.faults[-1].recovery_s is None:
                result.faults[-1].error = str(exc)
            await _finish(sending, done)

        outcomes.update()
        rows, result.unsent_outbox = await read_database(database_url)
        result.state_differences = compare_state(latest_state(client), rows)
        result.dead = [f"{name} exited {code}" for name, code in processes.dead().items()]
        if not await kafka.all_running():
            result.dead.append("a Kafka node is down")
        if postgres is not None and not await postgres.running():
            result.dead.append("PostgreSQL is down")
        windows = ctx.rejection_windows
        result.verdict = verify(driver.sent, _in_windows(outcomes.all, windows), windows.keys())
        result.dead_lettered = len(client.taps[topics.dlt].records)
        ends = [f.t0 for f in result.faults[1:]] + [float("inf")]
        for fault, end in zip(result.faults, ends, strict=True):
            fault.rejected = sum(
                1
                for o in outcomes.all
                if o.ce_type == REJECTED and fault.t0 <= o.published_at < end
            )
        result.send_retries = driver.send_retries
        result.restarts = processes.restarts
        result.seconds = time.time() - started
    await _drop(kafka, topic_names)
    if scenario.database == "postgresql" and postgres is not None and not result.violations:
        await postgres.drop_database(database_name)
    return result


def _in_windows(
    outcomes: list[Outcome], windows: dict[str, list[tuple[float, float]]]
) -> list[Outcome]:
    """Rejections for a windowed reason outside its windows become `<reason> (outside the
    fault)`, which `verify` then counts as unexpected."""
    marked = []
    for o in outcomes:
        spans = windows.get(o.reason or "") if o.ce_type == REJECTED else None
        if spans is not None and not any(a <= o.published_at <= b for a, b in spans):
            marked.append(dataclasses.replace(o, reason=f"{o.reason} (outside the fault)"))
        else:
            marked.append(o)
    return marked


async def _finish(sending: asyncio.Task[None], done: asyncio.Event) -> None:
    done.set()
    sending.cancel()
    with contextlib.suppress(BaseException):
        await sending


async def _drop(kafka: KafkaCluster, topics: list[str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        await admin.start()
        await admin.delete_topics(topics)
    except Exception as exc:  # housekeeping only
        say(f"could not delete the topics ({exc})")
    finally:
        await admin.close()


async def _clean_livekit(owner: str) -> None:
    """Delete the LiveKit trunks this run made (the dev server is shared)."""
    client = api.LiveKitAPI(LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET)
    try:
        listed = await client.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())
        for info in listed.items:
            with contextlib.suppress(Exception):
                if json.loads(info.metadata or "{}").get("owner") == owner:
                    await client.sip.delete_sip_trunk(
                        api.DeleteSIPTrunkRequest(sip_trunk_id=info.sip_trunk_id)
                    )
    finally:
        await client.aclose()
