"""Topic names and KAFKA_TOPIC_PREFIX."""

from __future__ import annotations

import dataclasses

import pytest
from sip_trunk_contracts import COMMANDS, DLT, EVENTS, STATE, Topics


def test_names() -> None:
    assert (COMMANDS, EVENTS, STATE, DLT) == (
        "sip-trunks.commands",
        "sip-trunks.events",
        "sip-trunks.state",
        "sip-trunks.commands.DLT",
    )
    assert Topics() == Topics.with_prefix() == Topics.with_prefix("")
    assert Topics().dlt == "sip-trunks.commands.DLT"


def test_prefix_is_prepended_verbatim() -> None:
    t = Topics.with_prefix("staging.")
    assert t == Topics(
        commands="staging.sip-trunks.commands",
        events="staging.sip-trunks.events",
        state="staging.sip-trunks.state",
        dlt="staging.sip-trunks.commands.DLT",
    )
    assert Topics.with_prefix("x-").events == "x-sip-trunks.events"


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Topics().events = "other"  # type: ignore[misc]
