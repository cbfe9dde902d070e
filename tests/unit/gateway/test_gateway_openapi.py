"""The OpenAPI document: checked in without drift, served, and listing every contract status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sip_trunk_contracts import RejectionReason

from service.entrypoints.gateway.app import main, openapi_document
from service.entrypoints.gateway.problems import STATUS, Code
from tests.unit.gateway.gateway_fakes import SETTINGS, running_app

CHECKED_IN = Path(__file__).parents[3] / "docs" / "openapi.json"
REGENERATE = "python -m service.entrypoints.gateway.app --openapi > docs/openapi.json"

EXPECTED = {
    ("/api/v1/sip-trunks", "get"): {"200", "401", "403", "422"},
    ("/api/v1/sip-trunks", "post"): {
        *("201", "400", "401", "403", "408", "409", "413", "415", "422", "503", "504"),
    },
    ("/api/v1/sip-trunks/{id}", "get"): {"200", "401", "403", "404", "422"},
    ("/api/v1/sip-trunks/{id}", "patch"): {
        *("200", "400", "401", "403", "404", "408", "412", "413", "415", "422", "503", "504"),
    },
    ("/api/v1/sip-trunks/{id}", "delete"): {
        *("204", "400", "401", "403", "404", "412", "422", "503", "504"),
    },
    ("/healthz", "get"): {"200"},
    ("/readyz", "get"): {"200", "503"},
}


def test_checked_in_document_is_current() -> None:
    assert json.loads(CHECKED_IN.read_text()) == openapi_document(), f"run: {REGENERATE}"


def test_generator_prints_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--openapi"])
    assert json.loads(capsys.readouterr().out) == openapi_document()


async def test_the_app_serves_the_document_and_its_pages_only_when_asked() -> None:
    async with running_app(settings=SETTINGS.model_copy(update={"gateway_api_docs": True})) as (
        client,
        _,
    ):
        response = await client.get("/openapi.json")
        assert response.json() == openapi_document()
        assert (await client.get("/docs")).status_code == 200
        assert (await client.get("/redoc")).status_code == 200
    async with running_app() as (client, _):  # the default: no API description served
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert (await client.get(path)).status_code == 404


def test_every_operation_documents_its_statuses() -> None:
    paths = openapi_document()["paths"]
    found = {(p, m): set(op["responses"]) for p, ops in paths.items() for m, op in ops.items()}
    assert found == EXPECTED


def test_every_contract_code_is_documented_under_its_status() -> None:
    documented: dict[str, set[str]] = {}
    for ops in openapi_document()["paths"].values():
        for op in ops.values():
            for status, response in op["responses"].items():
                content = response.get("content", {}).get("application/problem+json")
                if content is not None:
                    codes = content["schema"]["properties"]["code"]["enum"]
                    documented.setdefault(status, set()).update(codes)
    internal = {Code.METHOD_NOT_ALLOWED, Code.INTERNAL_ERROR}
    for code, status in STATUS.items():
        if code not in internal:
            assert code.value in documented[str(status)], code


def test_every_rejection_reason_is_an_api_code() -> None:
    assert {r.value for r in RejectionReason} <= {c.value for c in Code}


def test_writes_are_secured_and_described() -> None:
    document = openapi_document()
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    create = document["paths"]["/api/v1/sip-trunks"]["post"]
    assert create["security"] == [{"bearerAuth": ["sip-trunks:write"]}]
    schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/TrunkCreate"}
    assert set(document["components"]["schemas"]["TrunkCreate"]["required"]) == {
        "name",
        "gateways",
    }
    created = create["responses"]["201"]
    assert set(created["headers"]) == {"Location", "ETag", "X-Request-ID"}
    trunk = created["content"]["application/json"]["schema"]
    assert trunk == {"$ref": "#/components/schemas/TrunkView"}
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code", "errors"} <= set(problem["properties"])
