"""A Kafka message the service will publish, as stored in the outbox (headers are UTF-8)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

__all__ = ["OutgoingMessage"]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    topic: str
    key: str
    headers: tuple[tuple[str, str], ...]
    payload: bytes | None  # None: a tombstone on the compacted state topic

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        return [(name, value.encode()) for name, value in self.headers]

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)

    def with_header(self, name: str, value: str) -> OutgoingMessage:
        headers = tuple((k, value if k == name else v) for k, v in self.headers)
        return replace(self, headers=headers)

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "key": self.key,
            "headers": [list(h) for h in self.headers],
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
