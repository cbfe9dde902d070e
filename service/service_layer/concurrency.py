"""How a batch's commands may run side by side: in chains, each applied in order.

Commands that touch one trunk, or share a command id (source, id), depend on each other: the
second sees the trunk, or the processed-command record, the first left. Such commands form one
chain, kept in batch order; chains share nothing, so they may run concurrently (their provider
calls overlap), at most `limit` at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TypeVar

from service.service_layer.inbound import InboundCommand

__all__ = ["chains", "run_bounded"]

T = TypeVar("T")


def chains(commands: Sequence[InboundCommand]) -> list[list[int]]:
    """The commands' indexes grouped into independent chains, each in batch order; the chains
    ordered by their first command."""
    parent: dict[Hashable, Hashable] = {}

    def root(node: Hashable) -> Hashable:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]  # path halving: later finds are shorter
            node = parent[node]
        return node

    for cmd in commands:  # union-find: a command joins its trunk and its id
        trunk, key = root(cmd.trunk_id), root((cmd.ce.source, cmd.ce.id))
        if trunk != key:
            parent[key] = trunk
    grouped: dict[Hashable, list[int]] = {}
    for i, cmd in enumerate(commands):
        grouped.setdefault(root(cmd.trunk_id), []).append(i)
    return list(grouped.values())


async def run_bounded(items: Sequence[T], run: Callable[[T], Awaitable[None]], limit: int) -> None:
    """`run` every item, at most `limit` at once (in order, in this task, when 1). On a failure
    the others are cancelled and the first error is raised as it is (not as a group): the
    caller's batch policy judges one exception."""
    pending = iter(items)

    async def drain() -> None:
        for item in pending:  # shared: each runner takes the next item when done with its own
            await run(item)

    if limit <= 1 or len(items) <= 1:
        await drain()
        return
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(limit, len(items))):
                group.create_task(drain())
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
