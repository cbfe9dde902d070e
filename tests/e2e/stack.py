"""A real running stack for end-to-end tests: worker, relay and gateway as separate processes
(`sip-trunks worker|relay|gateway`, as `make run` starts them), on the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from service.entrypoints.gateway.tokens import READ_SCOPE, WRITE_SCOPE, mint_token
from tests.conftest import LIVEKIT_URL

ROLES = ("worker", "relay", "gateway")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    base_url: str
    env: dict[str, str]
    secret: str
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    def token(
        self, tenant: str = "acme", scopes: Iterable[str] = (READ_SCOPE, WRITE_SCOPE), **kw: int
    ) -> str:
        return mint_token(self.secret, tenant=tenant, scopes=scopes, **kw)

    def client(self, tenant: str | None = "acme", base_url: str = "") -> httpx.AsyncClient:
        """An HTTP client with a token of `tenant` (none: anonymous), on this or another gateway."""
        headers = {"Authorization": f"Bearer {self.token(tenant)}"} if tenant else {}
        return httpx.AsyncClient(base_url=base_url or self.base_url, headers=headers, timeout=30)


async def start_process(role: str, env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    """`sip-trunks <role>` as its own process, output appended to `log`."""
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service.entrypoints.cli",
            role,
            env=env,
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


async def wait_ready(base_url: str, log: Path, within: float = 60.0) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
        for _ in range(int(within * 5)):
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"gateway not ready in {within}s; log:\n{log.read_text()[-3000:]}")


@contextlib.asynccontextmanager
async def running_stack(
    tmp: Path, bootstrap: str, *, roles: Iterable[str] = ROLES, **overrides: str
) -> AsyncIterator[Stack]:
    run = uuid.uuid4().hex[:8]
    port = free_port()
    secret = secrets.token_urlsafe(32)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC_PREFIX": f"e2e-{run}.",
        "KAFKA_CONSUMER_GROUP": f"e2e-{run}",
        "DATA_DIR": str(tmp),
        "GATEWAY_PORT": str(port),
        "AUTH_JWT_SECRET": secret,
        "LOG_FORMAT": "json",
        "PROVIDER": "livekit",
        "LIVEKIT_URL": LIVEKIT_URL,
        "LIVEKIT_OWNER": f"e2e-{run}",
        "RECONCILE_INTERVAL_S": "0",
        **overrides,
    }
    log = tmp / "stack.log"
    topics = await start_process("topics", env, log)
    assert await topics.wait() == 0, log.read_text()
    stack = Stack(f"http://127.0.0.1:{port}", env, secret)
    try:
        for role in roles:
            stack.processes[role] = await start_process(role, env, tmp / f"{role}.log")
        await wait_ready(stack.base_url, tmp / "gateway.log")
        yield stack
    finally:
        await asyncio.gather(*(stop_process(p) for p in stack.processes.values()))
