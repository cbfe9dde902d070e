"""The bootstrap list is parsed once, in Settings; the worker's group instance id is its own."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.adapters import kafka_clients
from service.config import Settings


@pytest.mark.parametrize(
    ("setting", "servers"),
    [
        ("127.0.0.1:9092", ["127.0.0.1:9092"]),
        ("k1:9092,k2:9093,k3:9094", ["k1:9092", "k2:9093", "k3:9094"]),
        (" k1:9092 , k2:9092 ", ["k1:9092", "k2:9092"]),
        ("[::1]:9092,kafka.example.com:19092", ["[::1]:9092", "kafka.example.com:19092"]),
    ],
)
def test_the_bootstrap_setting_becomes_a_list(setting: str, servers: list[str]) -> None:
    settings = Settings(kafka_bootstrap_servers=setting)
    assert settings.kafka_bootstrap_list == servers
    assert settings.kafka_bootstrap_servers == ",".join(servers)


def test_the_bootstrap_list_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "host1:9092,host2:9092")
    assert Settings().kafka_bootstrap_list == ["host1:9092", "host2:9092"]


@pytest.mark.parametrize(
    ("setting", "why"),
    [
        ("", "empty entry"),
        ("k1:9092,,k2:9092", "empty entry"),
        ("k1:9092, ", "empty entry"),
        ("k1", "not host:port"),
        ("k1:", "not host:port"),
        (":9092", "not host:port"),
        ("k1:port", "not host:port"),
        ("k1:0", "not host:port"),
        ("k1:65536", "not host:port"),
        ("k 1:9092", "contains a blank"),
    ],
)
def test_a_bad_bootstrap_list_is_refused_with_the_reason(setting: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        Settings(kafka_bootstrap_servers=setting)


async def test_every_client_gets_the_list() -> None:
    settings = Settings(kafka_bootstrap_servers="k1:9092,k2:9092")
    # FastStream would pass a comma string on as one host: ["k1:9092,k2:9092"].
    consumer_options = kafka_clients.broker(settings).config.broker_config.builder.keywords
    assert consumer_options["bootstrap_servers"] == ["k1:9092", "k2:9092"]
    producer = kafka_clients.producer(settings)
    assert producer.client._bootstrap_servers == ["k1:9092", "k2:9092"]
    assert producer._txn_manager is not None  # idempotent
    consumer = kafka_clients.consumer(settings, group_id=None)
    assert consumer._client._bootstrap_servers == ["k1:9092", "k2:9092"]


def group() -> str:
    return f"test-group-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def private_lock_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The instance-id locks of these tests live in their own folder, not the host's."""
    monkeypatch.setattr(kafka_clients, "_SLOT_DIR", tmp_path / "worker-ids")


def test_workers_on_one_host_get_distinct_instance_ids_and_a_successor_reuses_one() -> None:
    settings = Settings(kafka_consumer_group=group())
    first = kafka_clients.worker_membership(settings)
    second = kafka_clients.worker_membership(settings)
    host = socket.gethostname()
    assert (first.instance_id, second.instance_id) == (f"{host}-0", f"{host}-1")
    del first  # as the process holding it dies: its id is free for the worker replacing it
    assert kafka_clients.worker_membership(settings).instance_id == f"{host}-0"
    del second


def test_an_explicit_instance_id_held_by_another_worker_fails_loudly() -> None:
    settings = Settings(kafka_consumer_group=group(), worker_instance_id="worker-a")
    running = kafka_clients.worker_membership(settings)
    assert running.instance_id == "worker-a"
    with pytest.raises(kafka_clients.InstanceIdInUse, match="worker-a"):
        kafka_clients.worker_membership(settings)
    other_group = Settings(kafka_consumer_group=group(), worker_instance_id="worker-a")
    assert kafka_clients.worker_membership(other_group).instance_id == "worker-a"
