"""Issue 9's "Done means" for sealed passwords (CONTRACT §4.2), on every real component: the
worker, relay and gateway as processes, on SQLite and on PostgreSQL.

Creates and updates go through REST and `sip-trunks send`, each with a password of its own,
refused ones included (a stale If-Match, an invalid create, another tenant), and a producer
that does not seal sends passwords raw (a value that is not JSON, a plaintext command, JSON that
is no command). Then every message of every topic, DLT included, the process logs and the
database files are searched: none of the passwords is there, except where that producer wrote
it itself (the commands topic), which shows that the search reads what it searches.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from sip_trunk_contracts import CloudEventHeaders, CreateSipTrunk, Topics
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from service.entrypoints.processes import Stack, running_stack
from tests.conftest import KAFKA_BOOTSTRAP
from tests.integration.conftest import BACKENDS, NewDatabase
from tests.integration.kafka_stack import KAFKA, Message, every_message

pytestmark = pytest.mark.timeout(300)

BASE = "/api/v1/sip-trunks"
RUN = uuid.uuid4().hex[:10]


def secrets(*names: str) -> dict[str, str]:
    """Distinctive printable-ASCII passwords: a copy of one, anywhere, is found by a byte scan."""
    return {name: f"Pw-{RUN}-{name}" for name in names}


SEALED = secrets(  # through REST and the CLI: sealed before they reach Kafka
    "rest-create",
    "rest-update",
    "rest-stale",
    "rest-invalid",
    "rest-other-tenant",
    "rest-retry",
    "cli-create",
    "cli-update",
    "cli-stale",
    "cli-invalid",
    "cli-other-tenant",
)
RAW = secrets("raw-not-json", "raw-plaintext", "raw-no-command")  # a producer's own doing
NAME = f"Trunk-{RUN}"  # stored in the clear: the database search must find it


def trunk(password: str, **overrides: Any) -> dict[str, Any]:
    return {
        "name": NAME,
        "gateways": [{"ipOrDomain": "sip.example.com", "name": "main"}],
        "authentication": {"username": "office", "password": password},
        **overrides,
    }


def new_password(name: str) -> dict[str, Any]:
    return {"authentication": {"password": SEALED[name]}}


# --- what the users and producers do --------------------------------------------------------


async def through_rest(stack: Stack) -> None:
    async with stack.client("acme") as api, stack.client("globex") as other:
        created = await api.post(BASE, json=trunk(SEALED["rest-create"]))
        assert created.status_code == 201, created.text
        url = f"{BASE}/{created.json()['id']}"
        updated = await api.patch(
            url, json=new_password("rest-update"), headers={"If-Match": '"1"'}
        )
        assert updated.status_code == 200, updated.text
        stale = await api.patch(url, json=new_password("rest-stale"), headers={"If-Match": '"1"'})
        assert stale.status_code == 412, stale.text
        invalid = await api.post(BASE, json=trunk(SEALED["rest-invalid"], gateways=[]))
        assert invalid.status_code == 422, invalid.text
        foreign = await other.patch(url, json=new_password("rest-other-tenant"))
        assert foreign.status_code == 404, foreign.text
        key = {"Idempotency-Key": f"retry-{RUN}"}
        first = await api.post(BASE, json=trunk(SEALED["rest-retry"]), headers=key)
        again = await api.post(BASE, json=trunk(SEALED["rest-retry"]), headers=key)
        assert first.status_code == again.status_code == 201, again.text
        assert first.json() == again.json()  # sealed twice, into other bytes: one command


async def send(stack: Stack, *args: str) -> dict[str, Any]:
    """`sip-trunks send ...` as a user runs it; its outcome event. Its output is kept with the
    process logs, to be searched too."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.entrypoints.cli",
        "send",
        *args,
        env=stack.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    with (Path(stack.env["DATA_DIR"]) / "cli.log").open("ab") as log:
        log.write(out + err)
    assert process.returncode in (0, 2), err.decode()  # 2: a TrunkRejected
    outcome: dict[str, Any] = json.loads(out)
    return outcome


async def through_cli(stack: Stack) -> None:
    acme = ("--tenant", "acme")
    created = await send(stack, "create", *acme, "--data", json.dumps(trunk(SEALED["cli-create"])))
    assert created["type"] == "sip_trunks.TrunkCreated.v1", created
    at = ("--trunk", created["trunk"]["id"])

    def patch(name: str) -> tuple[str, str]:
        return ("--data", json.dumps(new_password(name)))

    updated = await send(stack, "update", *acme, *at, *patch("cli-update"))
    assert updated["type"] == "sip_trunks.TrunkUpdated.v1", updated
    stale = await send(stack, "update", *acme, *at, "--expected-version", "1", *patch("cli-stale"))
    assert stale["reason"] == "version_conflict", stale
    invalid = json.dumps(trunk(SEALED["cli-invalid"], gateways=[]))
    refused = await send(stack, "create", *acme, "--data", invalid)
    assert refused["reason"] == "validation_failed", refused
    foreign = await send(stack, "update", "--tenant", "globex", *at, *patch("cli-other-tenant"))
    assert foreign["reason"] == "not_found", foreign


async def raw_producer(topic: str) -> dict[str, str]:
    """What a producer that does not seal sends; the command id of each."""
    trunk_id = str(uuid.uuid4())
    plaintext = {"trunkId": trunk_id, "tenantId": "acme", **trunk(RAW["raw-plaintext"])}
    values = {
        "raw-not-json": b'{"password": "%s", \xff' % RAW["raw-not-json"].encode(),
        "raw-plaintext": json.dumps(plaintext).encode(),
        "raw-no-command": json.dumps({"authentication": {"password": RAW["raw-no-command"]}}),
    }
    producer = AIOKafkaProducer(**KAFKA)
    await producer.start()
    ids = {}
    try:
        for name, value in values.items():
            ce = CloudEventHeaders.new(CreateSipTrunk.CE_TYPE, "/raw", f"raw-{RUN}")
            encoded = value.encode() if isinstance(value, str) else value
            await producer.send_and_wait(
                topic, key=trunk_id.encode(), value=encoded, headers=ce.to_kafka()
            )
            ids[name] = ce.id
    finally:
        await producer.stop()
    return ids


# --- where passwords could be ---------------------------------------------------------------


async def once_answered(topics: Topics, ids: dict[str, str]) -> list[Message]:
    """Every message, once the raw commands are answered: two on the DLT, one by an event."""
    for _ in range(150):
        messages = await every_message(topics)
        dead = {m.headers.get("ce_id") for m in messages if m.topic == topics.dlt}
        causes = {m.headers.get("ce_causationid") for m in messages if m.topic == topics.events}
        if {ids["raw-not-json"].encode(), ids["raw-no-command"].encode()} <= dead and ids[
            "raw-plaintext"
        ].encode() in causes:
            return messages
        await asyncio.sleep(0.2)
    raise AssertionError("the raw commands were not all answered")


def found_in(blobs: dict[str, bytes], passwords: dict[str, str]) -> list[str]:
    return sorted(
        f"{name} in {where}"
        for name, password in passwords.items()
        for where, blob in blobs.items()
        if password.encode() in blob
    )


def read_all(paths: Iterable[Path]) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in paths if p.is_file()}


async def postgres_files(url: str) -> dict[str, bytes]:
    """The database's own files and the write-ahead log, after a checkpoint wrote its pages."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("CHECKPOINT"))
            data_dir = Path((await conn.execute(text("SHOW data_directory"))).scalar_one())
            oid = (
                await conn.execute(
                    text("SELECT oid FROM pg_database WHERE datname = :name"),
                    {"name": make_url(url).database},
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    if not (data_dir / "base").is_dir():
        pytest.skip(f"PostgreSQL's files ({data_dir}) are not on this machine")
    return read_all([*(data_dir / "base" / str(oid)).iterdir(), *(data_dir / "pg_wal").iterdir()])


# --- the test -------------------------------------------------------------------------------


@pytest_asyncio.fixture(params=BACKENDS)
async def database(
    request: pytest.FixtureRequest, new_postgres_database: NewDatabase
) -> AsyncIterator[str | None]:
    """None for SQLite in the stack's DATA_DIR, or a fresh PostgreSQL database's URL."""
    yield None if request.param == "sqlite" else await new_postgres_database()


async def test_no_password_on_any_topic_in_any_log_or_database_file(
    tmp_path: Path, database: str | None
) -> None:
    env = {"PROVIDER": "none"} | ({"DATABASE_URL": database} if database else {})
    async with running_stack(tmp_path, KAFKA_BOOTSTRAP, prefix="sealed", **env) as stack:
        topics = Topics.with_prefix(stack.env["KAFKA_TOPIC_PREFIX"])
        await through_rest(stack)
        await through_cli(stack)
        messages = await once_answered(topics, await raw_producer(topics.commands))
    # The processes have stopped: their logs and database files are complete.

    commands = {
        f"commands #{n}": m.raw for n, m in enumerate(messages) if m.topic == topics.commands
    }
    others = {
        f"{m.topic} #{n}": m.raw for n, m in enumerate(messages) if m.topic != topics.commands
    }
    assert found_in(commands, SEALED) == []
    assert found_in(others, SEALED | RAW) == []
    # Not vacuous: the raw producer's passwords are where it put them, each password of REST
    # and the CLI went out sealed, and the DLT holds the raw commands.
    assert sorted(name for name in RAW if found_in(commands, {name: RAW[name]})) == sorted(RAW)
    sealed_values = sum(m.raw.count(b'"sealed:v1:') for m in messages if m.topic == topics.commands)
    assert sealed_values >= len(SEALED) + 1  # the REST retry sealed its password twice
    assert sum(m.topic == topics.dlt for m in messages) >= 2

    logs = read_all(tmp_path.glob("*.log"))
    assert {"worker.log", "relay.log", "gateway.log", "cli.log"} <= {Path(p).name for p in logs}
    assert found_in(logs, SEALED | RAW) == []

    files = (
        read_all(tmp_path.rglob("sip_trunks.sqlite3*"))
        if database is None
        else await postgres_files(database)
    )
    assert any(NAME.encode() in blob for blob in files.values()), "the search sees no trunk"
    assert found_in(files, SEALED | RAW) == []
