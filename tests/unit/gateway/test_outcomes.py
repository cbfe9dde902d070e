"""Outcome events decoded with the contract models answer with the trunk JSON as written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.responses import JSONResponse
from sip_trunk_contracts import CloudEventHeaders, TrunkCreated, TrunkRejected, TrunkUpdated
from sip_trunk_contracts.limits import MAX_ID_LENGTH

from service.adapters.command_bus import Outcome
from service.entrypoints.gateway.outcomes import outcome_response
from service.entrypoints.gateway.problems import ProblemError

TRUNK: dict[str, Any] = {
    "id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "name": "Main Office SIP Trunk",
    "gateways": [{"ipOrDomain": "sip-gateway.example.com", "port": 5060, "name": "Primary"}],
    "authentication": {"username": "office_sip_user", "password": "********"},
    "advanced": {"transport": "tls", "headers": {"X-Ünïcode": "välue"}},
    "isSystem": False,
    "providerId": "ST_1",
    "createdAt": "2024-01-15T09:30:00.123456Z",
    "updatedAt": "2024-01-15T09:31:00.000000Z",
}


def outcome(ce_type: str, body: dict[str, Any]) -> Outcome:
    headers = CloudEventHeaders.new(ce_type, "/sip-trunk-service", "corr", "cmd")
    return Outcome.decode(headers, json.loads(json.dumps(body)))


@pytest.mark.parametrize("event", [TrunkCreated, TrunkUpdated])
def test_the_trunk_is_answered_byte_for_byte_as_the_worker_wrote_it(
    event: type[TrunkCreated | TrunkUpdated],
) -> None:
    body: dict[str, Any] = {"trunk": TRUNK, "tenantId": "acme", "version": 4}
    if event is TrunkUpdated:
        body["changedFields"] = ["name"]
    response = outcome_response(outcome(event.CE_TYPE, body))
    assert response.body == JSONResponse(TRUNK).body
    assert response.headers["ETag"] == '"4"'


def test_a_rejection_is_raised_as_its_problem() -> None:
    body = {
        "trunkId": TRUNK["id"],
        "tenantId": "acme",
        "commandId": "c" * MAX_ID_LENGTH,
        "commandType": "sip_trunks.UpdateSipTrunk.v1",
        "reason": "validation_failed",
        "detail": "invalid fields: /name",
        "errors": [{"pointer": "/name", "message": "must be 1-100 characters after trimming"}],
    }
    with pytest.raises(ProblemError) as raised:
        outcome_response(outcome(TrunkRejected.CE_TYPE, body))
    problem = raised.value.problem
    assert (problem.status, problem.code, problem.detail) == (
        422,
        "validation_failed",
        "invalid fields: /name",
    )
    assert [e.model_dump() for e in problem.errors] == body["errors"]


def test_only_outcome_types_decode() -> None:
    with pytest.raises(KeyError):
        outcome("sip_trunks.TrunkState.v1", {"trunk": TRUNK, "tenantId": None, "version": 1})
