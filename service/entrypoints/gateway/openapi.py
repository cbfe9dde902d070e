"""The OpenAPI document: every status of CONTRACT §2 per operation, problem and trunk schemas.

Request bodies are described (CONTRACT §1) but not enforced by the gateway: the worker is the
single judge of the field rules, so the models below exist for the document only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field
from sip_trunk_contracts import TrunkView
from sip_trunk_contracts.limits import (
    DEFAULT_PORT,
    DOMAIN_MAX_LENGTH,
    GATEWAY_NAME_MAX_LENGTH,
    MAX_GATEWAYS,
    MAX_NUMBERS,
    MAX_PORT,
    MIN_GATEWAYS,
    MIN_PORT,
    NAME_MAX_LENGTH,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    USERNAME_PATTERN,
    MediaEncryption,
    Transport,
)

from service.entrypoints.gateway.problems import PROBLEM_JSON, STATUS, Code, Problem

__all__ = ["CREATE_BODY", "PATCH_BODY", "documented", "install_openapi"]

_SECURITY = "bearerAuth"
_NO_EXTRA = ConfigDict(extra="forbid")


class GatewayInput(BaseModel):
    model_config = _NO_EXTRA
    ipOrDomain: str = Field(
        max_length=DOMAIN_MAX_LENGTH, description="IPv4, IPv6 or domain name; no port"
    )
    port: int = Field(default=DEFAULT_PORT, ge=MIN_PORT, le=MAX_PORT)
    name: str = Field(min_length=1, max_length=GATEWAY_NAME_MAX_LENGTH)


class AuthenticationInput(BaseModel):
    model_config = _NO_EXTRA
    username: str = Field(pattern=f"^{USERNAME_PATTERN}$")
    password: str = Field(
        min_length=PASSWORD_MIN_LENGTH,
        max_length=PASSWORD_MAX_LENGTH,
        description="`********` keeps the stored password (PATCH)",
    )


class AdvancedInput(BaseModel):
    model_config = _NO_EXTRA
    transport: Transport | None = None
    numbers: list[str] | None = Field(default=None, max_length=MAX_NUMBERS, description="E.164")
    mediaEncryption: MediaEncryption | None = None
    destinationCountry: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    headers: dict[str, str] | None = Field(default=None, description="SIP header name → value")


class TrunkCreate(BaseModel):
    """A new trunk; read-only and unknown fields are refused (422), naming the field."""

    model_config = _NO_EXTRA
    name: str = Field(min_length=1, max_length=NAME_MAX_LENGTH)
    gateways: list[GatewayInput] = Field(min_length=MIN_GATEWAYS, max_length=MAX_GATEWAYS)
    authentication: AuthenticationInput | None = None
    advanced: AdvancedInput | None = None


class AuthenticationPatch(BaseModel):
    model_config = _NO_EXTRA
    username: str | None = Field(default=None, pattern=f"^{USERNAME_PATTERN}$")
    password: str | None = Field(
        default=None, min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH
    )


class TrunkPatch(BaseModel):
    """A JSON Merge Patch (RFC 7396): absent is unchanged, `null` removes, lists are replaced."""

    model_config = _NO_EXTRA
    name: str | None = Field(default=None, min_length=1, max_length=NAME_MAX_LENGTH)
    gateways: list[GatewayInput] | None = Field(
        default=None, min_length=MIN_GATEWAYS, max_length=MAX_GATEWAYS
    )
    authentication: AuthenticationPatch | None = None
    advanced: AdvancedInput | None = None


def _body(model: type[BaseModel], media_types: tuple[str, ...]) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"required": True, "content": {m: {"schema": ref} for m in media_types}}


CREATE_BODY = _body(TrunkCreate, ("application/json",))
PATCH_BODY = _body(TrunkPatch, ("application/json", "application/merge-patch+json"))
_COMPONENTS: tuple[type[BaseModel], ...] = (Problem, TrunkCreate, TrunkPatch)

_ETAG = {"description": 'the version, `"<version>"`', "schema": {"type": "string"}}
_HEADERS: Mapping[str, dict[str, Any]] = {
    "ETag": _ETAG,
    "Location": {"description": "the new trunk's URL", "schema": {"type": "string"}},
    "Link": {"description": 'the next page: `<...>; rel="next"`', "schema": {"type": "string"}},
    "WWW-Authenticate": {"description": "the bearer challenge", "schema": {"type": "string"}},
}

_WRITE_ERRORS = (
    Code.MALFORMED_REQUEST,
    Code.UNAUTHORIZED,
    Code.INSUFFICIENT_SCOPE,
    Code.VALIDATION_FAILED,
    Code.PROVIDER_REJECTED,
    Code.IDEMPOTENCY_KEY_REUSED,
    Code.PROVIDER_UNAVAILABLE,
    Code.BROKER_UNAVAILABLE,
    Code.TIMEOUT,
)
_ON_EXISTING = (Code.NOT_FOUND, Code.SYSTEM_TRUNK_IMMUTABLE, Code.VERSION_CONFLICT)
_BODY_ERRORS = (Code.PAYLOAD_TOO_LARGE, Code.UNSUPPORTED_MEDIA_TYPE)
_READ_ERRORS = (Code.UNAUTHORIZED, Code.INSUFFICIENT_SCOPE, Code.VALIDATION_FAILED)

# operation -> (summary, success status, success description, success model, headers, errors)
_OPERATIONS: Mapping[str, tuple[str, int, str, Any, tuple[str, ...], tuple[Code, ...]]] = {
    "listSipTrunks": (
        "List SIP trunks",
        200,
        "the tenant's trunks and the system trunks, oldest first",
        list[TrunkView],
        ("Link",),
        _READ_ERRORS,
    ),
    "createSipTrunk": (
        "Create a SIP trunk",
        201,
        "the trunk created",
        TrunkView,
        ("Location", "ETag"),
        (*_WRITE_ERRORS, *_BODY_ERRORS, Code.ALREADY_EXISTS),
    ),
    "getSipTrunk": (
        "Get a SIP trunk",
        200,
        "the trunk",
        TrunkView,
        ("ETag",),
        (*_READ_ERRORS, Code.NOT_FOUND),
    ),
    "updateSipTrunk": (
        "Update a SIP trunk (merge patch)",
        200,
        "the trunk after the patch (unchanged by an empty one)",
        TrunkView,
        ("ETag",),
        (*_WRITE_ERRORS, *_BODY_ERRORS, *_ON_EXISTING),
    ),
    "deleteSipTrunk": (
        "Delete a SIP trunk and its provider trunk",
        204,
        "deleted",
        None,
        (),
        (*_WRITE_ERRORS, *_ON_EXISTING),
    ),
    "healthz": ("Liveness: the process is up", 200, '`{"status": "ok"}`', dict[str, str], (), ()),
    "readyz": (
        "Readiness: connected to Kafka and caught up with the state topic",
        200,
        '`{"status": "ok"}`',
        dict[str, str],
        (),
        (Code.BROKER_UNAVAILABLE,),
    ),
}


def _problems(codes: tuple[Code, ...]) -> dict[int | str, dict[str, Any]]:
    by_status: dict[int, list[Code]] = {}
    for code in codes:
        by_status.setdefault(STATUS[code], []).append(code)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, group in sorted(by_status.items()):
        schema = {
            "allOf": [{"$ref": "#/components/schemas/Problem"}],
            "properties": {"code": {"enum": [c.value for c in group]}},
        }
        responses[status] = {
            "description": "problem: " + ", ".join(f"`{c.value}`" for c in group),
            "content": {PROBLEM_JSON: {"schema": schema}},
        }
        if status in (401, 403):
            responses[status]["headers"] = {"WWW-Authenticate": _HEADERS["WWW-Authenticate"]}
    return responses


def documented(
    operation: str, scope: str | None = None, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Keyword arguments of a route decorator documenting the operation."""
    summary, status, description, model, headers, errors = _OPERATIONS[operation]
    success: dict[str, Any] = {"description": description}
    if model is not None:
        success["model"] = model
    if headers:
        success["headers"] = {name: _HEADERS[name] for name in headers}
    extra: dict[str, Any] = {}
    if scope is not None:
        extra["security"] = [{_SECURITY: [scope]}]
    if body is not None:
        extra["requestBody"] = body
    return {
        "summary": summary,
        "operation_id": operation,
        "response_model": None,
        "responses": {status: success, **_problems(errors)},
        "openapi_extra": extra,
    }


def _components() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in _COMPONENTS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` (served at /openapi.json) the full document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = document.setdefault("components", {})
            components.setdefault("schemas", {}).update(_components())
            components["securitySchemes"] = {
                _SECURITY: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
            _add_request_id_header(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_request_id_header(document: dict[str, Any]) -> None:
    header = {"description": "the request's X-Request-ID", "schema": {"type": "string"}}
    for path in document["paths"].values():
        for operation in path.values():
            for response in operation["responses"].values():
                response.setdefault("headers", {})["X-Request-ID"] = header
