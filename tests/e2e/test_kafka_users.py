"""The running stack with each process as its own Kafka user, granted the ACL plan and nothing
else: REST, `sip-trunks send` and the dead letters all work (tests/e2e/conftest.py starts it)."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path

import pytest

from service.adapters import kafka_clients
from service.adapters.kafka_acls import Resource, acl_plan, describe_acls
from service.config import Settings
from tests.conftest import kafka_user_env, needs_kafka_acls
from tests.e2e.stack import Stack
from tests.e2e.test_rest_api import BASE, trunk_body

pytestmark = [needs_kafka_acls, pytest.mark.timeout(90)]


def deployment(stack: Stack, user: str | None = None) -> Settings:
    """The stack's settings, as the tests' super user or as `user`."""
    names = {
        "kafka_topic_prefix": stack.env["KAFKA_TOPIC_PREFIX"],
        "kafka_consumer_group": stack.env["KAFKA_CONSUMER_GROUP"],
    }
    if user is not None:
        env = kafka_user_env(user)
        names |= {
            "kafka_sasl_username": env["KAFKA_SASL_USERNAME"],
            "kafka_sasl_password": env["KAFKA_SASL_PASSWORD"],
        }
    return Settings(**names)


async def test_each_process_is_its_own_user_granted_the_plan_only(stack: Stack) -> None:
    for role, process in stack.processes.items():
        environ = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
        assert f"KAFKA_SASL_USERNAME={role}".encode() in environ
    admin = deployment(stack)
    topics = admin.topics
    resources = [(Resource.TOPIC, name) for name in (topics.commands, topics.events)]
    resources += [(Resource.TOPIC, topics.state), (Resource.TOPIC, topics.dlt)]
    found = await describe_acls(admin, [*resources, (Resource.GROUP, admin.kafka_consumer_group)])
    assert found == set(acl_plan(topics, admin.kafka_consumer_group))

    async with stack.client() as api:  # gateway -> worker -> relay -> gateway
        created = await api.post(BASE, json=trunk_body())
        assert created.status_code == 201, created.text
        assert (await api.get(f"{BASE}/{created.json()['id']}")).status_code == 200


async def test_the_cli_user_sends_commands_and_reads_the_dead_letters(stack: Stack) -> None:
    cli = deployment(stack, "cli")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.entrypoints.cli",
        "send",
        "create",
        "--tenant",
        "acme",
        "--data",
        json.dumps(trunk_body()),
        env={**stack.env, **kafka_user_env("cli")},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, output.decode()
    assert json.loads(output)["type"] == "sip_trunks.TrunkCreated.v1"

    # Not a command: the worker, as `worker`, dead-letters it; `cli` may read the DLT.
    key = str(uuid.uuid4()).encode()
    producer = kafka_clients.producer(cli)
    await producer.start()
    try:
        await producer.send_and_wait(cli.topics.commands, b"not json", key=key)
    finally:
        await producer.stop()
    consumer = kafka_clients.consumer(
        cli, cli.topics.dlt, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            async for record in consumer:
                if record.key == key:  # the value withheld: it might hold a password
                    assert record.value is None
                    assert dict(record.headers)["kafka_dlt-value-length"] == b"8"
                    break
    finally:
        await consumer.stop()
