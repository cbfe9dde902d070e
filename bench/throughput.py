"""Throughput of the service as a fraction of the raw Kafka pipe, both measured in one run.

Rows (same broker, same machine, same N, the same CreateSipTrunk messages: ~370 B of JSON
plus ~220 B of CloudEvents headers):

- raw pipe: aiokafka consume → produce between two 6-partition topics. `getmany` with the
  worker's batch size and poll wait, the relay's idempotent producer, gather the acks, then
  commit the offsets: what any consume-transform-produce service pays on this broker. Median
  of three passes over the same input.
- service <database>: `sip-trunks worker` and `sip-trunks relay` as two OS processes (as in
  production, so both cores can be used) turning N commands into N outcome events;
- service postgresql, 2 workers: the same with two worker processes in one consumer group
  (3 partitions each), the scale-out of PostgreSQL (SQLite takes one writer). Its commands are
  published once both workers hold their partitions, so no rebalance falls in the window; the
  loading producer then runs during the window (its CPU is the bench's).

Every input is published before any clock starts (but see the 2-worker row). The timed windows:

- raw pipe: from the first non-empty poll to the commit of the N-th message;
- service: from the `ce_time` of the earliest outcome event (stamped by the worker as it
  applies the first command, just after its first poll) to the arrival of the N-th outcome
  event at this process's consumer. Process start-up (imports, migrations, group join) is
  outside the window and reported apart as `startup_s`; `worker_s` is when the worker's
  committed offsets covered every command (polled, ±0.2 s): the rest is the relay's tail.

`ratio` is msgs/s over the raw pipe's msgs/s. `cpu` is the share of one core each process
used during the window (from /proc). The table is also written to .dev/bench-throughput.json
(`bench.summary` merges it into .dev/bench-latest.json).

Environment: BENCH_N (20000), BENCH_TIMEOUT_S (per scenario, 150), BENCH_POSTGRES (`auto`: use
TEST_POSTGRES_URL or the dev cluster of dev/postgres.sh when it answers; `0`: skip). The
service's own variables (WORKER_BATCH_SIZE, RELAY_BATCH_SIZE, ...) pass through to both rows.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import platform
import re
import shutil
import sqlite3
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from nacl.public import PrivateKey
from sip_trunk_contracts import CommandEnvelope, TrunkRejected, seal_fields
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench.results import run_facts, save
from service.adapters import kafka_clients
from service.adapters.kafka_topics import delete_topics, ensure_topics
from service.config import Settings
from service.entrypoints.processes import start_process, stop_process
from service.logs import configure_logging

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / ".dev" / "bench-throughput.json"
PARTITIONS = 6
_REJECTED = TrunkRejected.CE_TYPE.encode()
RAW_REPEATS = 3
DEV_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:15432/sip_trunks"
# Variables the bench sets for the service processes; the rest of the environment passes through.
SERVICE_ENV = (
    "KAFKA_TOPIC_PREFIX",
    "KAFKA_CONSUMER_GROUP",
    "DATA_DIR",
    "DATABASE_URL",
    "ENCRYPTION_KEY",
    "PASSWORD_SEAL_PRIVATE_KEY",
    "ACCEPT_PLAINTEXT_PASSWORDS",
    "SYSTEM_TRUNKS_FILE",
    "LOG_LEVEL",
    "LOG_FORMAT",
)

Message = tuple[bytes, bytes, list[tuple[str, bytes]]]  # key, value, headers


@dataclass(frozen=True)
class Config:
    n: int
    timeout_s: float
    postgres: str
    settings: Settings  # the service's defaults and overrides, shared by the raw pipe
    # The run's worker key: commands are sealed once for it, every scenario's worker opens them.
    seal_key: PrivateKey = field(default_factory=PrivateKey.generate)

    @classmethod
    def from_env(cls) -> Config:
        return cls(
            n=int(os.environ.get("BENCH_N", "20000")),
            timeout_s=float(os.environ.get("BENCH_TIMEOUT_S", "150")),
            postgres=os.environ.get("BENCH_POSTGRES", "auto"),
            settings=Settings(),
        )


@dataclass
class Row:
    scenario: str
    messages: int
    seconds: float
    complete: bool = True
    startup_s: float | None = None
    worker_s: float | None = None  # service: until the worker had committed every command
    rejected: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    repeats: list[float] = field(default_factory=list)  # msgs/s of each repetition (raw pipe)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


# --- inputs ---------------------------------------------------------------------------------


def tenant_of(i: int) -> str:
    """The tenant of the i-th command's trunk: 50 tenants, in turn."""
    return f"bench-tenant-{i % 50}"


def create_commands(n: int, seal_key: bytes) -> list[Message]:
    """N valid CreateSipTrunk commands, distinct trunks and ids, built by the contract's
    `CommandEnvelope` as every producer builds them, passwords sealed for `seal_key` (one
    `ce_time` for all)."""
    sent_at = datetime.now(UTC)
    commands: list[Message] = []
    for i in range(n):
        fields = {
            "name": f"Bench trunk {i}",
            "gateways": [
                {"ipOrDomain": f"sip{i % 100}.bench.example.com", "port": 5060, "name": "primary"},
                {"ipOrDomain": "203.0.113.10", "port": 5061, "name": "backup"},
            ],
            "authentication": {"username": f"bench_{i}", "password": "bench-pass-123"},
            "advanced": {"transport": "udp", "numbers": ["+4930123456"]},
        }
        command = CommandEnvelope.create(
            seal_fields(seal_key, fields),
            trunk_id=uuid.uuid4(),
            tenant_id=tenant_of(i),
            source="/bench",
            time=sent_at,
        )
        commands.append((command.key_bytes(), command.value(), command.kafka_headers()))
    return commands


async def publish(settings: Settings, topic: str, messages: Sequence[Message]) -> None:
    # Tuned for loading, not measured: large batches, acknowledged before any clock starts.
    producer = kafka_clients.producer(
        settings, enable_idempotence=False, acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        for start in range(0, len(messages), 5000):
            futures = [
                await producer.send(topic, key=key, value=value, headers=headers)
                for key, value, headers in messages[start : start + 5000]
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = kafka_clients.admin(settings)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def create_topics(settings: Settings, names: Sequence[str]) -> None:
    async with admin_client(settings) as admin:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in names])
        for _ in range(100):  # a new partition needs a leader before clients can use it
            described = await admin.describe_topics(list(names))
            if all(
                t["error_code"] == 0 and all(p["leader"] >= 0 for p in t["partitions"])
                for t in described
            ):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"no partition leaders for {names}")


# --- CPU accounting --------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, from /proc (None when it is gone or not Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> dict[str, float]:
    """A process's resident memory now (VmRSS) and its high-water mark (VmHWM), in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {name: int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM")}


class CpuMeter:
    """Share of one core used by each named process between `start()` and `stop()`."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._begin: dict[str, float | None] = {}
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._begin = {name: cpu_seconds(pid) for name, pid in self._pids.items()}

    def stop(self) -> dict[str, float]:
        elapsed = time.monotonic() - self._t0
        shares: dict[str, float] = {}
        for name, pid in self._pids.items():
            begin, end = self._begin.get(name), cpu_seconds(pid)
            if begin is not None and end is not None and elapsed > 0:
                shares[name] = round((end - begin) / elapsed, 2)
        return shares


def external_cluster() -> bool:
    """KAFKA_BOOTSTRAP_SERVERS names a cluster of the caller's (`dev/kafka.sh as` sets it to
    the dev broker, with DEV_KAFKA_ENV)."""
    return bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS")) and "DEV_KAFKA_ENV" not in os.environ


def broker_pid() -> dict[str, int]:
    """The local dev broker's pid, when dev/kafka.sh runs it (not for an external cluster)."""
    pidfile = ROOT / ".dev" / "kafka" / "kafka.pid"
    if external_cluster() or not pidfile.exists():
        return {}
    return {"kafka": int(pidfile.read_text().strip())}


# --- scenario 1: the raw pipe ----------------------------------------------------------------


async def raw_pass(cfg: Config, group: str, source: str, target: str) -> Row:
    consumer = kafka_clients.consumer(
        cfg.settings,
        source,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = kafka_clients.producer(cfg.settings)  # the relay's: idempotent, linger 2 ms
    await consumer.start()
    await producer.start()
    cpu = CpuMeter({"bench": os.getpid(), **broker_pid()})
    moved, started = 0, 0.0
    deadline = time.monotonic() + cfg.timeout_s
    try:
        while moved < cfg.n and time.monotonic() < deadline:
            batches = await consumer.getmany(
                timeout_ms=cfg.settings.worker_batch_timeout_ms,
                max_records=cfg.settings.worker_batch_size,
            )
            records = [record for batch in batches.values() for record in batch]
            if not records:
                continue
            if not started:
                started = time.perf_counter()
                cpu.start()
            futures = [
                await producer.send(target, key=r.key, value=r.value, headers=list(r.headers))
                for r in records
            ]
            await asyncio.gather(*futures)
            await consumer.commit()
            moved += len(records)
        elapsed = time.perf_counter() - started if started else 0.0
        return Row("raw pipe", moved, elapsed, complete=moved >= cfg.n, cpu=cpu.stop())
    finally:
        await producer.stop()
        await consumer.stop()


async def raw_pipe(cfg: Config, prefix: str, source: str, target: str) -> Row:
    """The median of RAW_REPEATS passes: a pass lasts ~2 s, short enough to be noisy alone.

    Each pass is a fresh consumer group, so it reads the same pre-published input again.
    """
    passes = [await raw_pass(cfg, f"{prefix}raw.{i}", source, target) for i in range(RAW_REPEATS)]
    median = sorted(passes, key=lambda row: row.rate)[len(passes) // 2]
    median.repeats = [round(row.rate, 1) for row in passes]
    return median


# --- scenario 2: the service -----------------------------------------------------------------


def tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def service_env(
    settings: Settings, database_url: str | None, workdir: Path, seal_key: PrivateKey
) -> dict[str, str]:
    """The service processes' environment: own topics, group and data folder, the run's
    password seal key, quiet logs."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_ENV}
    env |= {
        "KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
        "KAFKA_CONSUMER_GROUP": settings.kafka_consumer_group,
        "DATA_DIR": str(workdir / "data"),  # fresh SQLite file and encryption key
        "PASSWORD_SEAL_PRIVATE_KEY": base64.b64encode(bytes(seal_key)).decode(),
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


@dataclass
class Outcomes:
    """What the events topic has shown so far (all times in seconds since the epoch)."""

    count: int = 0  # commands answered (a re-published outcome counts once)
    rejected: int = 0
    answered: set[bytes] = field(default_factory=set)  # their ids (ce_causationid)
    first_event: float = float("inf")  # ce_time of the earliest outcome
    last_arrival: float = 0.0
    worker_done: float | None = None  # when the group's committed offsets covered every command

    def add(self, records: Sequence[ConsumerRecord[bytes, bytes]], arrived: float) -> None:
        self.last_arrival = arrived
        for record in records:
            headers = dict(record.headers)
            if headers["ce_causationid"] in self.answered:
                continue
            self.answered.add(headers["ce_causationid"])
            self.count += 1
            self.rejected += headers.get("ce_type") == _REJECTED
            stamped = datetime.fromisoformat(headers["ce_time"].decode()).timestamp()
            self.first_event = min(self.first_event, stamped)


async def committed(admin: AIOKafkaAdminClient, group: str, topic: str) -> int:
    offsets = await admin.list_consumer_group_offsets(group)
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic)


async def joined(
    admin: AIOKafkaAdminClient,
    group: str,
    members: int,
    processes: dict[str, asyncio.subprocess.Process],
    workdir: Path,
) -> None:
    """Until `group` is stable with `members` members, each holding partitions."""
    for _ in range(1200):
        failed(processes, workdir)
        [response] = await admin.describe_consumer_groups([group])
        [described] = response.to_object()["groups"]
        ready = [m for m in described["members"] if m["member_assignment"]]
        if described["state"] == "Stable" and len(ready) == members:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{group} did not get {members} members in 120 s")


def failed(processes: dict[str, asyncio.subprocess.Process], workdir: Path) -> None:
    """Raises with the log of a process that has exited."""
    for name, process in processes.items():
        if process.returncode is not None:
            log = workdir / f"{name}.log"
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail(log)}")


async def service(
    cfg: Config,
    scenario: str,
    settings: Settings,
    database_url: str | None,
    workdir: Path,
    workers: int = 1,
    inputs: Sequence[Message] = (),
) -> Row:
    """`inputs`: commands to publish once every worker has joined the group (not before, lest
    the first worker start alone and a rebalance fall inside the timed window)."""
    env = service_env(settings, database_url, workdir, cfg.seal_key)
    # Tail the events topic from its start before the service runs, so no outcome is missed.
    counter = kafka_clients.consumer(cfg.settings, enable_auto_commit=False)
    await counter.start()
    partitions = [TopicPartition(settings.topics.events, p) for p in range(PARTITIONS)]
    counter.assign(partitions)
    await counter.seek_to_beginning(*partitions)
    admin = kafka_clients.admin(cfg.settings)
    await admin.start()

    spawned = time.time()
    # Workers of one group on one host claim instance ids `<hostname>-<n>` of their own.
    roles = {f"worker-{i + 1}" if workers > 1 else "worker": "worker" for i in range(workers)}
    processes = {
        name: await start_process(role, env, workdir / f"{name}.log")
        for name, role in {**roles, "relay": "relay"}.items()
    }
    if inputs:
        await joined(admin, settings.kafka_consumer_group, workers, processes, workdir)
        await publish(cfg.settings, settings.topics.commands, inputs)
    pids = {role: process.pid for role, process in processes.items()}
    cpu = CpuMeter({**pids, **broker_pid(), "bench": os.getpid()})
    seen = Outcomes()
    shares: dict[str, float] = {}
    deadline = time.monotonic() + cfg.timeout_s
    next_report = time.monotonic() + 5
    try:
        while seen.count < cfg.n and time.monotonic() < deadline:
            failed(processes, workdir)
            batches = await counter.getmany(timeout_ms=200, max_records=10_000)
            if batches and not seen.count:
                cpu.start()
            seen.add([r for batch in batches.values() for r in batch], time.time())
            # Worker and relay overlap; the commit offsets tell when the worker alone was done.
            group, commands = settings.kafka_consumer_group, settings.topics.commands
            if seen.worker_done is None and await committed(admin, group, commands) >= cfg.n:
                seen.worker_done = time.time()
            if time.monotonic() >= next_report:
                print(f"  {scenario}: {seen.count}/{cfg.n} outcome events", file=sys.stderr)
                next_report += 5
        shares = cpu.stop() if seen.count else {}
    finally:
        await admin.close()
        await counter.stop()
        await asyncio.gather(*(stop_process(p) for p in processes.values()))
    if not seen.count:
        return Row(scenario, 0, 0.0, complete=False)
    return Row(
        scenario,
        seen.count,
        seen.last_arrival - seen.first_event,
        complete=seen.count >= cfg.n,
        startup_s=round(seen.first_event - spawned, 2),
        worker_s=round(seen.worker_done - seen.first_event, 2) if seen.worker_done else None,
        rejected=seen.rejected,
        cpu=shares,
    )


# --- PostgreSQL (optional row) ---------------------------------------------------------------


async def postgres_server(cfg: Config) -> tuple[URL | None, str]:
    """The server to use and its version, or None and why not."""
    if cfg.postgres == "0":
        return None, "skipped (BENCH_POSTGRES=0)"
    url = make_url(os.environ.get("TEST_POSTGRES_URL", DEV_POSTGRES_URL))
    engine = create_async_engine(url, connect_args={"timeout": 5})
    try:
        async with engine.connect() as conn:
            version = (await conn.execute(text("SHOW server_version"))).scalar_one()
        return url, f"PostgreSQL {version}"
    except Exception as exc:  # any failure to connect means: no such row
        return None, f"not available at {url.render_as_string()} ({type(exc).__name__})"
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def scratch_database(server: URL, name: str) -> AsyncIterator[str]:
    """A fresh database on `server`, dropped afterwards."""
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


# --- report ----------------------------------------------------------------------------------


def machine(cfg: Config, postgres: str) -> dict[str, Any]:
    pom = (ROOT / "dev" / "kafka" / "pom.xml").read_text()
    kafka = re.search(r"<kafka\.version>(.+?)</kafka\.version>", pom)
    cpuinfo = Path("/proc/cpuinfo")
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text()) if cpuinfo.exists() else None
    return run_facts() | {
        "cpu": model.group(1) if model else platform.processor(),
        "kafka": (
            f"external cluster {cfg.settings.kafka_bootstrap_servers}"
            if external_cluster()
            else f"Apache Kafka {kafka.group(1) if kafka else '?'} (dev/kafka, KRaft, 1 node)"
        ),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres,
    }


def report(cfg: Config, rows: list[Row], facts: dict[str, Any]) -> dict[str, Any]:
    baseline = rows[0].rate
    print()
    print(
        f"{'scenario':<30} {'messages':>9} {'seconds':>8} {'msgs/s':>9} {'ratio':>6}  cpu (cores)"
    )
    for row in rows:
        ratio = row.rate / baseline if baseline else 0.0
        flag = "" if row.complete else "  INCOMPLETE (timed out)"
        cpu = " ".join(f"{name} {share:.2f}" for name, share in row.cpu.items())
        print(
            f"{row.scenario:<30} {row.messages:>9} {row.seconds:>8.2f} {row.rate:>9,.0f}"
            f" {ratio:>6.3f}  {cpu}{flag}"
        )
    print()
    for row in rows:
        if row.repeats:
            passes = ", ".join(f"{rate:,.0f}" for rate in row.repeats)
            print(f"{row.scenario}: median of {len(row.repeats)} passes ({passes} msgs/s)")
        if row.startup_s is not None:
            print(
                f"{row.scenario}: start-up {row.startup_s} s (not timed), worker done after"
                f" {row.worker_s} s, {row.rejected} rejected"
            )
    print(
        f"machine: {facts['cores']} cores ({facts['cpu']}), Python {facts['python']}, "
        f"{facts['kafka']}, SQLite {facts['sqlite']}, PostgreSQL: {facts['postgresql']}"
    )
    print(f"code: {facts['code']}")
    print(
        f"batch: worker {cfg.settings.worker_batch_size} / {cfg.settings.worker_batch_timeout_ms}"
        f" ms (raw pipe the same), relay {cfg.settings.relay_batch_size}; "
        f"{PARTITIONS} partitions"
    )
    return {
        "n": cfg.n,
        "partitions": PARTITIONS,
        "worker_batch_size": cfg.settings.worker_batch_size,
        "worker_batch_timeout_ms": cfg.settings.worker_batch_timeout_ms,
        "relay_batch_size": cfg.settings.relay_batch_size,
        "machine": facts,
        "rows": [
            asdict(row) | {"msgs_per_s": round(row.rate, 1), "ratio": round(row.rate / baseline, 4)}
            for row in rows
        ],
    }


# --- main ------------------------------------------------------------------------------------


async def run(cfg: Config, run_id: str, workdir: Path) -> tuple[list[Row], dict[str, Any]]:
    prefix = f"{run_id}."
    raw_in, raw_out = f"{prefix}raw.in", f"{prefix}raw.out"
    pg_server, pg_note = await postgres_server(cfg)
    # Scenario: its database server (None: SQLite) and how many workers share its group.
    scenarios_run: dict[str, tuple[URL | None, int]] = {"service sqlite": (None, 1)}
    if pg_server is not None:
        scenarios_run["service postgresql"] = (pg_server, 1)
        scenarios_run["service postgresql, 2 workers"] = (pg_server, 2)
    scenarios = {
        name: Settings(
            kafka_topic_prefix=f"{prefix}{i}.",
            kafka_consumer_group=f"{prefix}{i}.worker",
            kafka_partitions=PARTITIONS,
        )
        for i, name in enumerate(scenarios_run)
    }

    print(f"==> Publishing {cfg.n} commands to each of {1 + len(scenarios)} input topics")
    messages = create_commands(cfg.n, bytes(cfg.seal_key.public_key))
    _, value, headers = messages[0]
    header_bytes = sum(len(k) + len(v) for k, v in headers)
    print(f"    message: {len(value)} B JSON value + {header_bytes} B CloudEvents headers")
    await create_topics(cfg.settings, [raw_in, raw_out])
    await publish(cfg.settings, raw_in, messages)
    for name, settings in scenarios.items():
        await ensure_topics(settings)
        if scenarios_run[name][1] == 1:
            await publish(cfg.settings, settings.topics.commands, messages)

    print("==> raw pipe")
    rows = [await raw_pipe(cfg, prefix, raw_in, raw_out)]
    for name, (server, workers) in scenarios_run.items():
        print(f"==> {name} ({workers} worker process(es) + a relay)")
        settings, folder = scenarios[name], workdir / re.sub(r"\W+", "-", name)
        if server is None:
            rows.append(await service(cfg, name, settings, None, folder, workers))
            continue
        async with scratch_database(server, f"bench_{run_id.split('-')[-1]}") as url:
            inputs = messages if workers > 1 else ()
            rows.append(await service(cfg, name, settings, url, folder, workers, inputs))
    return rows, machine(cfg, pg_note)


async def main() -> int:
    configure_logging("WARNING")
    # Fresh partitions take a moment to have a known leader: aiokafka retries and says so.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    cfg = Config.from_env()
    run_id = f"bench-{uuid.uuid4().hex[:8]}"
    workdir = ROOT / ".dev" / "bench" / run_id
    ok = False
    try:
        rows, facts = await run(cfg, run_id, workdir)
        results = report(cfg, rows, facts)
        results |= {"run_id": run_id, "finished_at": datetime.now(UTC).isoformat()}
        save(RESULTS, results)
        print(f"results: {RESULTS.relative_to(ROOT)}")
        ok = all(row.complete for row in rows)
    finally:
        await delete_topics(cfg.settings, f"{run_id}.")
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        elif workdir.exists():
            print(f"logs and data kept in {workdir}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
