"""Kafka topic names of the SIP trunk service (CONTRACT.md §3)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COMMANDS", "DLT", "EVENTS", "STATE", "Topics"]

COMMANDS = "sip-trunks.commands"
EVENTS = "sip-trunks.events"
STATE = "sip-trunks.state"
DLT = "sip-trunks.commands.DLT"


@dataclass(frozen=True, slots=True)
class Topics:
    """The four topic names as one deployment sees them."""

    commands: str = COMMANDS
    events: str = EVENTS
    state: str = STATE
    dlt: str = DLT

    @classmethod
    def with_prefix(cls, prefix: str = "") -> Topics:
        """Names with ``KAFKA_TOPIC_PREFIX`` prepended verbatim (no separator is added)."""
        return cls(
            commands=prefix + COMMANDS,
            events=prefix + EVENTS,
            state=prefix + STATE,
            dlt=prefix + DLT,
        )
