"""Every process takes KAFKA_BOOTSTRAP_SERVERS as a list: the worker (FastStream), the relay,
the topics command and the command bus of the gateway and CLI. The list names an address where
no broker listens first, so only a client that really walks the list gets through."""

from __future__ import annotations

import math
import uuid
from pathlib import Path
from typing import Any

import pytest
from sip_trunk_contracts import CommandEnvelope, TrunkCreated
from sip_trunk_contracts.strict_json import JsonError

from service.bootstrap import cli_bus
from tests.conftest import KAFKA_BOOTSTRAP
from tests.e2e.stack import free_port
from tests.integration.kafka_stack import isolated_settings, running_service


async def test_the_service_runs_on_a_bootstrap_list_and_the_bus_writes_strict_json(
    tmp_path: Path,
) -> None:
    settings = isolated_settings(
        tmp_path, "multi", kafka_bootstrap_servers=f"127.0.0.1:{free_port()},{KAFKA_BOOTSTRAP}"
    )
    assert len(settings.kafka_bootstrap_list) >= 2
    trunk_id = str(uuid.uuid4())
    fields = {"name": "Office", "gateways": [{"ipOrDomain": "sip.example.com", "name": "gw"}]}

    def create(**changed: Any) -> CommandEnvelope:
        return CommandEnvelope.create(
            {**fields, **changed}, trunk_id=trunk_id, tenant_id="acme", source="/cli"
        )

    async with running_service(settings):
        bus = cli_bus(settings)
        await bus.start()
        try:
            outcome = await bus.request(create(), timeout_s=20)
            assert outcome.headers.type == "sip_trunks.TrunkCreated.v1"
            assert isinstance(outcome.event, TrunkCreated)
            assert str(outcome.event.trunk.id) == trunk_id
            # Nothing that is not RFC 8259 JSON is handed to Kafka: the caller hears why.
            for bad in (math.nan, math.inf, "\ud800"):
                with pytest.raises(JsonError):
                    await bus.send(create(name=bad))
        finally:
            await bus.stop()
