"""Property: whatever a record holds, the worker answers it exactly once and goes on.

Over 10,000 generated records (deep nesting, huge strings, surrogates, NaN and infinities,
NUL bytes, wrong types in every field, random headers, repeats of a command id) go through the
worker's real batch policy (`CommandWorker`) and the real SQL unit of work on SQLite. Each record
must end with exactly one outcome event (its `ce_causationid`) or exactly one DLT entry, never
both, never neither; after every batch a good command is applied. The DLT sink records in memory
here; tests/integration/test_worker_on_kafka.py sends the same kinds of records through the
real broker.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from aiokafka.errors import MessageSizeTooLargeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sip_trunk_contracts import CreateSipTrunk, DeleteSipTrunk, Topics, UpdateSipTrunk
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.adapters.command_signatures import ProducerTrust
from service.adapters.database import create_engine, migrate
from service.adapters.dead_letters import DeadLetters
from service.adapters.encryption import load_cipher
from service.adapters.password_seal import password_keys
from service.adapters.provider_none import NoProvider
from service.adapters.schema import outbox
from service.adapters.sql_unit_of_work import SqlUnitOfWork
from service.config import Settings
from service.entrypoints.command_worker import CommandWorker
from service.service_layer.handlers import CommandProcessor, Services
from service.service_layer.outgoing import MessageFactory
from tests.integration.conftest import BACKENDS, database_url_for

# SQLite carries the 10,000; PostgreSQL (slower per transaction) adds what only it refuses,
# such as NUL characters, on fewer.
STALL_S = 20.0  # a batch that takes longer has stalled (batches take milliseconds)
RECORDS_WANTED = {"sqlite": 10_000, "postgresql": 2_000}
TOPICS = Topics.with_prefix("property.")
TYPES = [CreateSipTrunk.CE_TYPE, UpdateSipTrunk.CE_TYPE, DeleteSipTrunk.CE_TYPE]
KNOWN_TRUNK = uuid.UUID("00000000-0000-4000-8000-000000000001")  # created first, then targeted

# --- what a hostile producer sends -----------------------------------------------------------

_hostile_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
_text = st.one_of(*[st.text(max_size=12)] * 4, _hostile_text)  # surrogates and NUL, now and then
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**18, max_value=10**40),
    *[st.floats(allow_nan=False, allow_infinity=False)] * 3,
    st.floats(),  # NaN and infinities
    *[_text] * 3,
    st.just("x" * 70_000),
)
_json_like = st.recursive(
    _scalars,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(_text, kids, max_size=3),
    max_leaves=8,
)
_gateway = st.fixed_dictionaries(
    {"ipOrDomain": st.sampled_from(["sip.example.com", "203.0.113.5", "::1"]) | _json_like},
    optional={"port": st.integers(-1, 70_000) | _json_like, "name": _text | _json_like},
)
_fields = st.fixed_dictionaries(
    {},
    optional={
        "name": _text | _json_like,
        "gateways": st.lists(_gateway, max_size=3) | _json_like,
        "authentication": st.fixed_dictionaries(
            {"username": _text | _json_like, "password": _text | _json_like}
        )
        | _json_like,
        "advanced": st.dictionaries(
            st.sampled_from(["transport", "numbers", "headers", "nope"]), _json_like, max_size=2
        )
        | _json_like,
    },
)
_trunk_ids = st.sampled_from([str(KNOWN_TRUNK)]) | st.uuids().map(str) | _json_like
_bodies = st.fixed_dictionaries(
    {"trunkId": _trunk_ids},
    optional={
        "tenantId": st.sampled_from(["acme", None]) | _json_like,
        "expectedVersion": st.integers(-2, 5) | _json_like,
        "changes": _fields | _json_like,
    },
).flatmap(lambda body: _fields.map(lambda fields: {**fields, **body}))

# These tests are about the batch policy: every unsigned command may act.
TRUST_UNSIGNED = ProducerTrust([], require_signature=False, max_age=timedelta(days=30))


def _deep(depth: int) -> bytes:
    return b'{"trunkId": "%s", "changes": {"advanced": {"numbers": %s%s}}}' % (
        str(KNOWN_TRUNK).encode(),
        b"[" * depth,
        b"]" * depth,
    )


_commands = _bodies.map(lambda b: json.dumps(b).encode("utf-8", "surrogatepass"))
SECRET = "Pr0perty-Secret"
_pathological = st.sampled_from(
    [
        b'"' + b'\\"' * 40_000,  # an unclosed string of escaped quotes
        b'{"trunkId": "%s", "a": "' % str(KNOWN_TRUNK).encode() + b"[" * 60_000 + b'"}',
        b"[" * 200_000,
        b'{"password": "' + SECRET.encode() + b'", "x": ' + b"[" * 40 + b"]" * 40 + b"}",
        b'{"trunkId": "%s", "tenantId": "acme", "name": "' % str(KNOWN_TRUNK).encode()
        + b"x" * 200_000
        + b'", "authentication": {"username": "u", "password": "'
        + SECRET.encode()
        + b'"}}',
    ]
)
_values = st.one_of(
    *[_commands] * 8,  # mostly recognisable commands with hostile content: TrunkRejected
    _pathological,
    st.integers(1, 5_000).map(_deep),
    st.binary(max_size=40),
    st.none(),
    st.just(b'{"trunkId": "%s", "name": ' % str(KNOWN_TRUNK).encode() + b'"\\ud800"}'),
)
_header_names = st.sampled_from(
    ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_correlationid"]
) | st.text(max_size=8)
_odd_headers = st.lists(st.tuples(_header_names, st.none() | st.binary(max_size=30)), max_size=6)


@st.composite
def _records(draw: st.DrawFn) -> tuple[bytes | None, list[tuple[str, bytes | None]]]:
    value = draw(_values)
    if draw(st.integers(0, 9)) == 0:
        return value, draw(_odd_headers)  # headers of any shape: mostly unrecognisable
    headers = {
        "ce_specversion": b"1.0",
        "ce_id": str(uuid.uuid4()).encode(),
        "ce_source": draw(st.sampled_from([b"/property", b"/p\x00", "/\u00fc".encode()])),
        "ce_type": draw(st.sampled_from(TYPES)).encode(),
        "ce_time": b"2026-11-29T12:00:00Z",
        "ce_correlationid": b"c",
    }
    # Extra headers of any name but ce_id: a repeated command id is a duplicate, answered twice.
    extra_names = _header_names.filter(lambda name: name != "ce_id")
    extra = draw(st.lists(st.tuples(extra_names, st.binary(max_size=10)), max_size=2))
    return value, [*headers.items(), *extra]


# --- the rig -------------------------------------------------------------------------------


class DltProducer:
    """Kafka's side of the real `DeadLetters`: stores the copies, refuses one over 1 MB."""

    def __init__(self) -> None:
        self.offsets: list[int] = []

    async def send(self, topic: str, **message: Any) -> asyncio.Future[None]:
        if len(message["value"] or b"") > 1_000_000:
            raise MessageSizeTooLargeError()
        headers = dict(message["headers"])
        assert headers["kafka_dlt-exception-message"]
        assert SECRET.encode() not in (message["value"] or b"")  # masked, or withheld
        self.offsets.append(int(headers["kafka_dlt-original-offset"]))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class Rig:
    def __init__(self, engine: AsyncEngine, tmp: Path) -> None:
        self.engine = engine
        services = Services(
            NoProvider(),
            MessageFactory(TOPICS, "/sip-trunk-service"),
            passwords=password_keys(Settings(data_dir=tmp)),  # random passwords: refused
            digest_key=load_cipher(None, tmp).digest_key,
        )
        processor = CommandProcessor(
            lambda: SqlUnitOfWork(engine, load_cipher(None, tmp)), services
        )
        self.dlt = DltProducer()
        dead_letters = DeadLetters(self.dlt, "dlt")  # type: ignore[arg-type]
        self.worker = CommandWorker(
            processor, dead_letters, self._database_ok, trust=TRUST_UNSIGNED
        )
        self.offset = 0
        self.last_outbox_id = 0

    async def _database_ok(self) -> bool:
        return True

    def record(
        self, value: bytes | None, headers: list[tuple[str, bytes | None]]
    ) -> ConsumerRecord[bytes, bytes]:
        self.offset += 1
        return ConsumerRecord("cmds", 0, self.offset, 0, 0, b"k", value, None, 1, 1, headers)

    async def new_outcomes(self) -> Counter[str]:
        """Outcome events written since the last call, counted by the command id they answer."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(outbox.c.id, outbox.c.topic, outbox.c.headers).where(
                        outbox.c.id > self.last_outbox_id
                    )
                )
            ).all()
        if rows:
            self.last_outbox_id = max(row.id for row in rows)
        return Counter(
            dict(row.headers)["ce_causationid"] for row in rows if row.topic == TOPICS.events
        )

    async def check(self, drawn: list[tuple[bytes | None, list[tuple[str, bytes | None]]]]) -> int:
        """One batch: the drawn records, then a good command that must be applied."""
        command_id = str(uuid.uuid4())
        records = [
            *(self.record(value, headers) for value, headers in drawn),
            self.record(_good_create(str(uuid.uuid4())), _headers(command_id)),
        ]
        dlt_before = len(self.dlt.offsets)
        started = time.monotonic()
        assert await self.worker.handle_batch(records)
        # Liveness, not speed: a stall (say, quadratic parsing of a hostile value) shows here.
        assert time.monotonic() - started < STALL_S, [r.value[:80] for r in records if r.value]
        outcomes = await self.new_outcomes()
        dead = Counter(self.dlt.offsets[dlt_before:])
        for record in records:
            ce_id = dict(record.headers).get("ce_id")
            answered = outcomes[ce_id.decode(errors="replace")] if isinstance(ce_id, bytes) else 0
            assert (answered, dead[record.offset]) in {(1, 0), (0, 1)}, (record, answered)
        assert outcomes[command_id] == 1
        return len(drawn)


def _good_create(trunk_id: str) -> bytes:
    gateway = {"ipOrDomain": "sip.example.com", "name": "gw"}
    body = {"trunkId": trunk_id, "tenantId": "acme", "name": "Good", "gateways": [gateway]}
    return json.dumps(body).encode()


def _headers(command_id: str) -> list[tuple[str, bytes | None]]:
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", command_id.encode()),
        ("ce_source", b"/property"),
        ("ce_type", CreateSipTrunk.CE_TYPE.encode()),
        ("ce_time", datetime.now(UTC).isoformat().encode()),
    ]


@pytest.mark.timeout(900)  # 12,000 records: minutes on a loaded 2-core machine
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_record_gets_exactly_one_answer_and_the_worker_goes_on(
    backend: str, tmp_path: Path, postgres_url: str
) -> None:
    loop = asyncio.new_event_loop()  # hypothesis drives a synchronous test: its own loop
    engine = create_engine(database_url_for(backend, tmp_path, postgres_url))
    loop.run_until_complete(migrate(engine))
    if backend == "postgresql":  # the database the adapter tests share: start it empty
        loop.run_until_complete(_truncate(engine))
    rig = Rig(engine, tmp_path)
    known = (_good_create(str(KNOWN_TRUNK)), _headers("known"))  # what updates and deletes hit
    loop.run_until_complete(rig.check([known]))
    seen = 0

    @settings(
        max_examples=RECORDS_WANTED[backend] // 5,  # lists of 6-14, shorter ones drawn more
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(_records(), min_size=6, max_size=14))
    def property_holds(drawn: list[tuple[bytes | None, list[tuple[str, bytes | None]]]]) -> None:
        nonlocal seen
        seen += loop.run_until_complete(rig.check(drawn))

    try:
        property_holds()
    finally:
        loop.run_until_complete(engine.dispose())
        loop.close()
    dead = len(rig.dlt.offsets)
    print(f"\n{backend}: {seen} generated records: {seen - dead} answered, {dead} dead-lettered")
    assert seen >= RECORDS_WANTED[backend], f"only {seen} records were generated"
    # Both kinds of answer in bulk, or the generator is too tame to prove anything.
    assert min(dead, seen - dead) >= seen // 10, (seen, dead)


async def _truncate(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE sip_trunks, outbox, processed_commands"))
