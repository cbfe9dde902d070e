"""Issue 9's Kafka-side attack on the REST API, against the running stack: a producer that can
write the commands topic but does not hold the gateway's signing key publishes a command in the
gateway's name with the id the gateway derives from a tenant's Idempotency-Key.

Before: the worker answered it and remembered its id, so the tenant's later POST with that key
got the forger's outcome (or `idempotency_key_reused`). Now it goes to the DLT unanswered, and
the POST creates the tenant's own trunk."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import TopicPartition
from sip_trunk_contracts import CommandEnvelope

from service.adapters import kafka_clients
from service.bootstrap import GATEWAY_SOURCE, password_seal_key
from service.config import Settings
from service.entrypoints.gateway.commands import create_command
from tests.e2e.stack import Stack
from tests.e2e.test_rest_api import BASE, trunk_body


def stack_settings(stack: Stack) -> Settings:
    return Settings(
        kafka_bootstrap_servers=stack.env["KAFKA_BOOTSTRAP_SERVERS"],
        kafka_topic_prefix=stack.env["KAFKA_TOPIC_PREFIX"],
        data_dir=stack.env["DATA_DIR"],
    )


async def dead_letter_reason(settings: Settings, command_id: str) -> str:
    """The `kafka_dlt-exception-message` of the DLT record of `command_id` (waits for it)."""
    consumer = kafka_clients.consumer(settings, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(settings.topics.dlt, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        async with asyncio.timeout(20):
            while True:
                for record in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                    headers = dict(record.headers)
                    if headers.get("ce_id") == command_id.encode():
                        return headers["kafka_dlt-exception-message"].decode()
    finally:
        await consumer.stop()


async def test_a_forged_gateway_command_cannot_take_a_tenants_idempotency_key(
    stack: Stack,
) -> None:
    settings = stack_settings(stack)
    key = f"key-{uuid.uuid4()}"
    gateways = [{"ipOrDomain": "sip.attacker.example", "name": "evil"}]
    genuine = create_command(
        "acme", {"name": "Forged", "gateways": gateways}, key, seal_key=password_seal_key(settings)
    )
    # The same ce_source and ce_id the gateway will use, without the gateway's signature.
    forged = CommandEnvelope.create(
        {"name": "Forged", "gateways": gateways},
        trunk_id=genuine.trunk_id,
        tenant_id="acme",
        source=GATEWAY_SOURCE,
        command_id=genuine.command_id,
    )
    producer = kafka_clients.producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topics.commands,
            forged.value(),
            key=forged.key_bytes(),
            headers=forged.kafka_headers(),
        )
    finally:
        await producer.stop()
    reason = await dead_letter_reason(settings, genuine.command_id)
    assert "'/gateway' is reserved to a trusted producer" in reason

    async with stack.client("acme") as api:
        created = await api.post(
            BASE, json=trunk_body(name="Mine"), headers={"Idempotency-Key": key}
        )
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "Mine"
