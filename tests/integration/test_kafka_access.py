"""Access control on the real broker (SASL/SCRAM, TLS, ACLs of service/adapters/kafka_acls.py):
who may connect, write and read what, on topics of this test's own."""

from __future__ import annotations

import asyncio
import datetime
import logging
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import TopicPartition
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from service.adapters import kafka_clients
from service.adapters.kafka_acls import (
    PRINCIPALS,
    Acl,
    Operation,
    Resource,
    acl_plan,
    apply_acls,
    describe_acls,
)
from service.adapters.kafka_topics import ensure_topics, topic_specs
from service.config import Settings
from tests.conftest import DEV_KAFKA_ENV, env_file, kafka_user_env, needs_kafka_acls
from tests.integration.kafka_stack import isolated_settings

pytestmark = [needs_kafka_acls, pytest.mark.timeout(60)]

TOPICS = ("commands", "events", "state", "dlt")


@pytest_asyncio.fixture(scope="module")
async def admin(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The super user's settings, on topics of these tests' own with the ACL plan granted."""
    settings = isolated_settings(tmp_path_factory.mktemp("access"), "access")
    await ensure_topics(settings)
    await apply_acls(settings, acl_plan(settings.topics, settings.kafka_consumer_group))
    return settings


def as_user(settings: Settings, user: str, **changes: Any) -> Settings:
    """The same deployment's settings for another Kafka user (its dev broker settings)."""
    env = kafka_user_env(user)
    fields = {
        "kafka_sasl_username": env["KAFKA_SASL_USERNAME"],
        "kafka_sasl_password": env["KAFKA_SASL_PASSWORD"],
    }
    return Settings(**{**settings.model_dump(), **fields, **changes})


def topic(settings: Settings, name: str) -> str:
    return str(getattr(settings.topics, name))


async def end_offsets(admin: Settings, name: str) -> int:
    """How many messages the topic holds (as admin)."""
    [spec] = [spec for spec in topic_specs(admin) if spec.name == topic(admin, name)]
    consumer = kafka_clients.consumer(admin, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(spec.name, p) for p in range(spec.num_partitions)]
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


@pytest.mark.parametrize(
    ("user", "password"), [("reader", "not-its-password"), ("intruder", "any-password")]
)
async def test_a_wrong_password_or_an_unknown_user_is_refused_at_once(
    admin: Settings, user: str, password: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = as_user(admin, "reader", kafka_sasl_username=user, kafka_sasl_password=password)
    producer = kafka_clients.producer(settings)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, "aiokafka"), pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
    assert time.monotonic() - started < 5
    assert "Authentication failed during authentication due to invalid credentials" in caplog.text


async def test_a_process_with_a_wrong_password_exits_saying_why(admin: Settings) -> None:
    assert DEV_KAFKA_ENV
    env = {**env_file(Path(DEV_KAFKA_ENV) / "worker.env"), "KAFKA_SASL_PASSWORD": "wrong-one!"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.entrypoints.cli",
        "topics",
        env={"PATH": "/usr/bin:/bin", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode != 0
    assert b"SaslAuthenticationFailed: Authentication failed" in output
    assert b"wrong-one!" not in output


@pytest.mark.parametrize("user", PRINCIPALS)
async def test_each_user_writes_only_the_topics_its_acls_name(admin: Settings, user: str) -> None:
    plan = acl_plan(admin.topics, admin.kafka_consumer_group)
    # A plain producer, as any outside client: no idempotence, which needs a cluster right.
    producer = kafka_clients.producer(as_user(admin, user), enable_idempotence=False, acks=1)
    await producer.start()
    try:
        for name in TOPICS:
            allowed = Acl(f"User:{user}", Resource.TOPIC, topic(admin, name), Operation.WRITE)
            before = await end_offsets(admin, name)
            if allowed in plan:
                await producer.send_and_wait(topic(admin, name), b"{}", key=b"k")
                assert await end_offsets(admin, name) == before + 1
            else:
                with pytest.raises(TopicAuthorizationFailedError):
                    await producer.send_and_wait(topic(admin, name), b"{}", key=b"k")
                assert await end_offsets(admin, name) == before
    finally:
        await producer.stop()


async def send_idempotently(settings: Settings, name: str) -> None:
    """One message, by a producer as the service's are (idempotent, which asks for an id)."""
    producer = kafka_clients.producer(settings)
    try:
        await producer.start()  # the producer id is asked for here, or with the first send
        await producer.send_and_wait(name, b"{}", key=b"k")
    finally:
        await producer.stop()


async def test_the_reader_cannot_write_commands_even_idempotently(admin: Settings) -> None:
    before = await end_offsets(admin, "commands")
    # Refused twice over, whichever the producer asks first: no producer id (it has Write on no
    # topic, which would imply the right) and no access to the topic.
    with pytest.raises((ClusterAuthorizationFailedError, TopicAuthorizationFailedError)):
        await send_idempotently(as_user(admin, "reader"), admin.topics.commands)
    assert await end_offsets(admin, "commands") == before


async def test_the_gateway_cannot_write_events(admin: Settings) -> None:
    before = await end_offsets(admin, "events")
    producer = kafka_clients.producer(as_user(admin, "gateway"))  # the gateway's own producer
    await producer.start()
    try:
        await producer.send_and_wait(admin.topics.commands, b"{}", key=b"k")  # its job
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(admin.topics.events, b"{}", key=b"k")
    finally:
        await producer.stop()
    assert await end_offsets(admin, "events") == before


async def poll(settings: Settings, name: str) -> None:
    """Subscribe to the topic (no group, as the gateway and `watch`) and fetch once."""
    consumer = kafka_clients.consumer(
        settings, name, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        await consumer.start()
        await consumer.getmany(timeout_ms=500)
    finally:
        await consumer.stop()


@pytest.mark.parametrize("user", PRINCIPALS)
async def test_each_user_reads_only_the_topics_its_acls_name(admin: Settings, user: str) -> None:
    plan = acl_plan(admin.topics, admin.kafka_consumer_group)
    for name in TOPICS:
        allowed = Acl(f"User:{user}", Resource.TOPIC, topic(admin, name), Operation.READ)
        if allowed in plan:
            await poll(as_user(admin, user), topic(admin, name))
        else:
            with pytest.raises(TopicAuthorizationFailedError):
                await poll(as_user(admin, user), topic(admin, name))


async def test_the_brokers_acls_are_the_plan_exactly_and_literal(admin: Settings) -> None:
    plan = acl_plan(admin.topics, admin.kafka_consumer_group)
    resources = [(Resource.TOPIC, topic(admin, name)) for name in TOPICS]
    # MATCH: every ACL that applies, a prefixed one (which would reach the DLT) included.
    found = await describe_acls(admin, [*resources, (Resource.GROUP, admin.kafka_consumer_group)])
    assert found == set(plan)
    assert {acl.principal for acl in found} == {f"User:{role}" for role in PRINCIPALS}


async def test_the_tls_listener_takes_the_dev_ca_and_refuses_another(
    admin: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert DEV_KAFKA_ENV
    tls = env_file(Path(DEV_KAFKA_ENV).parent / "client-tls.env")
    assert tls["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    fields = {name.lower(): value for name, value in tls.items()}
    settings = Settings(**{**admin.model_dump(), **fields})
    client = kafka_clients.admin(settings)
    await client.start()
    try:
        assert set(await client.list_topics()) >= {admin.topics.commands, admin.topics.dlt}
    finally:
        await client.close()

    other_ca = tmp_path / "other-ca.crt"
    other_ca.write_bytes(self_signed_ca())
    refused = kafka_clients.admin(Settings(**{**fields, "kafka_ssl_ca_file": other_ca}))
    with caplog.at_level(logging.ERROR, "aiokafka"), pytest.raises(KafkaConnectionError):
        await refused.start()
    await refused.close()
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


def self_signed_ca() -> bytes:
    """A CA certificate (PEM) that signed nothing of the broker's."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not the dev CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.PEM)
