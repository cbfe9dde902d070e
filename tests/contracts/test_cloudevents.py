"""CloudEvents binary-mode header codec."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest
from sip_trunk_contracts import (
    CloudEventHeaders,
    CreateSipTrunk,
    InvalidHeaders,
    TrunkCreated,
)

WHEN = datetime(2024, 1, 15, 9, 30, 0, 123000, tzinfo=UTC)


def headers(**overrides: bytes | None) -> list[tuple[str, bytes | None]]:
    base: dict[str, bytes | None] = {
        "ce_specversion": b"1.0",
        "ce_id": b"id-1",
        "ce_source": b"/gateway",
        "ce_type": CreateSipTrunk.CE_TYPE.encode(),
        "ce_time": b"2024-01-15T09:30:00.123Z",
        "content-type": b"application/json",
        "ce_correlationid": b"corr-1",
    }
    base.update(overrides)
    return list(base.items())


def test_to_kafka_exact_headers() -> None:
    h = CloudEventHeaders(
        id="id-1",
        source="/gateway",
        type=CreateSipTrunk.CE_TYPE,
        time=WHEN,
        correlation_id="corr-1",
    )
    assert h.to_kafka() == [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"id-1"),
        ("ce_source", b"/gateway"),
        ("ce_type", b"sip_trunks.CreateSipTrunk.v1"),
        ("ce_time", b"2024-01-15T09:30:00.123Z"),
        ("content-type", b"application/json"),
        ("ce_correlationid", b"corr-1"),
    ]


def test_causation_only_when_set() -> None:
    h = CloudEventHeaders.new(TrunkCreated.CE_TYPE, "/sip-trunk-service", "corr", "cmd-id")
    assert ("ce_causationid", b"cmd-id") in h.to_kafka()
    h2 = CloudEventHeaders.new(TrunkCreated.CE_TYPE, "/sip-trunk-service", "corr")
    assert all(key != "ce_causationid" for key, _ in h2.to_kafka())


@pytest.mark.parametrize("causation", [None, "cmd-1"])
def test_round_trip(causation: str | None) -> None:
    h = CloudEventHeaders.new(TrunkCreated.CE_TYPE, "/svc", "corr-9", causation)
    assert CloudEventHeaders.from_kafka(h.to_kafka()) == h


def test_new_fills_uuid_and_now() -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    h = CloudEventHeaders.new("t", "/s", "c")
    UUID(h.id)
    assert before <= h.time <= datetime.now(UTC)
    assert h.time.tzinfo is UTC
    assert h.time.microsecond % 1000 == 0
    assert h.content_type == "application/json"


def test_time_normalised_to_utc_milliseconds() -> None:
    local = datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    h = CloudEventHeaders(id="i", source="s", type="t", time=local, correlation_id="c")
    assert h.time == WHEN
    assert dict(h.to_kafka())["ce_time"] == b"2024-01-15T09:30:00.123Z"


def test_naive_time_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CloudEventHeaders(
            id="i", source="s", type="t", time=datetime(2024, 1, 1), correlation_id="c"
        )


def test_from_kafka_parses() -> None:
    h = CloudEventHeaders.from_kafka(headers(ce_causationid=b"cause", extra=b"\xff"))
    assert h == CloudEventHeaders(
        id="id-1",
        source="/gateway",
        type=CreateSipTrunk.CE_TYPE,
        time=WHEN,
        correlation_id="corr-1",
        causation_id="cause",
    )


@pytest.mark.parametrize(
    "text",
    [b"2024-01-15T09:30:00.123Z", b"2024-01-15T10:30:00.123+01:00", b"2024-01-15T09:30:00.123456Z"],
)
def test_from_kafka_accepts_any_rfc3339(text: bytes) -> None:
    assert CloudEventHeaders.from_kafka(headers(ce_time=text)).time == WHEN


def test_correlation_defaults_to_id() -> None:
    h = CloudEventHeaders.from_kafka(headers(ce_correlationid=None))
    assert h.correlation_id == "id-1"
    stripped = [(k, v) for k, v in headers() if k != "ce_correlationid"]
    assert CloudEventHeaders.from_kafka(stripped).correlation_id == "id-1"


def test_content_type_defaults_to_json() -> None:
    stripped = [(k, v) for k, v in headers() if k != "content-type"]
    assert CloudEventHeaders.from_kafka(stripped).content_type == "application/json"


def test_header_names_case_insensitive_and_last_wins() -> None:
    h = CloudEventHeaders.from_kafka([*headers(), ("Content-Type", b"text/plain"), ("ce_id", b"x")])
    assert h.content_type == "text/plain"
    assert h.id == "x"


@pytest.mark.parametrize("name", ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time"])
def test_missing_required_header(name: str) -> None:
    stripped = [(k, v) for k, v in headers() if k != name]
    with pytest.raises(InvalidHeaders, match=name):
        CloudEventHeaders.from_kafka(stripped)


@pytest.mark.parametrize("value", [None, b""])
def test_null_or_empty_required_header(value: bytes | None) -> None:
    with pytest.raises(InvalidHeaders, match="ce_type"):
        CloudEventHeaders.from_kafka(headers(ce_type=value))


def test_not_utf8() -> None:
    with pytest.raises(InvalidHeaders, match="'ce_source' is not valid UTF-8"):
        CloudEventHeaders.from_kafka(headers(ce_source=b"\xff\xfe"))


@pytest.mark.parametrize("version", [b"0.3", b"1", b"2.0"])
def test_wrong_specversion(version: bytes) -> None:
    with pytest.raises(InvalidHeaders, match="ce_specversion"):
        CloudEventHeaders.from_kafka(headers(ce_specversion=version))


@pytest.mark.parametrize("text", [b"yesterday", b"2024-13-01T00:00:00Z", b"2024-01-15T09:30:00"])
def test_bad_time(text: bytes) -> None:
    with pytest.raises(InvalidHeaders, match="ce_time"):
        CloudEventHeaders.from_kafka(headers(ce_time=text))


def test_invalid_headers_is_value_error() -> None:
    assert issubclass(InvalidHeaders, ValueError)
