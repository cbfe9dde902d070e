"""The real components the fault suite breaks: the 3-node Kafka cluster (dev/kafka-cluster.sh),
a private PostgreSQL cluster (dev/postgres.sh with its own state folder and port, so the shared
dev server other tests use is never stopped), and the service's processes (started with the
same launcher as the e2e tests and the bench)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from service.entrypoints.processes import start_process, stop_process

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / ".dev" / "faults"


class ScriptFailed(RuntimeError):
    pass


async def script(*args: str, env: Mapping[str, str] | None = None, log: Path) -> str:
    """Run a dev script; its progress lines go to `log`, its stdout is returned."""
    with log.open("ab") as err:
        process = await asyncio.create_subprocess_exec(
            str(ROOT / "dev" / args[0]),
            *args[1:],
            env={**os.environ, **(env or {})},
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
        )
        out, _ = await process.communicate()
    if process.returncode:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise ScriptFailed(f"dev/{' '.join(args)} failed ({process.returncode}):\n{tail}")
    return out.decode().strip()


@dataclass
class KafkaCluster:
    log: Path
    bootstrap: str = ""

    async def start(self) -> None:
        await script("kafka-cluster.sh", "start", log=self.log)
        self.bootstrap = await script("kafka-cluster.sh", "bootstrap", log=self.log)

    async def stop(self) -> None:
        await script("kafka-cluster.sh", "stop", log=self.log)

    async def node_stop(self, node: int) -> None:
        await script("kafka-cluster.sh", "node-stop", str(node), log=self.log)

    async def node_kill(self, node: int) -> None:
        await script("kafka-cluster.sh", "node-kill", str(node), log=self.log)

    async def node_start(self, node: int) -> None:
        await script("kafka-cluster.sh", "node-start", str(node), log=self.log)

    async def all_running(self) -> bool:
        try:
            await script("kafka-cluster.sh", "status", log=self.log)
        except ScriptFailed:
            return False
        return True

    async def under_replicated(self, topics: list[str]) -> int:
        """Partitions of `topics` (and the group offsets) with fewer than 3 in-sync replicas."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
        await admin.start()
        try:
            described = await admin.describe_topics([*topics, "__consumer_offsets"])
        finally:
            await admin.close()
        return sum(
            1
            for topic in described
            for p in topic["partitions"]
            if topic["error_code"] or len(p["isr"]) < 3
        )

    async def wait_fully_replicated(self, topics: list[str], within: float) -> None:
        deadline = time.monotonic() + within
        missing = -1
        while time.monotonic() < deadline:
            try:
                missing = await self.under_replicated(topics)
                if missing == 0:
                    return
            except Exception:  # a node still starting: ask again
                missing = -1
            await asyncio.sleep(0.5)
        raise TimeoutError(f"{missing} partitions still under-replicated after {within:.0f}s")


@dataclass
class PrivatePostgres:
    """dev/postgres.sh on a private state folder and port: stopping it harms no other test."""

    log: Path
    port: int = int(os.environ.get("FAULTS_POSTGRES_PORT", "15442"))

    @property
    def env(self) -> dict[str, str]:
        # An outside server named in these would make dev/postgres.sh do nothing.
        return {
            "SIP_DEV_STATE": str(STATE),
            "DEV_POSTGRES_PORT": str(self.port),
            "TEST_POSTGRES_URL": "",
            "DATABASE_URL_POSTGRES": "",
        }

    @property
    def admin_url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    async def start(self) -> None:
        await script("postgres.sh", "start", env=self.env, log=self.log)

    async def stop(self) -> None:
        await script("postgres.sh", "stop", env=self.env, log=self.log)

    async def running(self) -> bool:
        try:
            await script("postgres.sh", "status", env=self.env, log=self.log)
        except ScriptFailed:
            return False
        return True

    async def new_database(self, name: str) -> str:
        admin = create_async_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            await admin.dispose()
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    async def drop_database(self, name: str) -> None:
        admin = create_async_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            await admin.dispose()


@dataclass
class Processes:
    """The service's processes of one scenario, by name (`worker-1`, `relay-2`, ...): the role
    is the part before the dash. Each keeps one log across its restarts."""

    env: dict[str, str]
    logs: Path
    running: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    restarts: int = 0
    _log_offsets: dict[str, int] = field(default_factory=dict)

    async def start(self, name: str) -> None:
        role = name.split("-")[0]
        env = dict(self.env)
        if role == "worker":  # static group membership: the same id across restarts
            env["WORKER_INSTANCE_ID"] = f"{self.env['KAFKA_TOPIC_PREFIX']}{name}"
        log = self.logs / f"{name}.log"
        self._log_offsets[name] = log.stat().st_size if log.exists() else 0
        self.running[name] = await start_process(role, env, log)

    async def wait_started(self, within: float) -> None:
        """Until every process has logged `<role>.started` since it was (re)started."""
        deadline = time.monotonic() + within
        waiting = set(self.running)
        while waiting:
            for name in sorted(waiting):
                with (self.logs / f"{name}.log").open("rb") as log:
                    log.seek(self._log_offsets[name])
                    if f'"{name.split("-")[0]}.started"'.encode() in log.read():
                        waiting.discard(name)
                if self.running[name].returncode is not None:
                    raise RuntimeError(f"{name} exited ({self.running[name].returncode})")
            if waiting and time.monotonic() > deadline:
                raise TimeoutError(f"{sorted(waiting)} not started within {within:.0f}s")
            await asyncio.sleep(0.2)

    async def kill(self, name: str) -> None:
        """SIGKILL: no clean-up of any kind, as a crash or the OOM killer would."""
        process = self.running[name]
        if process.returncode is not None:
            raise RuntimeError(f"{name} had already exited ({process.returncode})")
        process.send_signal(signal.SIGKILL)
        await process.wait()

    async def restart_killed(self, name: str) -> None:
        await self.kill(name)
        await self.start(name)
        self.restarts += 1

    def dead(self) -> dict[str, int]:
        """Processes that exited (name: exit code)."""
        return {name: p.returncode for name, p in self.running.items() if p.returncode is not None}

    async def stop_all(self) -> None:
        await asyncio.gather(*(stop_process(p) for p in self.running.values()))

    def pid(self, name: str) -> int:
        return self.running[name].pid


def tcp_client_ports(pid: int) -> set[int]:
    """Local ports of the IPv4 TCP sockets process `pid` holds (from /proc)."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if parts[9] in inodes:
            ports.add(int(parts[1].split(":")[1], 16))
    return ports


async def relay_lease_holder(database_url: str, processes: Processes) -> str | None:
    """Which relay process holds the relay's PostgreSQL advisory lock (None: no one does)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            key = (await conn.execute(text("SELECT hashtext('sip-trunks-relay')"))).scalar_one()
            rows = (
                await conn.execute(
                    text(
                        "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a"
                        " ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted"
                        " AND l.objid::text::bigint = :objid AND l.database = ("
                        "  SELECT oid FROM pg_database WHERE datname = current_database())"
                    ),
                    {"objid": key & 0xFFFFFFFF},
                )
            ).all()
    finally:
        await engine.dispose()
    ports = {row.client_port for row in rows}
    for name, process in processes.running.items():
        alive = name.startswith("relay") and process.returncode is None
        if alive and ports & tcp_client_ports(process.pid):
            return name
    return None
