"""RFC 9457 problem documents: every error the gateway answers (CONTRACT §2).

`type` is `about:blank` and `title` the HTTP status phrase (RFC 9457 §4.2.1); what went wrong
is told by `code` (one of the contract's reason codes) and `detail`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sip_trunk_contracts import FieldError

__all__ = [
    "PROBLEM_JSON",
    "STATUS",
    "Code",
    "Problem",
    "ProblemError",
    "problem_response",
]

PROBLEM_JSON = "application/problem+json"


class Code(StrEnum):
    """Reason codes of the REST API: the contract's table plus a few HTTP-level ones.

    Holds every `RejectionReason` of the worker under the same name (tested).
    """

    MALFORMED_REQUEST = "malformed_request"
    UNAUTHORIZED = "unauthorized"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    SYSTEM_TRUNK_IMMUTABLE = "system_trunk_immutable"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"  # not in the contract: a verb the path lacks
    ALREADY_EXISTS = "already_exists"
    VERSION_CONFLICT = "version_conflict"
    REQUEST_TIMEOUT = "request_timeout"  # not in the contract: a client stalled mid-body
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    VALIDATION_FAILED = "validation_failed"
    PROVIDER_REJECTED = "provider_rejected"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    INTERNAL_ERROR = "internal_error"  # not in the contract: a bug, never expected
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    BROKER_UNAVAILABLE = "broker_unavailable"
    TIMEOUT = "timeout"


STATUS: Mapping[Code, int] = {
    Code.MALFORMED_REQUEST: 400,
    Code.UNAUTHORIZED: 401,
    Code.INSUFFICIENT_SCOPE: 403,
    Code.SYSTEM_TRUNK_IMMUTABLE: 403,
    Code.NOT_FOUND: 404,
    Code.METHOD_NOT_ALLOWED: 405,
    Code.ALREADY_EXISTS: 409,
    Code.REQUEST_TIMEOUT: 408,
    Code.VERSION_CONFLICT: 412,
    Code.PAYLOAD_TOO_LARGE: 413,
    Code.UNSUPPORTED_MEDIA_TYPE: 415,
    Code.VALIDATION_FAILED: 422,
    Code.PROVIDER_REJECTED: 422,
    Code.IDEMPOTENCY_KEY_REUSED: 422,
    Code.INTERNAL_ERROR: 500,
    Code.PROVIDER_UNAVAILABLE: 503,
    Code.BROKER_UNAVAILABLE: 503,
    Code.TIMEOUT: 504,
}


class Problem(BaseModel):
    """An RFC 9457 problem document (`application/problem+json`)."""

    type: str = Field(default="about:blank", examples=["about:blank"])
    title: str = Field(description="the HTTP status phrase", examples=["Unprocessable Content"])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["the trunk has invalid fields"])
    code: Code
    errors: list[FieldError] = Field(
        description="field problems (validation_failed): JSON pointers into the request body, "
        "or `/<name>` for a path or query parameter; empty otherwise"
    )
    commandId: str | None = Field(
        default=None,
        description="timeout only: the id of the command whose outcome did not come in time",
    )


class ProblemError(Exception):
    """Raised anywhere in a request; rendered as a problem document by the app."""

    def __init__(
        self,
        code: Code,
        detail: str,
        *,
        errors: Iterable[FieldError | Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
        command_id: str | None = None,
    ) -> None:
        super().__init__(detail)
        status = STATUS[code]
        self.problem = Problem(
            title=HTTPStatus(status).phrase,
            status=status,
            detail=detail,
            code=code,
            errors=[FieldError.model_validate(e) for e in errors],
            commandId=command_id,
        )
        self.headers = dict(headers or {})


def problem_response(error: ProblemError) -> JSONResponse:
    return JSONResponse(
        error.problem.model_dump(mode="json", exclude_none=True),
        status_code=error.problem.status,
        headers=error.headers,
        media_type=PROBLEM_JSON,
    )
