"""Launch the service as separate processes: `sip-trunks worker|relay|gateway|topics`, as
`make run` starts them. Used by the end-to-end and fault tests, the benchmarks, and any operator's
script that wants a throwaway stack.

Standard library only at import time; `Stack.client()` needs httpx (the `dev` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from service.entrypoints.gateway.tokens import READ_SCOPE, WRITE_SCOPE, mint_token

if TYPE_CHECKING:
    import httpx

__all__ = [
    "ROLES",
    "Stack",
    "free_port",
    "isolated_env",
    "running_stack",
    "start_process",
    "stop_process",
    "wait_ready",
]

ROLES = ("worker", "relay", "gateway")


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_process(role: str, env: Mapping[str, str], log: Path) -> asyncio.subprocess.Process:
    """`sip-trunks <role>` as its own process, output appended to `log`."""
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service.entrypoints.cli",
            role,
            env=dict(env),
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )


async def stop_process(process: asyncio.subprocess.Process) -> None:
    """SIGTERM (the service closes cleanly), SIGKILL after 15 s."""
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _ready(base_url: str) -> bool:
    """GET /readyz answers 200 (plain HTTP/1.1 over the loopback, no client library)."""
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    try:
        async with asyncio.timeout(2):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                request = (
                    f"GET /readyz HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
                )
                writer.write(request.encode("ascii"))
                await writer.drain()
                status_line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return False
    parts = status_line.split()
    return len(parts) >= 2 and parts[1] == b"200"


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def wait_ready(base_url: str, log: Path, within: float = 60.0) -> None:
    """Until the gateway at `base_url` reports ready; the tail of `log` in the error if never."""
    for _ in range(int(within * 5)):
        if await _ready(base_url):
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"gateway not ready in {within}s; log:\n{_tail(log)}")


@dataclass
class Stack:
    """A running stack: the gateway's URL, the processes' environment and their token secret."""

    base_url: str
    env: dict[str, str]
    secret: str
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    def token(
        self,
        tenant: str = "acme",
        scopes: Iterable[str] = (READ_SCOPE, WRITE_SCOPE),
        *,
        ttl_s: int = 3600,
    ) -> str:
        return mint_token(self.secret, tenant=tenant, scopes=scopes, ttl_s=ttl_s)

    def client(self, tenant: str | None = "acme", base_url: str = "") -> httpx.AsyncClient:
        """An HTTP client with a token of `tenant` (none: anonymous), on this or another gateway."""
        import httpx  # the dev extra: launching processes does not need it

        headers = {"Authorization": f"Bearer {self.token(tenant)}"} if tenant else {}
        return httpx.AsyncClient(base_url=base_url or self.base_url, headers=headers, timeout=30)


def isolated_env(tmp: Path, bootstrap: str, prefix: str, **overrides: str) -> dict[str, str]:
    """The environment of service processes with their own topics, consumer group and data
    directory (named `<prefix>-<run>`), so that runs side by side never meet."""
    run = uuid.uuid4().hex[:8]
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC_PREFIX": f"{prefix}-{run}.",
        "KAFKA_CONSUMER_GROUP": f"{prefix}-{run}",
        "DATA_DIR": str(tmp),
        "LOG_FORMAT": "json",
        **overrides,
    }


@contextlib.asynccontextmanager
async def running_stack(
    tmp: Path,
    bootstrap: str,
    *,
    roles: Iterable[str] = ROLES,
    prefix: str = "e2e",
    role_env: Mapping[str, Mapping[str, str]] | None = None,
    **overrides: str,
) -> AsyncIterator[Stack]:
    """Topics created, then `roles` started on their own topics, group, data directory in `tmp`
    and gateway port (named `<prefix>-<run>`); on exit every process stopped and the topics
    deleted (as the environment's user, who created them), so runs leave nothing on the broker.
    `overrides` are environment variables, e.g. `PROVIDER="none"`. `role_env`: each role's own
    Kafka user (its KAFKA_SASL_* variables); the ACL plan of these topics is then granted before
    they start, as the user of the environment (a super user, who creates the topics too)."""
    port = free_port()
    secret = secrets.token_urlsafe(32)
    env = isolated_env(tmp, bootstrap, prefix)
    env |= {
        "GATEWAY_PORT": str(port),
        "AUTH_JWT_SECRET": secret,
        "GATEWAY_API_DOCS": "true",
        "PROVIDER": "livekit",
        "LIVEKIT_OWNER": env["KAFKA_CONSUMER_GROUP"],
        "RECONCILE_INTERVAL_S": "0",
        **overrides,
    }
    log = tmp / "stack.log"
    for setup in ("topics", "acls") if role_env else ("topics",):
        process = await start_process(setup, env, log)
        if await process.wait() != 0:
            raise RuntimeError(f"`sip-trunks {setup}` failed; log:\n{_tail(log)}")
    stack = Stack(f"http://127.0.0.1:{port}", env, secret)
    try:
        for role in roles:
            own = {**env, **(role_env or {}).get(role, {})}
            stack.processes[role] = await start_process(role, own, tmp / f"{role}.log")
        await wait_ready(stack.base_url, tmp / "gateway.log")
        yield stack
    finally:
        await asyncio.gather(*(stop_process(p) for p in stack.processes.values()))
        from aiokafka.errors import KafkaConnectionError  # not at import: see module doc

        from service.adapters.kafka_topics import delete_topics
        from service.config import Settings

        # A broker that is gone for good (an outage test's own) leaves nothing to clean up.
        with contextlib.suppress(KafkaConnectionError):
            await delete_topics(
                Settings(kafka_bootstrap_servers=bootstrap), env["KAFKA_TOPIC_PREFIX"]
            )
