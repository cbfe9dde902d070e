"""Outcome events as HTTP responses (CONTRACT §2 and §3)."""

from __future__ import annotations

from typing import Any, assert_never

from fastapi import Response
from sip_trunk_contracts import TrunkCreated, TrunkDeleted, TrunkRejected, TrunkUpdated
from sip_trunk_contracts.strict_json import dumps

from service.adapters.command_bus import Outcome
from service.entrypoints.gateway.problems import Code, ProblemError

__all__ = ["BASE_PATH", "etag", "json_response", "outcome_response", "trunk_response"]

BASE_PATH = "/api/v1/sip-trunks"


def etag(version: int) -> str:
    return f'"{version}"'


def trunk_response(trunk: bytes, version: int, status_code: int = 200) -> Response:
    """A trunk's JSON (`strict_json.dumps`), with its version as the ETag."""
    return json_response(trunk, status_code, headers={"ETag": etag(version)})


def json_response(body: bytes, status_code: int = 200, **kw: Any) -> Response:
    return Response(body, status_code, media_type="application/json", **kw)


def outcome_response(outcome: Outcome) -> Response:
    """The response for a command's outcome; a rejection is raised as its problem.

    The trunk is written back as the worker wrote it: the contract model serialises to the same
    JSON it was read from (fields in contract order, times as `format_utc` writes them)."""
    event = outcome.event
    match event:
        case TrunkCreated():
            trunk = event.trunk.model_dump(mode="json")
            response = trunk_response(dumps(trunk), event.version, 201)
            response.headers["Location"] = f"{BASE_PATH}/{trunk['id']}"
            return response
        case TrunkUpdated():
            return trunk_response(dumps(event.trunk.model_dump(mode="json")), event.version)
        case TrunkDeleted():
            return Response(status_code=204)
        case TrunkRejected():
            # A reason is a code of the API by name; its status comes from the code.
            raise ProblemError(Code(event.reason.value), event.detail, errors=event.errors)
        case _:
            assert_never(event)
