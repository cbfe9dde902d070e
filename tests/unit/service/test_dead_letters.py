"""No password reaches the DLT (CONTRACT §4.2): strict JSON is masked, anything else withheld."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from sip_trunk_contracts import MASKED_PASSWORD

from service.adapters.dead_letters import dead_letter_of

SECRET = "Dlt-Pa55word-never"
HEADERS = [("ce_type", b"sip_trunks.CreateSipTrunk.v1"), ("ce_id", b"id-1")]


def record(value: bytes | None) -> Any:
    return ConsumerRecord("cmds", 2, 9, 0, 0, b"key", value, None, 1, 1, HEADERS)


@pytest.mark.parametrize(
    "value",
    [
        SECRET.encode(),  # the bare password as the whole value
        b'{"password": "' + SECRET.encode() + b'"',  # truncated
        b'{"password": "' + SECRET.encode() + b'", }',  # a trailing comma
        b'{"pass\\u0077ord": "' + SECRET.encode() + b'" "x"}',  # escaped key, malformed
        b'{"password": "' + SECRET.encode() + b'\xff"}',  # not UTF-8
        b"password=" + SECRET.encode(),  # a form, not JSON
        b'{"password": NaN, "p": "' + SECRET.encode() + b'"}',  # JSON but not strict
    ],
    ids=["bare", "truncated", "trailing-comma", "escaped-key", "not-utf8", "form", "nan"],
)
def test_a_value_that_is_not_strict_json_is_withheld(value: bytes) -> None:
    copy = dead_letter_of(record(value), "value is not strict UTF-8 JSON")
    assert copy["value"] is None
    assert SECRET.encode() not in repr(copy).encode()
    headers = dict(copy["headers"])
    assert headers["kafka_dlt-value-withheld"].startswith(b"not strict JSON")
    assert headers["kafka_dlt-value-length"] == str(len(value)).encode()
    assert headers["kafka_dlt-original-offset"] == b"9"
    assert headers["kafka_dlt-exception-message"] == b"value is not strict UTF-8 JSON"
    assert copy["key"] == b"key"
    assert headers["ce_id"] == b"id-1"  # the original headers kept


def test_strict_json_is_copied_with_every_password_masked() -> None:
    value = json.dumps(
        {"authentication": {"password": SECRET}, "list": [{"password": SECRET * 2}], "n": 1}
    ).encode()
    copy = dead_letter_of(record(value), "no trunkId")
    assert SECRET.encode() not in copy["value"]
    assert json.loads(copy["value"]) == {
        "authentication": {"password": MASKED_PASSWORD},
        "list": [{"password": MASKED_PASSWORD}],
        "n": 1,
    }
    headers = dict(copy["headers"])
    assert headers["kafka_dlt-redacted"] == b"password"
    assert "kafka_dlt-value-withheld" not in headers


def test_strict_json_without_a_password_is_copied_byte_for_byte() -> None:
    value = b'{"name":  "x"}'
    copy = dead_letter_of(record(value), "no trunkId")
    assert copy["value"] == value
    assert "kafka_dlt-redacted" not in dict(copy["headers"])


def test_an_empty_value_stays_empty() -> None:
    copy = dead_letter_of(record(None), "empty message value")
    assert copy["value"] is None
    assert "kafka_dlt-value-withheld" not in dict(copy["headers"])
