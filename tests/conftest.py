"""Shared test settings. Integration tests need the real services `make test` starts:
Kafka (KAFKA_BOOTSTRAP_SERVERS, default 127.0.0.1:9092) and PostgreSQL (TEST_POSTGRES_URL,
default the dev cluster of dev/postgres.sh). A missing service fails the run, never skips it."""

from __future__ import annotations

import os

KAFKA_BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:55432/sip_trunks"
)
LIVEKIT_URL = os.environ.get("LIVEKIT_URL", "http://127.0.0.1:7880")
