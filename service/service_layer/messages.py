"""A Kafka message the service will publish, as stored in the outbox.

Headers have one form from the moment a message is made until the Kafka edge: `Headers`, pairs
of text (name, value). The outbox and processed-command rows keep them as they are (JSON writes
a pair as a 2-item array); `kafka_headers` encodes them to UTF-8 bytes at the edge, for the
relay and anyone else handing them to a Kafka producer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["Headers", "OutgoingMessage", "kafka_headers"]

Headers = tuple[tuple[str, str], ...]


def kafka_headers(headers: Iterable[Sequence[str]]) -> list[tuple[str, bytes]]:
    """Text pairs (`Headers`, or their JSON arrays read back from a row) as Kafka headers."""
    return [(name, value.encode()) for name, value in headers]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    topic: str
    key: str
    headers: Headers
    payload: bytes | None  # None: a tombstone on the compacted state topic

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        return kafka_headers(self.headers)

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)

    def with_header(self, name: str, value: str) -> OutgoingMessage:
        headers = tuple((k, value if k == name else v) for k, v in self.headers)
        return replace(self, headers=headers)

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "key": self.key,
            "headers": self.headers,
            "payload": None if self.payload is None else self.payload.decode(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutgoingMessage:
        payload = data["payload"]
        return cls(
            topic=data["topic"],
            key=data["key"],
            headers=tuple((str(k), str(v)) for k, v in data["headers"]),
            payload=None if payload is None else str(payload).encode(),
        )
