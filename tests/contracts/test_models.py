"""Round trips and wire format of the contract models."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from pydantic import BaseModel, ValidationError
from sip_trunk_contracts import (
    COMMAND_TYPES,
    EVENT_TYPES,
    MASKED_PASSWORD,
    AuthenticationView,
    CreateSipTrunk,
    DeleteSipTrunk,
    FieldError,
    GatewayView,
    RejectionReason,
    TrunkCreated,
    TrunkDeleted,
    TrunkRejected,
    TrunkState,
    TrunkUpdated,
    TrunkView,
    UnknownType,
    UpdateSipTrunk,
    decode,
    encode,
    field_errors,
    format_utc,
)

# The example of CONTRACT.md §1, verbatim apart from whitespace.
CONTRACT_EXAMPLE = """{
  "id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
  "name": "Main Office SIP Trunk",
  "gateways": [{ "ipOrDomain": "sip-gateway.example.com", "port": 5060, "name": "Primary Gateway" }],
  "authentication": { "username": "office_sip_user", "password": "********" },
  "advanced": {},
  "isSystem": false,
  "providerId": "ST_xxxxxxxxxxxx",
  "createdAt": "2024-01-15T09:30:00Z",
  "updatedAt": "2024-01-15T09:30:00Z"
}"""  # noqa: E501

TRUNK_ID = UUID("3fa85f64-5717-4562-b3fc-2c963f66afa6")


def trunk(**overrides: Any) -> TrunkView:
    fields: dict[str, Any] = json.loads(CONTRACT_EXAMPLE) | overrides
    return TrunkView.model_validate(fields)


def test_contract_example_round_trips_byte_for_byte() -> None:
    """Timestamps always carry six fractional digits (CONTRACT.md §4.1): one sortable format."""
    view = TrunkView.model_validate_json(CONTRACT_EXAMPLE)
    stamps = dict.fromkeys(("createdAt", "updatedAt"), "2024-01-15T09:30:00.000000Z")
    compact = json.dumps(json.loads(CONTRACT_EXAMPLE) | stamps, separators=(",", ":"))
    assert view.model_dump_json() == compact
    assert encode(view).decode() == compact


def test_trunk_field_order_and_names() -> None:
    keys = list(json.loads(trunk().model_dump_json()))
    assert keys == [
        "id",
        "name",
        "gateways",
        "authentication",
        "advanced",
        "isSystem",
        "providerId",
        "createdAt",
        "updatedAt",
    ]


def test_nulls_are_kept() -> None:
    data = json.loads(trunk(authentication=None, providerId=None).model_dump_json())
    assert data["authentication"] is None
    assert data["providerId"] is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2024-01-15T09:30:00Z", "2024-01-15T09:30:00.000000Z"),
        ("2024-01-15T09:30:00.987654Z", "2024-01-15T09:30:00.987654Z"),
        ("2024-01-15T09:30:00.5Z", "2024-01-15T09:30:00.500000Z"),
        ("2024-01-15T11:30:00.987654+02:00", "2024-01-15T09:30:00.987654Z"),
        ("2024-01-14T23:30:00-10:00", "2024-01-15T09:30:00.000000Z"),
    ],
)
def test_datetimes_normalised_to_utc_with_six_fractional_digits(given: str, expected: str) -> None:
    view = trunk(createdAt=given)
    assert view.createdAt.tzinfo is UTC
    assert view.createdAt.replace(microsecond=0) == datetime(2024, 1, 15, 9, 30, tzinfo=UTC)
    assert json.loads(view.model_dump_json())["createdAt"] == expected


def test_formatted_datetimes_sort_as_instants() -> None:
    instants = [datetime(2024, 1, 15, 9, 30, 0, us, tzinfo=UTC) for us in (0, 5, 500_000)]
    assert sorted(format_utc(i) for i in reversed(instants)) == [format_utc(i) for i in instants]


def test_python_datetime_in_other_zone_is_normalised() -> None:
    local = datetime(2024, 1, 15, 10, 30, 0, 500, tzinfo=timezone(timedelta(hours=1)))
    view = trunk(createdAt=local)
    assert view.createdAt.tzinfo is UTC
    assert view.createdAt == datetime(2024, 1, 15, 9, 30, 0, 500, tzinfo=UTC)


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValidationError, match="UTC offset"):
        trunk(createdAt="2024-01-15T09:30:00")


@pytest.mark.parametrize(
    "overrides",
    [
        {"authentication": {"username": "u", "password": "secret123"}},
        {"extra": 1},
        {"gateways": [{"ipOrDomain": "a.b", "port": "5060", "name": "g"}]},
        {"isSystem": "false"},
    ],
)
def test_trunk_view_is_strict(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TrunkView.model_validate_json(json.dumps(json.loads(CONTRACT_EXAMPLE) | overrides))


def test_password_is_only_ever_the_mask() -> None:
    assert MASKED_PASSWORD == "********"
    assert AuthenticationView(username="u", password=MASKED_PASSWORD).password == "********"


def test_trunk_view_is_frozen() -> None:
    with pytest.raises(ValidationError):
        trunk().name = "other"


def sample_models() -> list[BaseModel]:
    view = TrunkView(
        id=TRUNK_ID,
        name="Main",
        gateways=[GatewayView(ipOrDomain="gw.example.com", port=5060, name="Primary")],
        authentication=None,
        advanced={"transport": "tls", "numbers": ["+4930123"]},
        isSystem=False,
        providerId=None,
        createdAt=datetime(2024, 1, 15, 9, 30, tzinfo=UTC),
        updatedAt=datetime(2024, 1, 16, 9, 30, tzinfo=UTC),
    )
    return [
        CreateSipTrunk(
            trunkId=TRUNK_ID,
            tenantId="t1",
            name="Main",
            gateways=[{"ipOrDomain": "gw.example.com", "port": 5060, "name": "Primary"}],
            authentication={"username": "u", "password": "secret-pass"},
            advanced={},
        ),
        CreateSipTrunk(trunkId=TRUNK_ID, tenantId=None, name="x", gateways=[]),
        UpdateSipTrunk(trunkId=TRUNK_ID, tenantId="t1", expectedVersion=3, changes={"name": "y"}),
        UpdateSipTrunk(trunkId=TRUNK_ID, tenantId="t1", changes={"authentication": None}),
        DeleteSipTrunk(trunkId=TRUNK_ID, tenantId="t1", expectedVersion=None),
        DeleteSipTrunk(trunkId=TRUNK_ID, tenantId="t1"),
        TrunkCreated(trunk=view, tenantId="t1", version=1),
        TrunkUpdated(
            trunk=view, tenantId=None, version=2, changedFields=["authentication.password"]
        ),
        TrunkDeleted(trunkId=TRUNK_ID, tenantId="t1", version=3),
        TrunkRejected(
            trunkId=TRUNK_ID,
            tenantId="t1",
            commandId="c-1",
            commandType=CreateSipTrunk.CE_TYPE,
            reason=RejectionReason.VALIDATION_FAILED,
            detail="invalid trunk",
            errors=[FieldError(pointer="/gateways/0/port", message="must be 1-65535")],
        ),
        TrunkState(trunk=view, tenantId="t1", version=2),
        view,
    ]


@pytest.mark.parametrize("model", sample_models(), ids=lambda m: type(m).__name__)
def test_round_trip(model: BaseModel) -> None:
    data = encode(model)
    again = type(model).model_validate_json(data)
    assert again == model
    assert encode(again) == data
    ce_type = getattr(type(model), "CE_TYPE", None)
    if ce_type is not None:
        assert decode(ce_type, data) == model


def test_registry_covers_every_type() -> None:
    assert set(COMMAND_TYPES) == {
        "sip_trunks.CreateSipTrunk.v1",
        "sip_trunks.UpdateSipTrunk.v1",
        "sip_trunks.DeleteSipTrunk.v1",
    }
    assert set(EVENT_TYPES) == {
        "sip_trunks.TrunkCreated.v1",
        "sip_trunks.TrunkUpdated.v1",
        "sip_trunks.TrunkDeleted.v1",
        "sip_trunks.TrunkRejected.v1",
        "sip_trunks.TrunkState.v1",
    }
    for ce_type, model in (COMMAND_TYPES | EVENT_TYPES).items():
        assert getattr(model, "CE_TYPE") == ce_type  # noqa: B009


def test_decode_unknown_type() -> None:
    with pytest.raises(UnknownType, match="nope"):
        decode("nope", b"{}")


def test_decode_invalid_json() -> None:
    with pytest.raises(ValidationError):
        decode(DeleteSipTrunk.CE_TYPE, b"not json")


def test_rejection_reasons_are_exactly_the_contract_list() -> None:
    assert [r.value for r in RejectionReason] == [
        "validation_failed",
        "not_found",
        "system_trunk_immutable",
        "version_conflict",
        "already_exists",
        "idempotency_key_reused",
        "provider_rejected",
        "provider_unavailable",
    ]
    assert json.loads(encode(sample_models()[9]))["reason"] == "validation_failed"


def test_events_forbid_unknown_fields() -> None:
    body = {"trunkId": str(TRUNK_ID), "tenantId": None, "version": 1, "extra": True}
    with pytest.raises(ValidationError):
        decode(TrunkDeleted.CE_TYPE, json.dumps(body).encode())


def test_rejected_reason_must_be_known() -> None:
    body = json.loads(encode(sample_models()[9])) | {"reason": "bad_mood"}
    with pytest.raises(ValidationError):
        TrunkRejected.model_validate_json(json.dumps(body))


# --- commands: loose writable fields, absent vs null, extras kept -------------------------


def create_json(**fields: Any) -> bytes:
    body = {"trunkId": str(TRUNK_ID), "tenantId": "t1"} | fields
    return json.dumps(body).encode()


def test_create_accepts_any_content_for_the_domain_to_judge() -> None:
    cmd = decode(CreateSipTrunk.CE_TYPE, create_json(name=7, gateways="nope", advanced=[1]))
    assert isinstance(cmd, CreateSipTrunk)
    assert cmd.body() == {"name": 7, "gateways": "nope", "advanced": [1]}


def test_create_absent_and_null_differ() -> None:
    absent = CreateSipTrunk.model_validate_json(create_json(name="n", gateways=[]))
    null = CreateSipTrunk.model_validate_json(
        create_json(name="n", gateways=[], authentication=None, advanced=None)
    )
    assert absent.body() == {"name": "n", "gateways": []}
    assert null.body() == {"name": "n", "gateways": [], "authentication": None, "advanced": None}
    assert "authentication" not in json.loads(encode(absent))
    assert json.loads(encode(null))["authentication"] is None


def test_create_keeps_unknown_fields_for_the_domain() -> None:
    cmd = CreateSipTrunk.model_validate_json(
        create_json(name="n", gateways=[], id="x", isSystem=True)
    )
    assert cmd.model_extra == {"id": "x", "isSystem": True}
    assert cmd.body()["id"] == "x"
    assert json.loads(encode(cmd))["isSystem"] is True


def test_update_and_delete_keep_unknown_top_level_keys() -> None:
    cmd = UpdateSipTrunk.model_validate_json(create_json(changes={}, name="oops"))
    assert cmd.model_extra == {"name": "oops"}
    assert cmd.expectedVersion is None
    assert "expectedVersion" not in json.loads(encode(cmd))


@pytest.mark.parametrize(
    ("model", "fields", "pointer"),
    [
        (CreateSipTrunk, {"gateways": []}, "/name"),
        (UpdateSipTrunk, {"changes": 3}, "/changes"),
        (UpdateSipTrunk, {"changes": {}, "expectedVersion": "3"}, "/expectedVersion"),
        (DeleteSipTrunk, {"expectedVersion": 1.5}, "/expectedVersion"),
        (DeleteSipTrunk, {"tenantId": 5}, "/tenantId"),
        (DeleteSipTrunk, {"trunkId": "not-a-uuid"}, "/trunkId"),
    ],
)
def test_envelope_is_strict_and_errors_map_to_pointers(
    model: type[BaseModel], fields: dict[str, Any], pointer: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(create_json(**fields))
    errors = field_errors(caught.value)
    assert [e.pointer for e in errors] == [pointer]
    assert errors[0].message


def test_pointer_escaping() -> None:
    with pytest.raises(ValidationError) as caught:
        TrunkView.model_validate({"advanced": {}})
    pointers = {e.pointer for e in field_errors(caught.value)}
    assert "/id" in pointers

    class Odd(BaseModel):
        values: dict[str, int]

    with pytest.raises(ValidationError) as caught:
        Odd.model_validate({"values": {"a/b~c": "x"}})
    assert [e.pointer for e in field_errors(caught.value)] == ["/values/a~1b~0c"]


def test_ce_types_follow_the_naming_scheme() -> None:
    for model in (CreateSipTrunk, UpdateSipTrunk, DeleteSipTrunk, TrunkCreated, TrunkState):
        assert f"sip_trunks.{model.__name__}.v1" == model.CE_TYPE


@pytest.mark.parametrize("model", sample_models(), ids=lambda m: type(m).__name__)
def test_python_mode_accepts_parsed_json(model: BaseModel) -> None:
    # Consumers such as FastStream validate json.loads(body), not the raw bytes.
    assert type(model).model_validate(json.loads(encode(model))) == model
