"""Shared building blocks: the wire datetime type and the model bases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    model_serializer,
)

__all__ = ["CommandModel", "EventModel", "UtcDateTime", "format_utc"]


def _to_utc(value: datetime) -> datetime:
    # RFC 3339 requires an offset; a naive time would be silently misread in another zone.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must carry a UTC offset (RFC 3339)")
    # Microseconds kept, as the wire carries them: the model holds exactly what it emits.
    return value.astimezone(UTC)


def format_utc(value: datetime) -> str:
    """``2024-01-15T09:30:00.123456Z``: RFC 3339, UTC, ``Z`` suffix, always six fractional digits.

    One fixed width, so that these strings sort as the instants they name (a varying number of
    digits would not: ``...:00.5Z`` < ``...:00Z``), and trunks created within one second keep
    their creation order (CONTRACT.md §4.1).
    """
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


UtcDateTime = Annotated[
    datetime,
    AfterValidator(_to_utc),
    PlainSerializer(format_utc, return_type=str, when_used="json"),
]
"""A datetime parsed from any RFC 3339 string, held in UTC, written as ``...Z``."""


class EventModel(BaseModel):
    """Base of everything the service writes: closed and immutable.

    Scalars are ``Strict*`` field by field rather than ``strict=True`` on the model, because
    model-wide strictness would refuse ``"uuid"``/RFC 3339 strings in Python mode, i.e. for a
    consumer that validates ``json.loads(body)`` (as FastStream does).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    CE_TYPE: ClassVar[str]


class CommandModel(BaseModel):
    """Base of commands.

    Extra keys are *kept* (``extra="allow"``, see ``model_extra``) so that the service's domain
    layer, the single authority for field rules, can refuse an unknown field by name instead of
    it vanishing silently. Optional fields that were absent are left out when serialising, so
    that "absent" and ``null`` survive a round trip.
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    CE_TYPE: ClassVar[str]

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name, field in type(self).model_fields.items():
            if not field.is_required() and name not in self.model_fields_set:
                data.pop(field.alias or name, None)
        return data
