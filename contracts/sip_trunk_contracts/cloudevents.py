"""CloudEvents 1.0 Kafka binary mode: the ``ce_*`` header codec and body helpers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel

from .registry import COMMAND_TYPES, EVENT_TYPES, AnyCommand, AnyEvent

__all__ = [
    "CONTENT_TYPE_JSON",
    "SPECVERSION",
    "CloudEventHeaders",
    "InvalidHeaders",
    "UnknownType",
    "decode",
    "encode",
]

SPECVERSION = "1.0"
CONTENT_TYPE_JSON = "application/json"

_REQUIRED = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time")
_KNOWN = frozenset((*_REQUIRED, "ce_correlationid", "ce_causationid", "content-type"))


class InvalidHeaders(ValueError):
    """The Kafka headers are not a usable CloudEvents 1.0 binary-mode envelope."""


class UnknownType(ValueError):
    """A ``ce_type`` that this contract does not define."""


def _parse_time(text: str) -> datetime:
    try:
        # 3.11's fromisoformat accepts RFC 3339, including the ``Z`` suffix.
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidHeaders(f"ce_time is not an RFC 3339 timestamp: {text!r}") from None
    if value.tzinfo is None:
        raise InvalidHeaders(f"ce_time has no UTC offset: {text!r}")
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise InvalidHeaders(f"ce_time is out of range in UTC: {text!r}") from None
    return value


def _format_time(value: datetime) -> str:
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


@dataclass(frozen=True, slots=True)
class CloudEventHeaders:
    """The envelope of one Kafka message.

    ``time`` is normalised to UTC and millisecond precision (what goes on the wire), so a
    round trip through :meth:`to_kafka`/:meth:`from_kafka` yields an equal object.
    """

    id: str
    source: str
    type: str
    time: datetime
    correlation_id: str
    causation_id: str | None = None
    content_type: str = field(default=CONTENT_TYPE_JSON)

    def __post_init__(self) -> None:
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            raise ValueError("CloudEventHeaders.time must be timezone-aware")
        utc = self.time.astimezone(UTC)
        object.__setattr__(self, "time", utc.replace(microsecond=utc.microsecond // 1000 * 1000))

    @classmethod
    def new(
        cls,
        type: str,
        source: str,
        correlation_id: str,
        causation_id: str | None = None,
        *,
        id: str | None = None,
        time: datetime | None = None,
    ) -> CloudEventHeaders:
        """Headers for a fresh message: a uuid4 ``id`` and the current time, unless given."""
        return cls(
            id=id or str(uuid.uuid4()),
            source=source,
            type=type,
            time=time or datetime.now(UTC),
            correlation_id=correlation_id,
            causation_id=causation_id,
        )

    def to_kafka(self) -> list[tuple[str, bytes]]:
        """Kafka headers; ``ce_causationid`` only when set."""
        return [(key, value.encode()) for key, value in self.to_text()]

    def to_text(self) -> list[tuple[str, str]]:
        """The headers of :meth:`to_kafka` before UTF-8 encoding (e.g. to store them as text)."""
        headers = [
            ("ce_specversion", SPECVERSION),
            ("ce_id", self.id),
            ("ce_source", self.source),
            ("ce_type", self.type),
            ("ce_time", _format_time(self.time)),
            ("content-type", self.content_type),
            ("ce_correlationid", self.correlation_id),
        ]
        if self.causation_id is not None:
            headers.append(("ce_causationid", self.causation_id))
        return headers

    @classmethod
    def from_kafka(cls, headers: Sequence[tuple[str, bytes | None]]) -> CloudEventHeaders:
        """Read the envelope; raise :class:`InvalidHeaders` saying what is wrong.

        Required: ``ce_specversion`` (= ``1.0``), ``ce_id``, ``ce_source``, ``ce_type``,
        ``ce_time``, all non-empty UTF-8. Lenient where the contract allows a safe default:
        a missing ``ce_correlationid`` defaults to ``ce_id`` (the message starts a new
        conversation) and a missing ``content-type`` to ``application/json``. Header names are
        matched case-insensitively; if a name repeats, the last value wins (as Kafka clients'
        ``lastHeader``). Other headers are ignored, and not even decoded.
        """
        values: dict[str, str] = {}
        for key, raw in headers:
            name = key.lower()
            if name not in _KNOWN:  # e.g. binary tracing headers: not ours to judge
                continue
            if raw is None:
                values.pop(name, None)
                continue
            try:
                values[name] = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidHeaders(f"header {key!r} is not valid UTF-8") from None
        missing = [name for name in _REQUIRED if not values.get(name)]
        if missing:
            raise InvalidHeaders(f"missing or empty CloudEvents header(s): {', '.join(missing)}")
        if values["ce_specversion"] != SPECVERSION:
            raise InvalidHeaders(
                f"unsupported ce_specversion {values['ce_specversion']!r}, expected {SPECVERSION!r}"
            )
        return cls(
            id=values["ce_id"],
            source=values["ce_source"],
            type=values["ce_type"],
            time=_parse_time(values["ce_time"]),
            correlation_id=values.get("ce_correlationid") or values["ce_id"],
            causation_id=values.get("ce_causationid") or None,
            content_type=values.get("content-type") or CONTENT_TYPE_JSON,
        )


def encode(model: BaseModel) -> bytes:
    """JSON body of a command or event.

    Nulls are kept (``"authentication": null`` and ``"providerId": null`` mean something);
    only a command's optional fields that were never set are omitted, so absent stays absent.
    """
    return model.model_dump_json(by_alias=True).encode("utf-8")


def decode(ce_type: str, data: bytes) -> AnyCommand | AnyEvent:
    """Parse a body by its ``ce_type``.

    Raises :class:`UnknownType` for a type this contract does not define and
    ``pydantic.ValidationError`` for a body that does not fit (invalid JSON included).
    """
    model: type[AnyCommand | AnyEvent] | None = COMMAND_TYPES.get(ce_type) or EVENT_TYPES.get(
        ce_type
    )
    if model is None:
        raise UnknownType(f"unknown ce_type {ce_type!r}")
    return model.model_validate_json(data)
