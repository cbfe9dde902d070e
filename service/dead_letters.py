"""Dead-lettering: a message the worker cannot answer goes to the DLT as received, with one
exception: passwords. A JSON value has every `password` masked first, because no topic the
service writes may carry a secret (CONTRACT.md §3); the header `kafka_dlt-redacted` says so."""

from __future__ import annotations

import json
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord
from sip_trunk_contracts import MASKED_PASSWORD

__all__ = ["dead_letter", "redact_passwords"]


async def dead_letter(
    producer: AIOKafkaProducer, dlt_topic: str, record: ConsumerRecord[bytes, bytes], why: str
) -> None:
    """Send `record` to the DLT with the `kafka_dlt-*` headers; return once the broker has it."""
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
    await (await producer.send(dlt_topic, key=record.key, value=value, headers=headers))


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
