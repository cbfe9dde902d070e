"""A worker and a relay (re)started while the database is down wait for it instead of exiting
(found by the fault suite: a relay restarted during a PostgreSQL outage died in `migrate`)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.integration.conftest import NewDatabase
from tests.integration.kafka_stack import CREATE, isolated_settings, running_service
from tests.integration.tcp_proxy import TcpProxy


async def test_worker_and_relay_started_during_an_outage_come_up_with_the_database(
    new_postgres_database: NewDatabase, tmp_path: Path
) -> None:
    database = make_url(await new_postgres_database())
    assert database.host is not None
    assert database.port is not None
    async with TcpProxy(database.host, database.port) as proxy:
        proxy.mode = "refuse"  # PostgreSQL "down" before either process starts
        settings = isolated_settings(
            tmp_path,
            "outage",
            database_url=database.set(port=proxy.port).render_as_string(hide_password=False),
        )
        async with running_service(settings) as client:
            body = {
                "trunkId": str(uuid.uuid4()),
                "tenantId": "acme",
                "name": "Started in an outage",
                "gateways": [{"ipOrDomain": "sip.example.com", "name": "gw"}],
            }
            sent = await client.send(CREATE, body)
            await asyncio.sleep(2)  # both processes are retrying by now (or, before, had exited)
            assert client.taps[settings.topics.events].records == []
            proxy.mode = "forward"
            event = await client.outcome(sent)
            assert event["headers"]["ce_type"] == "sip_trunks.TrunkCreated.v1"
