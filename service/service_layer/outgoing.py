"""Builds the messages the service publishes: outcome events, state snapshots, tombstones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from pydantic import BaseModel
from pydantic_core import to_json
from sip_trunk_contracts import (
    CloudEventHeaders,
    FieldError,
    Topics,
    TrunkCreated,
    TrunkDeleted,
    TrunkRejected,
    TrunkState,
    TrunkUpdated,
    encode,
)

from service.domain.errors import Rejected
from service.domain.model import SipTrunk
from service.service_layer.messages import OutgoingMessage
from service.service_layer.views import view_json

__all__ = ["Cause", "MessageFactory"]


@dataclass(frozen=True, slots=True)
class Cause:
    """What a message answers: the command's correlation id and `ce_id` (None: no command)."""

    correlation_id: str
    command_id: str | None = None
    command_type: str = ""


class MessageFactory:
    def __init__(
        self, topics: Topics, source: str, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._topics = topics
        self._source = source
        self._clock = clock

    def created(self, trunk: SipTrunk, cause: Cause) -> list[OutgoingMessage]:
        """`TrunkCreated` and the state snapshot: the same body (`{"trunk", "tenantId",
        "version"}`), built and encoded once for both."""
        snapshot = self._snapshot(trunk)
        event = self._message(self._topics.events, TrunkCreated.CE_TYPE, snapshot, trunk.id, cause)
        return [event, self._state(event, snapshot)]

    def updated(
        self, trunk: SipTrunk, changed: tuple[str, ...], cause: Cause
    ) -> list[OutgoingMessage]:
        """`TrunkUpdated`, then the state snapshot when something changed (a no-op update has
        none). The event's body is the snapshot's plus `changedFields`: one view, encoded once."""
        snapshot = self._snapshot(trunk)
        body = _with_changed_fields(snapshot, changed)
        event = self._message(self._topics.events, TrunkUpdated.CE_TYPE, body, trunk.id, cause)
        return [event, self._state(event, snapshot)] if changed else [event]

    def deleted(self, trunk: SipTrunk, cause: Cause) -> list[OutgoingMessage]:
        """`TrunkDeleted`, then the tombstone that removes the trunk from the state topic."""
        body = TrunkDeleted(trunkId=trunk.id, tenantId=trunk.tenant_id, version=trunk.version)
        event = self._event(body, trunk.id, cause)
        return [event, self._state(event, None)]

    def rejected(
        self, trunk_id: UUID, tenant_id: str | None, refusal: Rejected, cause: Cause
    ) -> OutgoingMessage:
        body = TrunkRejected(
            trunkId=trunk_id,
            tenantId=tenant_id,
            commandId=cause.command_id or "",
            commandType=cause.command_type,
            reason=refusal.reason,
            detail=refusal.detail,
            errors=[FieldError(pointer=e.pointer, message=e.message) for e in refusal.errors],
        )
        return self._event(body, trunk_id, cause)

    def _event(self, body: BaseModel, trunk_id: UUID, cause: Cause) -> OutgoingMessage:
        ce_type: str = getattr(body, "CE_TYPE")  # noqa: B009 - every event model declares it
        return self._message(self._topics.events, ce_type, encode(body), trunk_id, cause)

    @staticmethod
    def _snapshot(trunk: SipTrunk) -> bytes:
        """The encoded `TrunkState` body (its fields in its order): the trunk's view, built
        once per change."""
        return to_json(
            {"trunk": view_json(trunk), "tenantId": trunk.tenant_id, "version": trunk.version}
        )

    def _message(
        self, topic: str, ce_type: str, payload: bytes | None, trunk_id: UUID, cause: Cause
    ) -> OutgoingMessage:
        ce = CloudEventHeaders(
            id=str(uuid4()),
            source=self._source,
            type=ce_type,
            time=self._clock(),
            correlation_id=cause.correlation_id,
            causation_id=cause.command_id,
        )
        return OutgoingMessage(topic, str(trunk_id), tuple(ce.to_text()), payload)

    def _state(self, event: OutgoingMessage, payload: bytes | None) -> OutgoingMessage:
        """The state topic's message of `event`'s change: the event's headers (source, time,
        cause), with an id and a type of its own; copied, not built and formatted again."""
        own = {"ce_id": str(uuid4()), "ce_type": TrunkState.CE_TYPE}
        headers = tuple((name, own.get(name, value)) for name, value in event.headers)
        return OutgoingMessage(self._topics.state, event.key, headers, payload)


def _with_changed_fields(snapshot: bytes, changed: tuple[str, ...]) -> bytes:
    """`TrunkUpdated`'s body from the encoded snapshot: the same fields in the same order, then
    `changedFields`. Byte for byte `encode(TrunkUpdated(...))`: see test_outgoing.py."""
    return snapshot[:-1] + b',"changedFields":' + to_json(list(changed)) + b"}"
