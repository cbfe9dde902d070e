"""Outcome events as HTTP responses (CONTRACT §2 and §3)."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse
from sip_trunk_contracts import TrunkCreated, TrunkDeleted, TrunkRejected, TrunkUpdated

from service.adapters.command_bus import Outcome
from service.entrypoints.gateway.problems import Code, ProblemError

__all__ = ["BASE_PATH", "etag", "outcome_response", "trunk_response"]

BASE_PATH = "/api/v1/sip-trunks"


def etag(version: int) -> str:
    return f'"{version}"'


def trunk_response(trunk: Any, version: int, status_code: int = 200) -> JSONResponse:
    return JSONResponse(trunk, status_code=status_code, headers={"ETag": etag(version)})


def outcome_response(outcome: Outcome) -> Response:
    """The response for a command's outcome; a rejection is raised as its problem."""
    body, ce_type = outcome.body, outcome.headers.type
    if ce_type == TrunkCreated.CE_TYPE:
        response = trunk_response(body["trunk"], body["version"], 201)
        response.headers["Location"] = f"{BASE_PATH}/{body['trunk']['id']}"
        return response
    if ce_type == TrunkUpdated.CE_TYPE:
        return trunk_response(body["trunk"], body["version"])
    if ce_type == TrunkDeleted.CE_TYPE:
        return Response(status_code=204)
    if ce_type == TrunkRejected.CE_TYPE:
        # A reason is a code of the API by name; its status comes from the code.
        raise ProblemError(Code(body["reason"]), str(body["detail"]), errors=body["errors"])
    raise RuntimeError(f"unexpected outcome event {ce_type!r}")
