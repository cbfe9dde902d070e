"""Kafka security settings are checked at start and reach every client; the ACL plan is literal."""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sip_trunk_contracts import Topics

from service.adapters import kafka_clients
from service.adapters.kafka_acls import PRINCIPALS, Operation, Resource, acl_plan
from service.config import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_kafka_security_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`make test` runs as the dev broker's admin: these tests set their own."""
    for name in ("SECURITY_PROTOCOL", "SASL_MECHANISM", "SASL_USERNAME", "SASL_PASSWORD"):
        monkeypatch.delenv(f"KAFKA_{name}", raising=False)
    for name in ("CA", "CERT", "KEY"):
        monkeypatch.delenv(f"KAFKA_SSL_{name}_FILE", raising=False)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"kafka_security_protocol": "SASL_PLAINTEXT"}, "needs KAFKA_SASL_USERNAME and"),
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "gateway"},
            "SASL_SSL needs KAFKA_SASL_PASSWORD",
        ),
        ({"kafka_sasl_username": "gateway", "kafka_sasl_password": "pw"}, "does not authenticate"),
        ({"kafka_ssl_ca_file": "/etc/hostname"}, "does not use TLS"),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_cert_file": "/etc/hostname"},
            "KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_ca_file": "/nowhere/ca.crt"},
            "KAFKA_SSL_CA_FILE=/nowhere/ca.crt: no such file",
        ),
        (
            {
                "kafka_security_protocol": "SASL_PLAINTEXT",
                "kafka_sasl_mechanism": "PLAIN",
                "kafka_sasl_username": "gateway",
                "kafka_sasl_password": "pw",
            },
            "PLAIN sends the password in the clear",
        ),
        ({"kafka_security_protocol": "SASL_INSECURE"}, "kafka_security_protocol"),
        ({"kafka_sasl_mechanism": "GSSAPI"}, "kafka_sasl_mechanism"),
    ],
)
def test_a_bad_security_setting_is_refused_saying_why(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as refused:
        Settings(**settings)
    assert "'pw'" not in str(refused.value)  # a refused setting never shows the password


def test_the_password_is_never_shown() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="worker",
        kafka_sasl_password="s3cret-kafka-pw",
    )
    assert "s3cret-kafka-pw" not in repr(settings)
    assert "s3cret-kafka-pw" not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("mechanism", "protocol"),
    [
        ("SCRAM-SHA-512", "SASL_PLAINTEXT"),
        ("SCRAM-SHA-256", "SASL_SSL"),
        ("PLAIN", "SASL_SSL"),
    ],
)
async def test_every_client_authenticates_as_the_settings_say(
    mechanism: str, protocol: str
) -> None:
    settings = Settings(
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="relay",
        kafka_sasl_password="pw",
    )
    expected = {
        "security_protocol": protocol,
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "relay",
        "sasl_plain_password": "pw",
    }
    broker = kafka_clients.broker(settings).config.broker_config.builder.keywords
    producer = kafka_clients.producer(settings).client
    consumer = kafka_clients.consumer(settings, group_id=None)._client
    admin = kafka_clients.admin(settings)._client
    bare = kafka_clients.client(settings)
    for options in [broker, *(vars(c) for c in (producer, consumer, admin, bare))]:
        given = {k: options.get(k, options.get(f"_{k}")) for k in expected}
        assert given == expected
        context = options.get("ssl_context", options.get("_ssl_context"))
        assert isinstance(context, ssl.SSLContext) == protocol.endswith("SSL")


def test_tls_verifies_the_broker_with_the_given_ca() -> None:
    import certifi  # any CA bundle will do for loading

    settings = Settings(kafka_security_protocol="SSL", kafka_ssl_ca_file=certifi.where())
    context = kafka_clients.connection_options(settings)["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0


def test_plaintext_by_default() -> None:
    options = kafka_clients.connection_options(Settings())
    assert options["security_protocol"] == "PLAINTEXT"
    assert options["ssl_context"] is None


def test_the_acl_plan_names_every_resource_literally_and_only_its_own() -> None:
    topics = Topics.with_prefix("t1.")
    plan = acl_plan(topics, "group-1")
    own = {topics.commands, topics.events, topics.state, topics.dlt}
    assert {acl.name for acl in plan if acl.resource is Resource.TOPIC} == own
    assert {acl.name for acl in plan if acl.resource is Resource.GROUP} == {"group-1"}
    assert {acl.principal for acl in plan} == {f"User:{role}" for role in PRINCIPALS}
    writes = [acl for acl in plan if acl.operation is Operation.WRITE]
    writers = {name: {acl.principal for acl in writes if acl.name == name} for name in own}
    assert writers == {
        topics.commands: {"User:gateway", "User:cli"},
        topics.events: {"User:relay"},
        topics.state: {"User:relay"},
        topics.dlt: {"User:worker"},
    }
    renamed = acl_plan(topics, "group-1", {"gateway": "sip-gw"})
    assert {acl.principal for acl in renamed} == {"User:sip-gw"} | {
        f"User:{role}" for role in PRINCIPALS if role != "gateway"
    }


def test_the_dev_broker_has_a_user_for_every_role() -> None:
    script = (ROOT / "dev" / "kafka.sh").read_text()
    match = re.search(r"^USERS=\((.*)\)$", script, re.MULTILINE)
    assert match is not None
    assert match.group(1).split() == ["admin", *PRINCIPALS]
