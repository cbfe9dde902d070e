"""Creates the service's topics explicitly (the broker must not invent them on first use)."""

from __future__ import annotations

import asyncio
from collections.abc import Set

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from service.adapters import kafka_clients
from service.config import Settings
from service.logs import get_logger

__all__ = ["delete_topics", "ensure_topics", "restore_topics", "topic_specs"]

log = get_logger(__name__)


def topic_specs(settings: Settings) -> list[NewTopic]:
    topics = settings.topics
    partitions, replicas = settings.kafka_partitions, settings.kafka_replication_factor
    # Per-trunk order holds on any partition count since everything is keyed by trunk id.
    return [
        NewTopic(topics.commands, partitions, replicas),
        NewTopic(topics.events, partitions, replicas),
        NewTopic(
            topics.state,
            partitions,
            replicas,
            topic_configs={"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1"},
        ),
        NewTopic(topics.dlt, 1, replicas),
    ]


async def ensure_topics(settings: Settings, names: Set[str] | None = None) -> list[str]:
    """Create the missing topics (of `names` only, if given); return the names created (empty
    when all existed). Listing shows only the topics this principal may describe; creating
    needs Create on them (service/adapters/kafka_acls.py)."""
    admin = kafka_clients.admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            spec
            for spec in topic_specs(settings)
            if spec.name not in existing and (names is None or spec.name in names)
        ]
        if missing:
            response = await admin.create_topics(missing)
            # create_topics reports per-topic errors in the response instead of raising them.
            for result in response.to_object()["topic_errors"]:
                if result["error_code"]:
                    error = for_code(result["error_code"])(result["error_message"])
                    if not isinstance(error, TopicAlreadyExistsError):  # a racing creator won
                        raise error
            await _wait_for_leaders(admin, [t.name for t in missing])
            log.info("kafka.topics_created", topics=[t.name for t in missing])
        return [t.name for t in missing]
    finally:
        await admin.close()


async def restore_topics(settings: Settings, names: Set[str]) -> Set[str]:
    """Recreate those of `names` that are this deployment's own topics (deleted by hand, or
    never created); return them. Topics it does not know of are not invented."""
    own = names & {spec.name for spec in topic_specs(settings)}
    if own:
        # Only those: the relay may create its own topics, not the commands topic or the DLT.
        await ensure_topics(settings, own)
    return own


async def delete_topics(settings: Settings, prefix: str) -> None:
    """Delete every topic whose name starts with `prefix`: a throwaway deployment's (the
    process launcher's stacks, the benches), never a shared one's."""
    admin = kafka_clients.admin(settings)
    await admin.start()
    try:
        names = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """New partitions need a leader before clients can use them without retrying."""
    for _ in range(100):
        described = await admin.describe_topics(names)
        if all(
            topic["error_code"] == 0 and all(p["leader"] >= 0 for p in topic["partitions"])
            for topic in described
        ):
            return
        await asyncio.sleep(0.1)
