"""Reading past a record aiokafka cannot read.

aiokafka decodes every record of a fetch as `getmany`/`getone` hands them out, header keys as
UTF-8 among it. A header key that is not UTF-8 (a raw client, `kcat -H $'\\xff=x'`; the broker
stores header keys as bytes and does not check them) makes that decoding raise
`UnicodeDecodeError` (`CorruptRecordException` with aiokafka's pure-Python records), again at
every fetch from that partition at or before the record: no record of that fetch is ever
handed out, not even the readable ones before it, nor those after it in its record batch.

`read_past_unreadable` fetches such a partition itself (one Fetch request, as aiokafka would)
and decodes the record batches here, header keys as bytes: it returns the readable records,
the offsets of the unreadable ones, and where to resume (after the batch holding them).
Only v2 record batches (every broker since Kafka 0.11 writes them) are decoded.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka import codec as codecs
from aiokafka.errors import CorruptRecordException, KafkaError, UnsupportedCodecError, for_code
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.util import decode_varint

from service.adapters import kafka_clients
from service.config import Settings
from service.logs import get_logger

__all__ = [
    "UNREADABLE_FETCH",
    "PastUnreadable",
    "read_past_unreadable",
    "skip_unreadable",
]

log = get_logger(__name__)

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"

# What aiokafka raises when a fetched record cannot be decoded (C and pure-Python records).
UNREADABLE_FETCH = (UnicodeDecodeError, CorruptRecordException)

_MAX_BYTES = 4 * 1024 * 1024  # more than aiokafka's 1 MiB per partition: the record is in it
_PAUSE_S = 1.0
# v2 record batch header: base offset, length, leader epoch, magic, crc, attributes,
# last offset delta, first timestamp, max timestamp, producer id, producer epoch,
# base sequence, record count.
_BATCH = struct.Struct(">qiibIhiqqqhii")
_LENGTH_END = 12  # the batch length counts the bytes after base offset and length
_CODECS = {
    1: codecs.gzip_decode,
    2: lambda data: codecs.snappy_decode(bytes(data)),
    3: lambda data: codecs.lz4_decode(bytes(data)),
    4: lambda data: codecs.zstd_decode(bytes(data)),
}


@dataclass(frozen=True, slots=True)
class PastUnreadable:
    """A partition read from a start offset through the first batch holding unreadable records."""

    readable: list[Record]  # in offset order: every record aiokafka would have handed out
    unreadable: list[tuple[int, bytes | None]]  # (offset, key) of the records it cannot read
    resume_at: int  # the offset after that batch: the consumer goes on from here


async def read_past_unreadable(
    settings: Settings, tp: TopicPartition, start: int
) -> PastUnreadable | None:
    """Fetch `tp` from `start` and decode it here; None when what the broker returns from
    there (up to 4 MiB) holds no unreadable record. Raises KafkaError when Kafka refuses."""
    data = await _fetch(settings, tp, start)
    readable: list[Record] = []
    unreadable: list[tuple[int, bytes | None]] = []
    for batch in _batches(data):
        if batch.next_offset <= start or batch.control:
            continue
        for record in batch.records(tp):
            if record.offset < start:
                continue
            if isinstance(record, _Unreadable):
                unreadable.append((record.offset, record.key))
            else:
                readable.append(record)
        if unreadable:
            return PastUnreadable(readable, unreadable, batch.next_offset)
    return None


async def skip_unreadable(
    settings: Settings,
    consumer: AIOKafkaConsumer,
    starts: dict[TopicPartition, int],
    error: BaseException,
) -> list[Record]:
    """For a reader without a group (the gateway's): after aiokafka raised `error`, seek every
    partition back to `starts` (what the failed call had drained is fetched again), move each
    partition holding an unreadable record past it, with a warning, and return the readable
    records read on the way. Never raises (but CancelledError); pauses before a retry."""
    try:
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        records: list[Record] = []
        found = False
        for tp, offset in sorted(starts.items()):
            past = await read_past_unreadable(settings, tp, offset)
            if past is None:
                continue
            found = True
            log.warning(
                "record.unreadable_skipped",
                topic=tp.topic,
                partition=tp.partition,
                offsets=[o for o, _ in past.unreadable],
                error=f"{type(error).__name__}: {error}",
            )
            consumer.seek(tp, past.resume_at)
            records.extend(past.readable)
        if found:
            return records
        log.error("record.unreadable_not_found", error=f"{type(error).__name__}: {error}")
    except (KafkaError, OSError) as exc:
        log.warning("record.unreadable_retry", error=f"{type(exc).__name__}: {exc}")
    await asyncio.sleep(_PAUSE_S)
    return []


async def _fetch(settings: Settings, tp: TopicPartition, start: int) -> bytes:
    async with kafka_clients.connected_client(settings) as client:
        cluster = await client.fetch_all_metadata()
        leader = cluster.leader_for_partition(tp)
        if leader is None or leader < 0:
            raise KafkaError(f"no leader for {tp.topic}-{tp.partition}")
        request = FetchRequest(
            0,  # max wait: answer at once
            1,  # min bytes
            _MAX_BYTES,
            0,  # read uncommitted, as the consumers do
            [(tp.topic, [(tp.partition, start, _MAX_BYTES)])],
        )
        response = await client.send(leader, request)
    for _, partitions in response.topics:
        for _, error_code, _highwater, *part_data in partitions:
            if error_code:
                raise for_code(error_code)(f"fetch of {tp.topic}-{tp.partition} at {start}")
            return bytes(part_data[-1] or b"")
    return b""


@dataclass(frozen=True, slots=True)
class _Unreadable:
    offset: int
    key: bytes | None


@dataclass(frozen=True, slots=True)
class _Batch:
    base_offset: int
    next_offset: int
    attributes: int
    first_timestamp: int
    max_timestamp: int
    count: int
    payload: memoryview

    @property
    def control(self) -> bool:
        return bool(self.attributes & 0x20)

    def records(self, tp: TopicPartition) -> Iterator[Record | _Unreadable]:
        codec = self.attributes & 0x07
        if codec:
            if codec not in _CODECS:
                raise UnsupportedCodecError(f"unknown compression codec {codec}")
            buffer = bytearray(_CODECS[codec](self.payload))
        else:
            buffer = bytearray(self.payload)
        timestamp_type = (self.attributes & 0x08) >> 3
        pos = 0
        try:
            for _ in range(self.count):
                length, pos = decode_varint(buffer, pos)
                end = pos + length
                _, pos = decode_varint(buffer, pos)  # record attributes: unused
                ts_delta, pos = decode_varint(buffer, pos)
                offset_delta, pos = decode_varint(buffer, pos)
                key, pos = _nullable(buffer, pos)
                value, pos = _nullable(buffer, pos)
                count, pos = decode_varint(buffer, pos)
                raw_headers: list[tuple[bytes, bytes | None]] = []
                for _ in range(count):
                    h_key, pos = _nullable(buffer, pos)
                    h_value, pos = _nullable(buffer, pos)
                    raw_headers.append((h_key or b"", h_value))
                if pos != end:
                    raise CorruptRecordException("record length does not match its fields")
                offset = self.base_offset + offset_delta
                headers = _decoded(raw_headers)
                if headers is None:
                    yield _Unreadable(offset, key)
                    continue
                yield ConsumerRecord(
                    topic=tp.topic,
                    partition=tp.partition,
                    offset=offset,
                    timestamp=(
                        self.max_timestamp if timestamp_type else self.first_timestamp + ts_delta
                    ),
                    timestamp_type=timestamp_type,
                    key=key,
                    value=value,
                    checksum=None,
                    serialized_key_size=-1 if key is None else len(key),
                    serialized_value_size=-1 if value is None else len(value),
                    headers=headers,
                )
        except (IndexError, ValueError) as exc:
            raise CorruptRecordException(f"record batch at {self.base_offset}: {exc!r}") from exc


def _batches(data: bytes) -> Iterator[_Batch]:
    view = memoryview(data)
    pos = 0
    while len(data) - pos >= _BATCH.size:
        (base, length, _, magic, _, attributes, last_delta, first_ts, max_ts, *_, count) = (
            _BATCH.unpack_from(data, pos)
        )
        end = pos + _LENGTH_END + length
        if end > len(data):
            return  # the broker cut the last batch short: it is fetched again later
        if magic != 2:
            raise CorruptRecordException(f"record batch at {base} has magic {magic}, not 2")
        yield _Batch(
            base, base + last_delta + 1, attributes, first_ts, max_ts, count,
            view[pos + _BATCH.size : end],
        )  # fmt: skip
        pos = end


def _nullable(buffer: bytearray, pos: int) -> tuple[bytes | None, int]:
    length, pos = decode_varint(buffer, pos)
    if length < 0:
        return None, pos
    if pos + length > len(buffer):
        raise IndexError("field runs past the record")
    return bytes(buffer[pos : pos + length]), pos + length


def _decoded(
    headers: Sequence[tuple[bytes, bytes | None]],
) -> list[tuple[str, bytes]] | None:
    """The headers as aiokafka gives them (str keys); None when a key is not UTF-8."""
    try:
        return [(k.decode("utf-8"), v) for k, v in headers]  # type: ignore[misc]
    except UnicodeDecodeError:
        return None
