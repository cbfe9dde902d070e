"""Writes record batches the way a raw client could, byte by byte: header keys are bytes here,
so a key that is not UTF-8 reaches the broker (aiokafka's producer only takes str keys)."""

from __future__ import annotations

import struct
import time

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import for_code
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.record.util import calc_crc32c, encode_varint

RawRecord = tuple[
    bytes | None, bytes | None, list[tuple[bytes, bytes | None]]
]  # key, value, headers


def _varint(value: int, out: bytearray) -> None:
    encode_varint(value, out.append)


def _bytes(value: bytes | None, out: bytearray) -> None:
    if value is None:
        _varint(-1, out)
    else:
        _varint(len(value), out)
        out += value


def record_batch(records: list[RawRecord]) -> bytes:
    """One uncompressed v2 record batch holding `records` (offsets 0..n-1, to be assigned)."""
    now = int(time.time() * 1000)
    body = bytearray()
    for delta, (key, value, headers) in enumerate(records):
        rec = bytearray([0])  # attributes
        _varint(0, rec)  # timestamp delta
        _varint(delta, rec)  # offset delta
        _bytes(key, rec)
        _bytes(value, rec)
        _varint(len(headers), rec)
        for h_key, h_value in headers:
            _bytes(h_key, rec)
            _bytes(h_value, rec)
        _varint(len(rec), body)
        body += rec
    # attributes .. record count, then the records: what the CRC covers
    after_crc = struct.pack(">hiqqqhii", 0, len(records) - 1, now, now, -1, -1, -1, len(records))
    after_crc += bytes(body)
    crc = calc_crc32c(after_crc)
    after_length = struct.pack(">ibI", -1, 2, crc) + after_crc
    return struct.pack(">qi", 0, len(after_length)) + after_length


async def produce_batch(
    producer: AIOKafkaProducer, topic: str, partition: int, records: list[RawRecord]
) -> None:
    """Write `records` as one batch to `topic`/`partition` (acks=all); raise if refused."""
    await producer.partitions_for(topic)  # metadata, so the leader is known
    client = producer.client
    leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
    request = ProduceRequest(None, -1, 10000, [(topic, [(partition, record_batch(records))])])
    response = await client.send(leader, request)
    for _, partitions in response.topics:
        for _, error_code, *_ in partitions:
            if error_code:
                raise for_code(error_code)(f"produce to {topic}-{partition} refused")
