"""The OpenAPI document: every status of CONTRACT §2 per operation, problem and trunk schemas.

Request bodies are described (CONTRACT §1) but not enforced by the gateway: the worker is the
single judge of the field rules, so the models below exist for the document only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from sip_trunk_contracts import TrunkView
from sip_trunk_contracts.limits import (
    DEFAULT_PORT,
    DOMAIN_MAX_LENGTH,
    GATEWAY_NAME_MAX_LENGTH,
    HEADER_NAME_MAX_LENGTH,
    HEADER_VALUE_MAX_LENGTH,
    MAX_GATEWAYS,
    MAX_HEADERS,
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

# The field rules (CONTRACT §1) as patterns, where JSON Schema can state them. Not stateable:
# refused IPv6 kinds, uniqueness of gateways, names and header names (case-insensitive), a merge
# patch's result; those are 422 `validation_failed` (see the 422 response).
_CONTROL = r"\x00-\x1f\x7f-\x9f"
_TRIMMED_TEXT = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"  # not blank, no control chars
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
# IPv4: 1-223 but 127 (loopback) and 169.254/16 (link-local); 0/8, 224/4 (multicast), 240/4
# (reserved) are out (0/8 but 0.0.0.0 is accepted, yet left out: no gateway lives there).
_FIRST_OCTET = (
    "([1-9]|[1-9][0-9]|1[01][0-9]|12[0-6]|12[89]|1[3-5][0-9]|16[0-8]|1[7-9][0-9]"
    "|2[01][0-9]|22[0-3])"
)
_NOT_254 = "(25[0-35]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"({_FIRST_OCTET}\.{_OCTET}|169\.{_NOT_254})(\.{_OCTET}){{2}}"
# IPv6: global unicast (2000::/3) but 2001::/16 and 2002::/16 (Teredo, 6to4: they may carry a
# refused IPv4 address); other IPv6 addresses are not described, though the worker takes some.
_H16 = "[0-9A-Fa-f]{1,4}"
_FIRST_H16 = "(2(00[03-9A-Fa-f]|0[1-9A-Fa-f][0-9A-Fa-f]|[1-9A-Fa-f][0-9A-Fa-f]{2})|3[0-9A-Fa-f]{3})"
_IPV6 = "|".join(
    [f"{_FIRST_H16}(:{_H16}){{7}}"]
    + [
        f"{_FIRST_H16}(:{_H16}){{{left - 1}}}::"
        + (f"({_H16}(:{_H16}){{0,{6 - left}}})?" if left < 7 else "")
        for left in range(1, 8)
    ]
)
_LABEL = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = rf"({_LABEL}\.)+[A-Za-z]([A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.?"
IP_OR_DOMAIN_PATTERN = rf"^({_IPV4}|{_IPV6}|{_DOMAIN})$"
# printable ASCII, not all *
_PASSWORD_PATTERN = r"^[\x20-\x7e]*[\x20-\x29\x2b-\x7e][\x20-\x7e]*$"  # noqa: S105 (not a password)
_E164 = r"^\+[0-9]{1,15}$"
_HEADER_NAME = r"^[A-Za-z0-9.!%*_+`'~-]+$"
_HEADER_VALUE = r"^[^\x00-\x08\x0a-\x1f\x7f-\x9f]*$"  # TAB allowed


class GatewayInput(BaseModel):
    model_config = _NO_EXTRA
    ipOrDomain: str = Field(
        min_length=1,
        max_length=DOMAIN_MAX_LENGTH,
        pattern=IP_OR_DOMAIN_PATTERN,
        description="IPv4, IPv6 or domain name (two labels at least); no port",
    )
    port: int = Field(default=DEFAULT_PORT, ge=MIN_PORT, le=MAX_PORT)
    name: str = Field(min_length=1, max_length=GATEWAY_NAME_MAX_LENGTH, pattern=_TRIMMED_TEXT)


class AuthenticationInput(BaseModel):
    model_config = _NO_EXTRA
    username: str = Field(pattern=f"^{USERNAME_PATTERN}$")
    password: str = Field(
        min_length=PASSWORD_MIN_LENGTH,
        max_length=PASSWORD_MAX_LENGTH,
        pattern=_PASSWORD_PATTERN,
        description="`********` keeps the stored password (PATCH)",
    )


class AdvancedInput(BaseModel):
    model_config = _NO_EXTRA
    transport: Transport | None = None
    numbers: list[Annotated[str, Field(pattern=_E164)]] | None = Field(
        default=None,
        max_length=MAX_NUMBERS,
        description="E.164",
        json_schema_extra={"uniqueItems": True},
    )
    mediaEncryption: MediaEncryption | None = None
    destinationCountry: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    headers: (
        Annotated[
            dict[
                Annotated[str, Field(pattern=_HEADER_NAME, max_length=HEADER_NAME_MAX_LENGTH)],
                Annotated[str, Field(pattern=_HEADER_VALUE, max_length=HEADER_VALUE_MAX_LENGTH)],
            ],
            # A name outside the token pattern is refused, whatever its value (422).
            Field(json_schema_extra={"additionalProperties": False}),
        ]
        | None
    ) = Field(
        default=None,
        description="SIP header name → value; names unique case-insensitively",
        json_schema_extra={"maxProperties": MAX_HEADERS},
    )


class TrunkCreate(BaseModel):
    """A new trunk; read-only and unknown fields are refused (422), naming the field."""

    model_config = _NO_EXTRA
    name: str = Field(min_length=1, max_length=NAME_MAX_LENGTH, pattern=_TRIMMED_TEXT)
    gateways: list[GatewayInput] = Field(min_length=MIN_GATEWAYS, max_length=MAX_GATEWAYS)
    authentication: AuthenticationInput | None = None
    advanced: AdvancedInput | None = None


def _absent_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


# A patch field that may be absent (unchanged) but not `null`: removing a required field is always
# 422 `validation_failed`, so the document does not offer `null` there.
_NotNull = SkipJsonSchema[None]


def _absent() -> Any:
    return Field(default=None, json_schema_extra=_absent_default)


class AuthenticationPatch(BaseModel):
    model_config = _NO_EXTRA
    username: Annotated[str, Field(pattern=f"^{USERNAME_PATTERN}$")] | _NotNull = _absent()
    password: (
        Annotated[
            str,
            Field(
                min_length=PASSWORD_MIN_LENGTH,
                max_length=PASSWORD_MAX_LENGTH,
                pattern=_PASSWORD_PATTERN,
            ),
        ]
        | _NotNull
    ) = _absent()


class TrunkPatch(BaseModel):
    """A JSON Merge Patch (RFC 7396): absent is unchanged, `null` removes (an optional field), lists
    are replaced."""

    model_config = _NO_EXTRA
    name: (
        Annotated[str, Field(min_length=1, max_length=NAME_MAX_LENGTH, pattern=_TRIMMED_TEXT)]
        | _NotNull
    ) = _absent()
    gateways: (
        Annotated[list[GatewayInput], Field(min_length=MIN_GATEWAYS, max_length=MAX_GATEWAYS)]
        | _NotNull
    ) = _absent()
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
_BODY_ERRORS = (Code.REQUEST_TIMEOUT, Code.PAYLOAD_TOO_LARGE, Code.UNSUPPORTED_MEDIA_TYPE)
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
            _absent_not_null(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_request_id_header(document: dict[str, Any]) -> None:
    header = {"description": "the request's X-Request-ID", "schema": {"type": "string"}}
    for path in document["paths"].values():
        for operation in path.values():
            for response in operation["responses"].values():
                response.setdefault("headers", {})["X-Request-ID"] = header


def _absent_not_null(document: dict[str, Any]) -> None:
    """An optional header or query parameter is absent or a string, never `null`: drop the
    `null` branch FastAPI derives from `str | None` (a client would send the text "null")."""
    for path in document["paths"].values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                branches = [b for b in schema.pop("anyOf", []) if b != {"type": "null"}]
                if len(branches) == 1:
                    schema.update(branches[0])
                elif branches:
                    schema["anyOf"] = branches
