"""Every Kafka client of every process is built here, from the settings.

One place turns `Settings` into connection options (the bootstrap list today; TLS and SASL
tomorrow), so no process can connect differently from the others. FastStream takes the list
as a list: a comma-separated string would be one host name to it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient
from faststream.kafka import KafkaBroker

from service.config import Settings
from service.logs import get_logger

__all__ = [
    "InstanceIdInUse",
    "WorkerMembership",
    "admin",
    "broker",
    "client",
    "consumer",
    "producer",
    "worker_membership",
]

log = get_logger(__name__)

_REQUEST_TIMEOUT_MS = 15000
# Host-wide: every worker process of this user on this machine, whatever its DATA_DIR.
_SLOT_DIR = Path(tempfile.gettempdir()) / f"sip-trunks-worker-ids-{os.getuid()}"
_MAX_SLOTS = 1024


def _connection(settings: Settings) -> dict[str, Any]:
    """What every client needs to reach the cluster."""
    return {"bootstrap_servers": settings.kafka_bootstrap_list}


def producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent producer (implies acks=all): a retried send is not written twice, and
    order per partition holds across retries. `overrides` tune it (linger, timeouts)."""
    options: dict[str, Any] = {
        "enable_idempotence": True,
        "linger_ms": 2,
        "request_timeout_ms": _REQUEST_TIMEOUT_MS,
        **overrides,
    }
    return AIOKafkaProducer(**_connection(settings), **options)


def consumer(settings: Settings, *topics: str, **options: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(*topics, **_connection(settings), **options)


def admin(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**_connection(settings))


def client(settings: Settings) -> AIOKafkaClient:
    """A bare protocol client (bootstrap it, close it): for the requests no consumer makes,
    such as fetching a partition's raw record batches (service/adapters/unreadable_records.py)."""
    return AIOKafkaClient(**_connection(settings), request_timeout_ms=_REQUEST_TIMEOUT_MS)


def broker(settings: Settings, **options: Any) -> KafkaBroker:
    """The worker's FastStream broker; `options` are KafkaBroker's own (logger, ...)."""
    return KafkaBroker(
        settings.kafka_bootstrap_list,
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
