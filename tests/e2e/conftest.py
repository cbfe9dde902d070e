"""End-to-end fixtures: the whole stack as processes, driven over HTTP like a user would."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.conftest import KAFKA_BOOTSTRAP, KAFKA_SECURED, kafka_user_env
from tests.e2e.stack import ROLES, Stack, running_stack

# Fixed: this module is imported twice (as pytest's conftest and by the tests).
SYSTEM_TRUNK_ID = "5e7a7e00-0000-4000-8000-00000000e2e0"


@pytest_asyncio.fixture(scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("e2e")
    system = tmp / "system-trunks.json"
    system.write_text(
        json.dumps(
            [
                {
                    "id": SYSTEM_TRUNK_ID,
                    "name": "Platform trunk",
                    "gateways": [{"ipOrDomain": "sip.platform.example", "name": "p"}],
                }
            ]
        )
    )
    # Each process as its own Kafka user, with the ACL plan only, where Kafka has users.
    role_env = {role: kafka_user_env(role) for role in ROLES} if KAFKA_SECURED else None
    async with running_stack(
        tmp, KAFKA_BOOTSTRAP, role_env=role_env, SYSTEM_TRUNKS_FILE=str(system)
    ) as running:
        yield running
