"""504 and 503 on a stack of its own: a gateway without a worker, on a private broker that the
test then stops (the shared broker keeps serving the other tests)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.conftest import env_file
from tests.e2e.stack import Stack, free_port, running_stack
from tests.e2e.test_rest_api import BASE, problem, trunk_body

ROOT = Path(__file__).resolve().parents[2]


async def kafka(action: str, env: dict[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(
        str(ROOT / "dev" / "kafka.sh"),
        action,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()


@pytest_asyncio.fixture
async def lonely_gateway(tmp_path: Path) -> AsyncIterator[tuple[Stack, dict[str, str]]]:
    port = free_port()
    broker_env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    broker_env |= {
        "SIP_DEV_STATE": str(tmp_path / "state"),
        "DEV_KAFKA_PORT": str(port),
        "DEV_KAFKA_CONTROLLER_PORT": str(free_port()),
        "DEV_KAFKA_TLS_PORT": str(free_port()),
    }
    await kafka("start", broker_env)
    try:
        async with running_stack(
            tmp_path,
            f"127.0.0.1:{port}",
            roles=["gateway"],
            GATEWAY_REPLY_TIMEOUT_S="1",
            GATEWAY_PUBLISH_TIMEOUT_S="2",
            # Its own users (or none, on a plaintext dev broker).
            **env_file(tmp_path / "state" / "kafka" / "env" / "admin.env"),
        ) as stack:
            yield stack, broker_env
    finally:
        await kafka("stop", broker_env)


async def test_no_outcome_in_time_is_504_then_broker_down_is_503(
    lonely_gateway: tuple[Stack, dict[str, str]],
) -> None:
    stack, broker_env = lonely_gateway
    async with stack.client() as api:
        # No worker consumes this stack's commands: the reply never comes.
        doc = problem(await api.post(BASE, json=trunk_body()), 504, "timeout")
        assert doc["commandId"]

        await kafka("stop", broker_env)
        started = time.monotonic()
        problem(await api.post(BASE, json=trunk_body()), 503, "broker_unavailable")
        assert time.monotonic() - started < 10  # quickly, not a hang
        assert (await api.get("/readyz")).status_code == 503
        assert (await api.get("/healthz")).status_code == 200


pytestmark = pytest.mark.timeout(180)
