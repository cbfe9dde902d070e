"""The floor of the latency bench: a raw Kafka request-reply round trip, no service in between.

A requester produces a request and waits for its reply; an echo, in its own OS process (as the
worker is), consumes the request, produces the reply and commits. Both use the clients the
service builds (`service.adapters.kafka_clients`: idempotent producers, so acks=all), on the same
broker, with messages of a PATCH's sizes: the request as big as an `UpdateSipTrunk` (key, value
and CloudEvents headers), the reply as a `TrunkUpdated`. The requester produces as the gateway
does (linger 0) and reads the replies from the end of every partition without a group, as the
gateway's command bus does. What is left is what any request-reply over this broker pays: two
produce acknowledgements and two fetches.

`python -m bench.request_reply echo <requests> <replies>` runs the echo (started by `measure`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator

from aiokafka import TopicPartition

from bench.throughput import create_topics
from service.adapters import kafka_clients
from service.adapters.kafka_topics import delete_topics
from service.config import Settings

__all__ = ["measure"]

# Sizes of a PATCH that changes the name, as the service writes them on the dev stack (bytes).
KEY = 36
REQUEST_VALUE, REQUEST_HEADERS = 93, 339
REPLY_VALUE, REPLY_HEADERS = 348, 279


def _headers(size: int, request_id: bytes) -> list[tuple[str, bytes]]:
    # The id is the correlation; the padding brings the headers to the service's size.
    pad = size - len("ce_id") - len(request_id) - len("padding")
    return [("ce_id", request_id), ("padding", b"h" * max(pad, 0))]


async def echo(requests: str, replies: str) -> None:
    """Answer every request with a reply of the reply's size, keyed and correlated as it."""
    settings = Settings()
    consumer = kafka_clients.consumer(
        settings,
        requests,
        group_id=f"{requests}-echo",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = kafka_clients.producer(settings)
    await consumer.start()
    await producer.start()
    print("ready", flush=True)
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=20, max_records=500)
            acks = [
                await producer.send(
                    replies,
                    key=record.key,
                    value=b"r" * REPLY_VALUE,
                    headers=_headers(REPLY_HEADERS, dict(record.headers)["ce_id"]),
                )
                for records in batch.values()
                for record in records
            ]
            if acks:
                await asyncio.gather(*acks)
                await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


@contextlib.asynccontextmanager
async def _echo_process(requests: str, replies: str) -> AsyncIterator[None]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.request_reply", "echo", requests, replies,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            if await process.stdout.readline() != b"ready\n":
                raise RuntimeError("the echo process did not start")
        yield
    finally:
        process.terminate()
        await process.wait()


async def measure(settings: Settings, n: int, warm_up: int = 50) -> list[float]:
    """`n` sequential round trips (after `warm_up` more), in seconds each."""
    prefix = f"bench-rr-{uuid.uuid4().hex[:8]}."
    requests, replies = prefix + "requests", prefix + "replies"
    await create_topics(settings, [requests, replies])
    producer = kafka_clients.producer(settings, linger_ms=0)
    consumer = kafka_clients.consumer(settings, enable_auto_commit=False, group_id=None)
    try:
        async with _echo_process(requests, replies):
            await producer.start()
            await consumer.start()
            partitions = [
                TopicPartition(replies, p) for p in await producer.partitions_for(replies)
            ]
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            for tp in partitions:
                await consumer.position(tp)
            samples = []
            for i in range(warm_up + n):
                request_id = uuid.uuid4().hex.encode()
                started = time.perf_counter()
                await producer.send(
                    requests,
                    key=b"k" * KEY,
                    value=b"q" * REQUEST_VALUE,
                    headers=_headers(REQUEST_HEADERS, request_id),
                )
                while dict((await consumer.getone()).headers)["ce_id"] != request_id:
                    pass
                if i >= warm_up:
                    samples.append(time.perf_counter() - started)
            return samples
    finally:
        await consumer.stop()
        await producer.stop()
        await delete_topics(settings, prefix)


if __name__ == "__main__":
    if sys.argv[1:2] == ["echo"]:
        asyncio.run(echo(sys.argv[2], sys.argv[3]))
