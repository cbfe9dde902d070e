"""Dead-lettering: a message the worker cannot answer goes to the DLT exactly as received."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer, ConsumerRecord

__all__ = ["dead_letter"]


async def dead_letter(
    producer: AIOKafkaProducer, dlt_topic: str, record: ConsumerRecord[bytes, bytes], why: str
) -> None:
    """Send `record` to the DLT with the `kafka_dlt-*` headers; return once the broker has it."""
    headers = [
        *list(record.headers),
        ("kafka_dlt-original-topic", record.topic.encode()),
        ("kafka_dlt-original-partition", str(record.partition).encode()),
        ("kafka_dlt-original-offset", str(record.offset).encode()),
        ("kafka_dlt-exception-message", why[:1000].encode()),
    ]
    await (await producer.send(dlt_topic, key=record.key, value=record.value, headers=headers))
