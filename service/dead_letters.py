"""Dead-lettering: a message the worker cannot answer goes to the DLT as received, with one
exception: passwords. A JSON value has every `password` masked first, because no topic the
service writes may carry a secret (CONTRACT.md §3); the header `kafka_dlt-redacted` says so."""

from __future__ import annotations

import json
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord
from sip_trunk_contracts import MASKED_PASSWORD

__all__ = ["DeadLetters", "redact_passwords"]


class DeadLetters:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def send(self, record: ConsumerRecord[bytes, bytes], why: str) -> None:
        """Send `record` to the DLT with the `kafka_dlt-*` headers; return once it is stored."""
        await (await self._producer.send(self._topic, **dead_letter_of(record, why)))


def dead_letter_of(record: ConsumerRecord[bytes, bytes], why: str) -> dict[str, Any]:
    """Key, value and headers of the DLT copy of `record`."""
    value = redact_passwords(record.value)
    headers = [
        *list(record.headers),
        ("kafka_dlt-original-topic", record.topic.encode()),
        ("kafka_dlt-original-partition", str(record.partition).encode()),
        ("kafka_dlt-original-offset", str(record.offset).encode()),
        ("kafka_dlt-exception-message", why[:1000].encode()),
    ]
    if value != record.value:
        headers.append(("kafka_dlt-redacted", b"password"))
    return {"key": record.key, "value": value, "headers": headers}


def redact_passwords(value: bytes | None) -> bytes | None:
    """`value` with every JSON `password` masked; unchanged when it is not JSON or has none."""
    if value is None:
        return None
    try:
        data = json.loads(value.decode("utf-8"))
    except (ValueError, RecursionError):  # not JSON (or too deep to be a command): kept as is
        return value
    masked = _masked(data)
    return value if masked == data else json.dumps(masked).encode()


def _masked(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: MASKED_PASSWORD if k == "password" else _masked(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_masked(v) for v in data]
    return data
