"""Dead-lettering: a message the worker cannot answer goes to the DLT with its key, its headers
and where it came from (the `kafka_dlt-*` headers), but never with a password: no topic may
carry one (CONTRACT.md §3, §4.2), and a producer may still send one in plaintext.

- A strict JSON value is copied with every `password` member masked (re-serialised); the
  header `kafka_dlt-redacted` says so.
- Any other value (not UTF-8, malformed, nested too deep) is withheld: the DLT record has no
  value, `kafka_dlt-value-withheld` says why and `kafka_dlt-value-length` how long it was. A
  password can hide anywhere in text that does not parse (a truncated string, an escaped quote,
  another encoding, the bare password as the whole value), so no pattern finds them all; copying
  such text byte for byte would put the password on the DLT. No digest of the value either:
  for a value that is a bare password, a digest lets anyone confirm guesses of it. The original
  topic, partition and offset already name the message.

Dead-lettering is the worker's last resort, so it has one of its own: when the copy cannot be
made (masking failed) or Kafka refuses it for good (too large, invalid), the DLT still gets a
record for that offset: the `kafka_dlt-*` headers and the reason, the value withheld.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.errors import (
    CorruptRecordException,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from sip_trunk_contracts import MASKED_PASSWORD
from sip_trunk_contracts.strict_json import JsonError, dumps, loads

from service.logs import get_logger

__all__ = ["DeadLetters", "dead_letter_of", "redact_passwords", "withheld", "withheld_copy"]

log = get_logger(__name__)

_MAX_REASON = 1000
_UNREADABLE = "a header key is not valid UTF-8: the record cannot be read"
_HEADERS_UNREADABLE = "its headers cannot be decoded: value and headers withheld"
_MAX_WITHHELD_KEY = 1024  # a larger key is dropped too in the last-resort copy
# What Kafka says of this record itself; any other error (the broker away) is retried later.
_REFUSED_FOR_GOOD = (
    CorruptRecordException,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)


class DeadLetters:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def send(self, record: ConsumerRecord[bytes, bytes], why: str) -> None:
        """Send `record` to the DLT with the `kafka_dlt-*` headers; return once it is stored.

        Raises when Kafka is not there to take it: the caller retries later.
        """
        try:
            copy = dead_letter_of(record, why)
        except Exception as exc:  # a bug in masking must not leak a password nor stop the worker
            because = f"the value could not be masked ({type(exc).__name__})"
            copy = withheld_copy(record, why, because)
        try:
            await self._store(copy)
        except _REFUSED_FOR_GOOD as exc:
            log.warning(
                "dead_letter.withheld",
                error=type(exc).__name__,
                partition=record.partition,
                offset=record.offset,
            )
            await self._store(withheld_copy(record, why, f"Kafka refused the copy: {exc}"))

    async def send_unreadable(
        self, topic: str, partition: int, offset: int, key: bytes | None
    ) -> None:
        """A record that cannot even be read (a header key not UTF-8): its place and why."""
        await self._store(withheld(topic, partition, offset, key, _UNREADABLE, _HEADERS_UNREADABLE))

    async def _store(self, copy: dict[str, Any]) -> None:
        await (await self._producer.send(self._topic, **copy))


def dead_letter_of(record: ConsumerRecord[bytes, bytes], why: str) -> dict[str, Any]:
    """Key, value and headers of the DLT copy of `record`: a strict JSON value with its
    passwords masked, any other value withheld."""
    headers = [
        *list(record.headers),
        *_dlt_headers(record.topic, record.partition, record.offset, why),
    ]
    try:
        value = redact_passwords(record.value)
    except JsonError as exc:
        headers += [
            (
                "kafka_dlt-value-withheld",
                f"not strict JSON ({exc}): it may hold a password".encode(),
            ),
            ("kafka_dlt-value-length", str(len(record.value)).encode()),
        ]
        return {"key": record.key, "value": None, "headers": headers}
    if value != record.value:
        headers.append(("kafka_dlt-redacted", b"password"))
    return {"key": record.key, "value": value, "headers": headers}


def withheld_copy(record: ConsumerRecord[bytes, bytes], why: str, because: str) -> dict[str, Any]:
    """The last-resort DLT record of `record`: where it came from and why, nothing of its
    content."""
    return withheld(record.topic, record.partition, record.offset, record.key, why, because)


def withheld(
    topic: str, partition: int, offset: int, key: bytes | None, why: str, because: str
) -> dict[str, Any]:
    """A DLT record for an offset whose content is withheld (it could not be masked, Kafka
    refused the copy, or it cannot even be read): its key when small, no value, no headers."""
    return {
        "key": key if key is None or len(key) <= _MAX_WITHHELD_KEY else None,
        "value": None,
        "headers": [
            *_dlt_headers(topic, partition, offset, why),
            ("kafka_dlt-value-withheld", because[:300].encode()),
        ],
    }


def _dlt_headers(topic: str, partition: int, offset: int, why: str) -> list[tuple[str, bytes]]:
    return [
        ("kafka_dlt-original-topic", topic.encode()),
        ("kafka_dlt-original-partition", str(partition).encode()),
        ("kafka_dlt-original-offset", str(offset).encode()),
        ("kafka_dlt-exception-message", why[:_MAX_REASON].encode("utf-8", "replace")),
    ]


def redact_passwords(value: bytes | None) -> bytes | None:
    """`value` with every JSON `password` masked (re-serialised); unchanged when it has none.
    Raises `JsonError` when `value` is not strict JSON: then it cannot be searched."""
    if value is None:
        return None
    data = loads(value)
    masked = _masked(data)
    return value if masked == data else dumps(masked)


def _masked(data: Any) -> Any:
    # Recursion is bounded: `loads` refused anything nested deeper than 32 levels.
    if isinstance(data, dict):
        return {k: MASKED_PASSWORD if k == "password" else _masked(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_masked(v) for v in data]
    return data
