"""read_command: a recognisable command (maybe with envelope errors) or Unrecognisable (→ DLT)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sip_trunk_contracts import (
    CloudEventHeaders,
    CreateSipTrunk,
    DeleteSipTrunk,
    TrunkCreated,
    UpdateSipTrunk,
)

from service.service_layer.inbound import InboundCommand, Unrecognisable, read_command
from tests.unit.service.fakes import CREATE, DELETE, PASSWORD, TENANT, UPDATE, create_body

Headers = list[tuple[str, bytes | None]]

TRUNK_ID = uuid4()


def headers(ce_type: str = DELETE, /, **overrides: str | None) -> Headers:
    """Valid CloudEvents headers; `ce_x=None` drops a header, `ce_x="..."` replaces it."""
    ce = CloudEventHeaders.new(ce_type, "/test", "corr-1")
    result: Headers = []
    for name, value in ce.to_kafka():
        key = name.replace("-", "_")
        if key in overrides:
            new = overrides[key]
            if new is not None:
                result.append((name, new.encode()))
        else:
            result.append((name, value))
    return result


def encoded(body: Any) -> bytes:
    return json.dumps(body).encode()


def delete_value(trunk_id: UUID = TRUNK_ID, **extra: Any) -> bytes:
    return encoded({"trunkId": str(trunk_id), "tenantId": TENANT, **extra})


# --- recognisable commands -----------------------------------------------------------------


def test_reads_a_create_command() -> None:
    body = create_body(TRUNK_ID)
    hs = headers(CREATE)

    cmd = read_command(encoded(body), hs)

    assert isinstance(cmd.model, CreateSipTrunk)
    assert cmd.trunk_id == TRUNK_ID
    assert cmd.tenant_id == TENANT
    assert cmd.body == body
    assert cmd.errors == ()
    assert cmd.ce == CloudEventHeaders.from_kafka(hs)
    assert cmd.ce.type == CREATE
    assert cmd.ce.correlation_id == "corr-1"
    assert len(cmd.body_sha256) == 64


def test_reads_an_update_command() -> None:
    changes = {"name": "x", "authentication": None}
    value = encoded(
        {"trunkId": str(TRUNK_ID), "tenantId": TENANT, "expectedVersion": 3, "changes": changes}
    )

    cmd = read_command(value, headers(UPDATE))

    assert isinstance(cmd.model, UpdateSipTrunk)
    assert cmd.model.changes == changes
    assert cmd.model.expectedVersion == 3
    assert cmd.errors == ()


def test_reads_a_delete_command() -> None:
    cmd = read_command(delete_value(), headers(DELETE))

    assert isinstance(cmd.model, DeleteSipTrunk)
    assert cmd.model.expectedVersion is None
    assert (cmd.trunk_id, cmd.tenant_id, cmd.errors) == (TRUNK_ID, TENANT, ())


def test_a_missing_correlation_id_defaults_to_the_command_id() -> None:
    cmd = read_command(delete_value(), headers(ce_correlationid=None, ce_id="abc"))

    assert cmd.ce.id == "abc"
    assert cmd.ce.correlation_id == "abc"


def test_unknown_headers_and_header_name_case_are_tolerated() -> None:
    hs = [(name.upper(), value) for name, value in headers()]
    hs.append(("traceparent", b"\xff\x00 binary tracing"))

    cmd = read_command(delete_value(), hs)

    assert cmd.ce.type == DELETE


# --- unrecognisable: dead-lettered ---------------------------------------------------------


@pytest.mark.parametrize(
    "hs",
    [
        [],
        headers(ce_specversion=None),
        headers(ce_id=None),
        headers(ce_source=None),
        headers(ce_type=None),
        headers(ce_time=None),
        headers(ce_id=""),
        headers(ce_specversion="0.3"),
        headers(ce_time="yesterday"),
        headers(ce_time="2024-01-15T09:30:00"),  # no offset
        [(k, b"\xff\xfe" if k == "ce_source" else v) for k, v in headers()],
        [(k, None if k == "ce_type" else v) for k, v in headers()],
    ],
    ids=[
        "no-headers",
        "no-specversion",
        "no-id",
        "no-source",
        "no-type",
        "no-time",
        "empty-id",
        "bad-specversion",
        "bad-time",
        "naive-time",
        "non-utf8-header",
        "null-header",
    ],
)
def test_missing_or_invalid_cloudevents_headers_are_unrecognisable(hs: Headers) -> None:
    with pytest.raises(Unrecognisable):
        read_command(delete_value(), hs)


@pytest.mark.parametrize(
    "ce_type",
    [TrunkCreated.CE_TYPE, "sip_trunks.CreateSipTrunk.v2", "CreateSipTrunk", "x"],
)
def test_an_unknown_command_type_is_unrecognisable(ce_type: str) -> None:
    with pytest.raises(Unrecognisable, match="unknown command type"):
        read_command(delete_value(), headers(ce_type))


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"not json",
        b"{'trunkId': 'single quotes'}",
        b'{"trunkId": "' + str(TRUNK_ID).encode() + b'", "tenantId": "\xff\xfe\xfa"}',
        b"\xc3\x28",
        b"[]",
        b'[{"trunkId": "' + str(TRUNK_ID).encode() + b'"}]',
        b'"a string"',
        b"42",
        b"null",
        b"{}",
        encoded({"tenantId": TENANT}),
        encoded({"trunkId": None}),
        encoded({"trunkId": 5}),
        encoded({"trunkId": "not-a-uuid"}),
        encoded({"trunkId": ""}),
        encoded({"trunkId": [str(TRUNK_ID)]}),
    ],
    ids=[
        "none",
        "empty",
        "not-json",
        "python-repr",
        "non-utf8-inside",
        "non-utf8",
        "array",
        "array-of-command",
        "string",
        "number",
        "null",
        "no-trunk-id",
        "missing-trunk-id",
        "null-trunk-id",
        "int-trunk-id",
        "bad-trunk-id",
        "empty-trunk-id",
        "list-trunk-id",
    ],
)
def test_a_value_that_is_not_a_command_is_unrecognisable(value: bytes | None) -> None:
    with pytest.raises(Unrecognisable):
        read_command(value, headers(DELETE))


# --- recognisable but invalid: TrunkRejected validation_failed -----------------------------


@pytest.mark.parametrize(
    ("ce_type", "extra", "pointer"),
    [
        (UPDATE, {"changes": 3}, "/changes"),
        (UPDATE, {"changes": None}, "/changes"),
        (UPDATE, {}, "/changes"),
        (UPDATE, {"changes": {}, "expectedVersion": "1"}, "/expectedVersion"),
        (UPDATE, {"changes": {}, "expectedVersion": True}, "/expectedVersion"),
        (UPDATE, {"changes": {}, "expectedVersion": 1.5}, "/expectedVersion"),
        (DELETE, {"tenantId": 5}, "/tenantId"),
        (DELETE, {"expectedVersion": "1"}, "/expectedVersion"),
        (CREATE, {"name": "x", "gateways": []}, "/tenantId"),
        (CREATE, {"tenantId": TENANT, "gateways": []}, "/name"),
    ],
    ids=[
        "changes-int",
        "changes-null",
        "changes-missing",
        "version-string",
        "version-bool",
        "version-float",
        "tenant-int",
        "delete-version-string",
        "create-no-tenant",
        "create-no-name",
    ],
)
def test_a_malformed_envelope_is_a_command_with_errors(
    ce_type: str, extra: dict[str, Any], pointer: str
) -> None:
    body = {"trunkId": str(TRUNK_ID), "tenantId": TENANT}
    if ce_type == CREATE:
        del body["tenantId"]
    body.update(extra)

    cmd = read_command(encoded(body), headers(ce_type))

    assert cmd.model is None
    assert cmd.trunk_id == TRUNK_ID
    assert pointer in [e.pointer for e in cmd.errors]
    assert all(e.message for e in cmd.errors)


def test_a_non_string_tenant_is_no_tenant() -> None:
    cmd = read_command(delete_value(tenantId=5), headers())

    assert cmd.tenant_id is None
    assert [e.pointer for e in cmd.errors] == ["/tenantId"]


def test_envelope_errors_never_echo_a_password() -> None:
    body = {"trunkId": str(TRUNK_ID), "tenantId": PASSWORD, "changes": PASSWORD}
    body["expectedVersion"] = PASSWORD

    cmd = read_command(encoded(body), headers(UPDATE))

    assert cmd.errors
    assert PASSWORD not in repr(cmd.errors)


# --- the body hash -------------------------------------------------------------------------


def test_body_hash_is_stable_under_key_order_and_whitespace() -> None:
    body = create_body(TRUNK_ID, advanced={"transport": "tls", "numbers": ["+15551234567"]})
    reordered = {k: body[k] for k in reversed(list(body))}
    reordered["advanced"] = {"numbers": ["+15551234567"], "transport": "tls"}
    pretty = json.dumps(reordered, indent=4).encode()

    first = read_command(encoded(body), headers(CREATE))
    second = read_command(pretty, headers(CREATE))

    assert first.body_sha256 == second.body_sha256


def test_body_hash_changes_with_any_value() -> None:
    base = read_command(encoded(create_body(TRUNK_ID)), headers(CREATE)).body_sha256
    changes: list[dict[str, Any]] = [
        {"name": "Other"},
        {"gateways": [{"ipOrDomain": "sip-gateway.example.com", "port": 5061, "name": "g"}]},
        {"authentication": {"username": "office_sip_user", "password": PASSWORD + "!"}},
        {"advanced": {"transport": "udp"}},
    ]
    hashes = {
        read_command(encoded(create_body(TRUNK_ID, **c)), headers(CREATE)).body_sha256
        for c in changes
    }
    assert base not in hashes
    assert len(hashes) == len(changes)


def test_body_hash_ignores_the_headers() -> None:
    value = delete_value()
    assert (
        read_command(value, headers(ce_id="a")).body_sha256
        == read_command(value, headers(ce_id="b", ce_source="/other")).body_sha256
    )


# --- anything at all: an InboundCommand or Unrecognisable, never another exception ---------

_KNOWN_NAMES = [
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "ce_correlationid",
    "ce_causationid",
    "content-type",
    "CE_TYPE",
]
_header_values = (
    st.none()
    | st.binary(max_size=20)
    | st.sampled_from([b"1.0", CREATE.encode(), UPDATE.encode(), DELETE.encode(), b""])
    | st.sampled_from([b"2024-01-15T09:30:00Z", b"2024-01-15T09:30:00+02:00"])
    | st.text(max_size=20).map(str.encode)
)
_header_lists = st.lists(
    st.tuples(st.sampled_from(_KNOWN_NAMES) | st.text(max_size=10), _header_values),
    max_size=12,
)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
_command_like = st.fixed_dictionaries(
    {"trunkId": st.uuids().map(str) | _json},
    optional={
        "tenantId": _json,
        "expectedVersion": _json,
        "changes": _json,
        "name": _json,
        "gateways": _json,
        "authentication": _json,
        "advanced": _json,
    },
)
_well_typed = st.fixed_dictionaries(
    {"trunkId": st.uuids().map(str), "tenantId": st.none() | st.text(min_size=1, max_size=8)},
    optional={
        "expectedVersion": st.integers(),
        "changes": st.dictionaries(st.text(max_size=8), _json, max_size=3),
        "name": _json,
        "gateways": _json,
        "authentication": _json,
    },
)
_values = (
    st.none()
    | st.binary(max_size=60)
    | _json.map(encoded)
    | _command_like.map(encoded)
    | _well_typed.map(encoded)
)


def _valid_then(extra: list[tuple[str, bytes | None]], ce_type: str) -> Headers:
    return [*headers(ce_type), *extra]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=_values,
    hs=st.builds(
        _valid_then,
        st.lists(st.tuples(st.sampled_from(_KNOWN_NAMES), _header_values), max_size=2),
        st.sampled_from([CREATE, UPDATE, DELETE]),
    )
    | _header_lists,
)
def test_anything_is_a_command_or_unrecognisable(value: bytes | None, hs: Headers) -> None:
    try:
        cmd = read_command(value, hs)
    except Unrecognisable:
        event("unrecognisable")
        return
    event("command with errors" if cmd.errors else "valid command")
    assert isinstance(cmd, InboundCommand)
    assert isinstance(cmd.trunk_id, UUID)
    assert (cmd.model is None) == bool(cmd.errors)


@settings(max_examples=200, deadline=None)
@given(body=_well_typed, ce_type=st.sampled_from([CREATE, UPDATE, DELETE]), extra=_json)
def test_a_uuid_trunk_id_is_always_a_recognisable_command(
    body: dict[str, Any], ce_type: str, extra: object
) -> None:
    body = {**body, "unknownKey": extra}

    cmd = read_command(encoded(body), headers(ce_type))

    assert cmd.trunk_id == UUID(body["trunkId"])
    assert cmd.tenant_id == body["tenantId"]
    assert cmd.body == json.loads(encoded(body))
    assert (cmd.model is None) == bool(cmd.errors)
    if ce_type == UPDATE:
        assert (cmd.model is None) == ("changes" not in body)


# --- known bugs: exceptions that escape read_command (the worker only catches Unrecognisable) --


def _with_time(text: str) -> Headers:
    return headers(ce_time=text)


def test_deeply_nested_json_is_unrecognisable() -> None:
    value = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(Unrecognisable):
        read_command(value, headers())


def test_a_huge_integer_is_unrecognisable() -> None:
    value = b'{"trunkId": "' + str(TRUNK_ID).encode() + b'", "x": 1' + b"0" * 5000 + b"}"
    with pytest.raises(Unrecognisable):
        read_command(value, headers())


@pytest.mark.parametrize("ce_time", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
def test_a_ce_time_out_of_range_in_utc_is_unrecognisable(ce_time: str) -> None:
    with pytest.raises(Unrecognisable):
        read_command(delete_value(), _with_time(ce_time))


def test_a_ce_time_at_the_edge_of_the_range_in_utc_is_fine() -> None:
    cmd = read_command(delete_value(), _with_time("9999-12-31T23:59:59Z"))
    assert cmd.ce.time == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_command_ids_are_kept_verbatim() -> None:
    ce = replace(CloudEventHeaders.new(DELETE, "/s", "c"), id="  odd id ü ")
    cmd = read_command(delete_value(), ce.to_kafka())
    assert cmd.ce.id == "  odd id ü "


@pytest.mark.parametrize("tenant", ["", "t" * 256])
def test_an_empty_or_overlong_tenant_is_an_envelope_error(tenant: str) -> None:
    cmd = read_command(encoded({"trunkId": str(TRUNK_ID), "tenantId": tenant}), headers(DELETE))
    assert cmd.tenant_id is None
    assert [e.pointer for e in cmd.errors] == ["/tenantId"]


def test_a_body_over_64_kib_is_refused_not_parsed() -> None:
    body = {"trunkId": str(TRUNK_ID), "tenantId": "acme", "name": "x" * 70_000, "gateways": []}
    cmd = read_command(encoded(body), headers(CREATE))
    assert cmd.model is None
    assert [e.pointer for e in cmd.errors] == [""]
    assert "65536 bytes" in cmd.errors[0].message


def test_unpaired_surrogates_are_not_json_so_unrecognisable() -> None:
    value = b'{"trunkId": "' + str(TRUNK_ID).encode() + b'", "tenantId": "\\ud800"}'
    with pytest.raises(Unrecognisable, match="surrogates"):
        read_command(value, headers(DELETE))


@pytest.mark.parametrize(
    "member", [b'"x": NaN', b'"x": -Infinity', b'"x": 1e99999', b'"x": ' + b"[" * 32 + b"]" * 32]
)
def test_what_strict_json_refuses_is_unrecognisable(member: bytes) -> None:
    value = b'{"trunkId": "' + str(TRUNK_ID).encode() + b'", ' + member + b"}"
    with pytest.raises(Unrecognisable, match="strict"):
        read_command(value, headers(DELETE))


def test_nesting_up_to_32_levels_is_read_and_left_to_the_domain() -> None:
    value = b'{"trunkId": "' + str(TRUNK_ID).encode() + b'", "x": ' + b"[" * 31 + b"]" * 31 + b"}"
    assert read_command(value, headers(DELETE)).trunk_id == TRUNK_ID


def test_an_overlong_command_id_is_unrecognisable() -> None:
    with pytest.raises(Unrecognisable):
        read_command(
            encoded({"trunkId": str(TRUNK_ID), "tenantId": None}), headers(DELETE, ce_id="i" * 256)
        )
