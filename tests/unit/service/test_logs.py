"""Logs never carry a password: `redact`, and the configured JSON logger end to end."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
import structlog
from sip_trunk_contracts import MASKED_PASSWORD as MASK

from service.logs import configure_logging, redact
from tests.unit.service.fakes import PASSWORD, Harness, create, update


def redacted(**event: Any) -> dict[str, Any]:
    return dict(redact(None, "info", dict(event)))


# --- redact --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["password", "Password", "PASSWORD", "secret", "token"])
def test_a_secret_key_at_the_top_is_masked(key: str) -> None:
    assert redacted(**{key: PASSWORD, "user": "alice"}) == {key: MASK, "user": "alice"}


@pytest.mark.parametrize(
    "key",
    [
        "api_secret",
        "encryption_key",
        "Authorization",
        "sasl_plain_password",
        "kafka_sasl_password",
        "password_seal_private_key",
        "command_signing_key",
        "auth_jwt_secret",
    ],
)
def test_other_secret_keys_are_masked(key: str) -> None:
    assert redacted(**{key: b"raw key bytes"}) == {key: MASK}


def test_a_nested_password_is_masked_at_any_depth() -> None:
    event = redacted(
        event="command.received",
        body={
            "trunkId": "t",
            "authentication": {"username": "u", "password": PASSWORD},
            "gateways": [{"name": "g", "meta": {"secret": PASSWORD}}],
            "deep": ({"x": [{"y": {"token": PASSWORD}}]},),
        },
    )

    assert PASSWORD not in json.dumps(event)
    assert event["body"]["authentication"] == {"username": "u", "password": MASK}
    assert event["body"]["gateways"][0]["meta"]["secret"] == MASK
    assert event["body"]["deep"][0]["x"][0]["y"]["token"] == MASK
    assert event["body"]["trunkId"] == "t"
    assert event["event"] == "command.received"


def test_a_secret_key_masks_a_whole_structure() -> None:
    assert redacted(password={"a": [PASSWORD]}) == {"password": MASK}


def test_a_missing_secret_stays_none() -> None:
    assert redacted(password=None) == {"password": None}


def test_non_secret_values_are_untouched() -> None:
    event = {"reason": "validation_failed", "count": 3, "ok": True, "items": [1, "a", None]}
    assert redacted(**event) == event


def test_redact_returns_the_event_it_was_given() -> None:
    event: dict[str, Any] = {"password": PASSWORD}
    assert redact(None, "info", event) is event
    assert event == {"password": MASK}


# --- the configured logger ------------------------------------------------------------------


def configure_json_logs() -> None:
    """Called in the test itself: pytest swaps sys.stderr between fixture setup and the call."""
    configure_logging(level="DEBUG", fmt="json")
    # Loggers cached on first use would keep writing to this test's (soon closed) stderr.
    structlog.configure(cache_logger_on_first_use=False)


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """Captured stderr; the logging configuration is undone afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield capsys
    finally:
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
        root.handlers[:], root.level = handlers, level


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    err = capsys.readouterr().err
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_the_json_logger_never_prints_a_password(json_logs: pytest.CaptureFixture[str]) -> None:
    configure_json_logs()
    log = structlog.get_logger("test")
    log.info("login", user="alice", password=PASSWORD)
    log.warning("nested", request={"authentication": {"password": PASSWORD}})
    structlog.contextvars.bind_contextvars(token=PASSWORD)
    log.error("bound", x=1)

    err = json_logs.readouterr().err
    assert PASSWORD not in err
    records = [json.loads(line) for line in err.splitlines()]
    assert [r["event"] for r in records] == ["login", "nested", "bound"]
    assert records[0]["password"] == MASK
    assert records[0]["user"] == "alice"
    assert records[0]["level"] == "info"
    assert records[1]["request"]["authentication"]["password"] == MASK
    assert records[2]["token"] == MASK


async def test_processing_commands_logs_context_but_no_password(
    json_logs: pytest.CaptureFixture[str],
) -> None:
    configure_json_logs()
    h = Harness()
    trunk_id = uuid4()
    first = create(trunk_id, correlation_id="corr-log")
    bad = update(trunk_id, {"authentication": {"password": "x" + PASSWORD[:5]}})

    await h.run(first, bad, first)

    records = lines(json_logs)
    assert [r["event"] for r in records] == [
        "command.applied",
        "command.rejected",
        "command.duplicate",
    ]
    assert all(PASSWORD[:5] not in json.dumps(r) for r in records)
    assert records[0]["correlation_id"] == "corr-log"
    assert records[0]["command_id"] == first.ce.id
    assert records[0]["trunk_id"] == str(trunk_id)
    assert records[1]["reason"] == "validation_failed"
    assert records[1]["command_id"] == bad.ce.id
    assert "correlation_id" not in structlog.contextvars.get_contextvars()
