"""The Kafka ACL plan: which principal may do what on this deployment's topics and group.

One function of the topic names (they carry KAFKA_TOPIC_PREFIX) and the worker's consumer group,
applied with a super user's credentials (`sip-trunks acls`). Every resource is named LITERALLY:
a prefix `sip-trunks.commands` would also match `sip-trunks.commands.DLT`. Since Kafka 2.8, Write
on a topic implies IdempotentWrite, and Read or Write implies Describe.

aiokafka's admin client has no ACL calls; its protocol module has the requests, sent here over a
bare client from the one factory (kafka_clients).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

from aiokafka.errors import for_code
from aiokafka.protocol.admin import CreateAclsRequest, DescribeAclsRequest
from sip_trunk_contracts import Topics

from service.adapters import kafka_clients
from service.config import Settings

__all__ = ["PRINCIPALS", "Acl", "Operation", "Resource", "acl_plan", "apply_acls", "describe_acls"]

# The principals of the service's processes and of its users; dev/kafka.sh makes one SCRAM
# user for each (and the super user `admin`).
PRINCIPALS = ("gateway", "worker", "relay", "reader", "cli")


class Resource(IntEnum):  # Kafka's ResourceType
    TOPIC = 2
    GROUP = 3


class Operation(IntEnum):  # Kafka's AclOperation
    ANY = 1
    READ = 3
    WRITE = 4
    CREATE = 5
    DESCRIBE = 8


_LITERAL, _MATCH = 3, 2  # PatternType
_ANY_PERMISSION, _ALLOW = 1, 3  # AclPermissionType


@dataclass(frozen=True, order=True)
class Acl:
    """ALLOW `operation` on the LITERAL `resource` `name` for `principal`, from any host."""

    principal: str
    resource: Resource
    name: str
    operation: Operation

    def __str__(self) -> str:
        return f"{self.principal:<14} {self.operation.name:<9} {self.resource.name:<6} {self.name}"


def acl_plan(topics: Topics, group: str, users: Mapping[str, str] | None = None) -> list[Acl]:
    """Every ACL the processes need, no more. `users` names each role's Kafka user (default:
    the role's name)."""
    commands, events, state, dlt = topics.commands, topics.events, topics.state, topics.dlt
    topic, read, write = Resource.TOPIC, Operation.READ, Operation.WRITE
    grants: dict[str, list[tuple[Resource, str, Operation]]] = {
        # Publishes commands; its read model reads outcomes and snapshots by assign(), no group.
        "gateway": [(topic, commands, write), (topic, events, read), (topic, state, read)],
        # Consumes commands in its group (the unreadable-record fetch reads them too), dead-
        # letters what it cannot read, and creates the topics missing at start (ensure_topics
        # lists them first: Describe on those it neither reads nor writes).
        "worker": [
            (topic, commands, read),
            (Resource.GROUP, group, read),
            (topic, dlt, write),
            (topic, events, Operation.DESCRIBE),
            (topic, state, Operation.DESCRIBE),
            *[(topic, name, Operation.CREATE) for name in (commands, events, state, dlt)],
        ],
        # Publishes the outbox; recreates its topics when deleted by hand (restore_topics).
        "relay": [
            (topic, events, write),
            (topic, state, write),
            (topic, events, Operation.CREATE),
            (topic, state, Operation.CREATE),
        ],
        # A subscriber: outcomes and snapshots only (assign() or `sip-trunks watch`, no group).
        "reader": [(topic, events, read), (topic, state, read)],
        # `sip-trunks send` (a producer, as the gateway) and `watch` of every topic.
        "cli": [
            (topic, commands, write),
            *[(topic, name, read) for name in (commands, events, state, dlt)],
        ],
    }
    users = users or {}
    return sorted(
        Acl(f"User:{users.get(role, role)}", resource, name, operation)
        for role, grant in grants.items()
        for resource, name, operation in grant
    )


async def apply_acls(settings: Settings, acls: Iterable[Acl]) -> None:
    """Create `acls` (present ones are left as they are) as the settings' principal, which must
    be allowed to (a super user). Raises the broker's error of the first one refused."""
    async with kafka_clients.connected_client(settings) as client:
        for acl in acls:
            request = CreateAclsRequest(
                acl.resource, acl.name, _LITERAL, acl.principal, "*", acl.operation, _ALLOW
            )
            response = await client.send(client.get_random_node(), request)
            [(code, message)] = response.creation_responses
            if code:
                raise for_code(code)(f"{acl}: {message}")


async def describe_acls(settings: Settings, resources: Iterable[tuple[Resource, str]]) -> set[Acl]:
    """Every ALLOW ACL that applies to these resources (literal, prefixed or wildcard alike);
    a denied or other ACL raises, as the plan never makes one."""
    found: set[Acl] = set()
    async with kafka_clients.connected_client(settings) as client:
        for resource, name in resources:
            request = DescribeAclsRequest(
                resource, name, _MATCH, None, None, Operation.ANY, _ANY_PERMISSION
            )
            response = await client.send(client.get_random_node(), request)
            if response.error_code:
                raise for_code(response.error_code)(response.error_message)
            for kind, pattern_name, pattern, entries in response.resources:
                for principal, host, operation, permission in entries:
                    if (pattern, host, permission) != (_LITERAL, "*", _ALLOW):
                        raise ValueError(f"unexpected ACL on {pattern_name}: {entries}")
                    found.add(Acl(principal, Resource(kind), pattern_name, Operation(operation)))
    return found
