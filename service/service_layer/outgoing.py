"""Builds the messages the service publishes: outcome events, state snapshots, tombstones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from pydantic import BaseModel
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
from service.service_layer.views import to_view

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

    def created(self, trunk: SipTrunk, cause: Cause) -> OutgoingMessage:
        body = TrunkCreated(trunk=to_view(trunk), tenantId=trunk.tenant_id, version=trunk.version)
        return self._event(body, trunk.id, cause)

    def updated(self, trunk: SipTrunk, changed: tuple[str, ...], cause: Cause) -> OutgoingMessage:
        body = TrunkUpdated(
            trunk=to_view(trunk),
            tenantId=trunk.tenant_id,
            version=trunk.version,
            changedFields=list(changed),
        )
        return self._event(body, trunk.id, cause)

    def deleted(self, trunk: SipTrunk, cause: Cause) -> OutgoingMessage:
        body = TrunkDeleted(trunkId=trunk.id, tenantId=trunk.tenant_id, version=trunk.version)
        return self._event(body, trunk.id, cause)

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

    def state(self, trunk: SipTrunk, cause: Cause) -> OutgoingMessage:
        body = TrunkState(trunk=to_view(trunk), tenantId=trunk.tenant_id, version=trunk.version)
        return self._message(self._topics.state, body.CE_TYPE, encode(body), trunk.id, cause)

    def tombstone(self, trunk_id: UUID, cause: Cause) -> OutgoingMessage:
        return self._message(self._topics.state, TrunkState.CE_TYPE, None, trunk_id, cause)

    def _event(self, body: BaseModel, trunk_id: UUID, cause: Cause) -> OutgoingMessage:
        ce_type: str = getattr(body, "CE_TYPE")  # noqa: B009 - every event model declares it
        return self._message(self._topics.events, ce_type, encode(body), trunk_id, cause)

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
        headers = tuple((name, value.decode()) for name, value in ce.to_kafka())
        return OutgoingMessage(topic, str(trunk_id), headers, payload)
