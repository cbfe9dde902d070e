"""Every Kafka client of every process is built here, from the settings.

One place turns `Settings` into connection options (the bootstrap list, TLS, SASL), so no
process can connect differently from the others. FastStream takes the list as a list: a
comma-separated string would be one host name to it. FastStream's security object is the one
description of TLS and SASL: the aiokafka clients get the options FastStream derives from it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient
from aiokafka.helpers import create_ssl_context
from faststream.kafka import KafkaBroker
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from service.config import Settings
from service.logs import get_logger

__all__ = [
    "InstanceIdInUse",
    "WorkerMembership",
    "admin",
    "broker",
    "client",
    "connected_client",
    "connection_options",
    "consumer",
    "producer",
    "worker_membership",
]

log = get_logger(__name__)

_REQUEST_TIMEOUT_MS = 15000
# Host-wide: every worker process of this user on this machine, whatever its DATA_DIR.
_SLOT_DIR = Path(tempfile.gettempdir()) / f"sip-trunks-worker-ids-{os.getuid()}"
_MAX_SLOTS = 1024
_SASL = {"SCRAM-SHA-512": SASLScram512, "SCRAM-SHA-256": SASLScram256, "PLAIN": SASLPlaintext}


def _security(settings: Settings) -> BaseSecurity | None:
    """TLS and SASL as the settings ask (validated there: SASL has its credentials)."""
    protocol = settings.kafka_security_protocol
    context = None
    if protocol.endswith("SSL"):
        # Verifies the broker's certificate and host name; the system's CAs without a CA file.
        context = create_ssl_context(
            cafile=_str(settings.kafka_ssl_ca_file),
            certfile=_str(settings.kafka_ssl_cert_file),
            keyfile=_str(settings.kafka_ssl_key_file),
        )
    username, password = settings.kafka_sasl_username, settings.kafka_sasl_password
    if protocol.startswith("SASL_") and username and password:  # validated: both are set
        return _SASL[settings.kafka_sasl_mechanism](
            username,
            password.get_secret_value(),
            ssl_context=context,
            use_ssl=context is not None,
        )
    return BaseSecurity(ssl_context=context, use_ssl=context is not None)


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def connection_options(settings: Settings) -> dict[str, Any]:
    """What every aiokafka client needs to reach the cluster and be let in (for the clients
    this module does not build, such as the tests' outside producer)."""
    return {
        "bootstrap_servers": settings.kafka_bootstrap_list,
        **parse_security(_security(settings)),
    }


def producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent producer (implies acks=all): a retried send is not written twice, and
    order per partition holds across retries. `overrides` tune it (linger, timeouts)."""
    options: dict[str, Any] = {
        "enable_idempotence": True,
        "linger_ms": 2,
        "request_timeout_ms": _REQUEST_TIMEOUT_MS,
        **overrides,
    }
    return AIOKafkaProducer(**connection_options(settings), **options)


def consumer(settings: Settings, *topics: str, **options: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(*topics, **connection_options(settings), **options)


def admin(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**connection_options(settings))


def client(settings: Settings) -> AIOKafkaClient:
    """A bare protocol client (`connected_client` bootstraps and closes it): for the requests
    no consumer makes, such as fetching a partition's raw record batches or the ACL calls."""
    return AIOKafkaClient(**connection_options(settings), request_timeout_ms=_REQUEST_TIMEOUT_MS)


@asynccontextmanager
async def connected_client(settings: Settings) -> AsyncIterator[AIOKafkaClient]:
    """A bare client (`client`), bootstrapped, closed on exit (a failed bootstrap included)."""
    bare = client(settings)
    try:
        await bare.bootstrap()
        yield bare
    finally:
        await bare.close()


def broker(settings: Settings, **options: Any) -> KafkaBroker:
    """The worker's FastStream broker; `options` are KafkaBroker's own (logger, ...)."""
    return KafkaBroker(
        settings.kafka_bootstrap_list,
        security=_security(settings),
        allow_auto_create_topics=False,  # topics are created by ensure_topics, with their configs
        request_timeout_ms=_REQUEST_TIMEOUT_MS,
        **options,
    )


class InstanceIdInUse(RuntimeError):
    """Another worker on this host already runs under this group instance id."""


class WorkerMembership(ConsumerRebalanceListener):  # type: ignore[misc]
    """The worker's static membership of its consumer group (KIP-345).

    Holds an exclusive lock on its instance id on this host for as long as it lives (the
    kernel drops the lock when the process dies, even by SIGKILL), so two workers here never
    share an id; a restarted worker finds the id of the one it replaces free. Also the
    subscriber's rebalance listener: it logs the partitions each assignment gives it.
    """

    def __init__(self, group_id: str, instance_id: str, lock_fd: int) -> None:
        self.group_id = group_id
        self.instance_id = instance_id
        self._lock_fd = lock_fd
        log.info("worker.joining_group", group=group_id, instance_id=instance_id)

    def __del__(self) -> None:
        os.close(self._lock_fd)

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: set[Any]) -> None:
        log.info(
            "worker.partitions_assigned",
            instance_id=self.instance_id,
            partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in assigned),
        )


def worker_membership(settings: Settings) -> WorkerMembership:
    """Claim this worker's group instance id: WORKER_INSTANCE_ID, or `<hostname>-<n>` with the
    lowest `n` no other worker of the group holds on this host.

    Raises InstanceIdInUse when WORKER_INSTANCE_ID is held here already: joining would fence
    the running worker, which would rejoin and fence this one, back and forth.
    """
    group = settings.kafka_consumer_group
    _SLOT_DIR.mkdir(mode=0o700, exist_ok=True)
    if settings.worker_instance_id is not None:
        fd = _try_lock(group, settings.worker_instance_id)
        if fd is None:
            log.error(
                "worker.instance_id_in_use",
                instance_id=settings.worker_instance_id,
                group=group,
                hint="each worker of a group needs its own WORKER_INSTANCE_ID",
            )
            raise InstanceIdInUse(
                f"WORKER_INSTANCE_ID={settings.worker_instance_id!r} is in use by another "
                f"worker of group {group!r} on this host"
            )
        return WorkerMembership(group, settings.worker_instance_id, fd)
    host = socket.gethostname()
    for n in range(_MAX_SLOTS):
        instance_id = f"{host}-{n}"
        fd = _try_lock(group, instance_id)
        if fd is not None:
            return WorkerMembership(group, instance_id, fd)
    raise InstanceIdInUse(f"{_MAX_SLOTS} workers of group {group!r} on this host already")


def _try_lock(group: str, instance_id: str) -> int | None:
    """An open descriptor holding the lock of (group, instance id), or None if it is taken."""
    digest = hashlib.sha256(f"{group}\0{instance_id}".encode()).hexdigest()[:32]
    fd = os.open(_SLOT_DIR / f"{digest}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
