"""Request shape checks: body, headers and path id. No field rules here: the worker decides."""

from __future__ import annotations

import asyncio
import re
from typing import Any, Final
from uuid import UUID

from fastapi import Request
from sip_trunk_contracts import FieldError
from sip_trunk_contracts.limits import MAX_BODY_BYTES, MAX_IDEMPOTENCY_KEY_LENGTH
from sip_trunk_contracts.strict_json import MAX_DEPTH, JsonError, loads

from service.entrypoints.gateway.problems import Code, ProblemError

__all__ = [
    "IF_MATCH_SCHEMA",
    "JSON",
    "MAX_BODY_BYTES",
    "MERGE_PATCH_JSON",
    "parse_idempotency_key",
    "parse_if_match",
    "parse_trunk_id",
    "read_json_object",
]

JSON = "application/json"
MERGE_PATCH_JSON = "application/merge-patch+json"  # RFC 7396's own type, for PATCH
# Versions are positive and fit a signed 64-bit column; leading zeros would be another ETag.
_VERSION = r'"(0|[1-9][0-9]{0,17})"'
_IF_MATCH = re.compile(_VERSION)
IF_MATCH_SCHEMA: Final[dict[str, Any]] = {
    "type": "string",
    "anyOf": [{"const": "*"}, {"pattern": f"^{_VERSION}$"}],
}
"""`If-Match` as the OpenAPI document states it: `*` or one strong ETag (a stale one is 412);
RFC 9110's `"*" / #entity-tag` narrowed to one tag. An empty value (an empty `#` list, which
matches no tag) stays 400: it is neither, and treating it as absent would turn a conditional
change into an unconditional one. Two branches rather than one pattern for both: the same
strings, but a generator that cannot draw `*` or `"` from a header pattern (schemathesis'
coverage phase) still finds the `const`."""
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _malformed(detail: str) -> ProblemError:
    return ProblemError(Code.MALFORMED_REQUEST, detail)


def _check_content_type(value: str | None, accepted: tuple[str, ...]) -> None:
    media_type, *params = (value or "").split(";")
    charsets = [
        v.strip().strip('"').lower()
        for k, _, v in (p.partition("=") for p in params)
        if k.strip().lower() == "charset"
    ]
    # JSON is UTF-8 (RFC 8259 §8.1): a charset parameter may only say so.
    if media_type.strip().lower() not in accepted or any(c != "utf-8" for c in charsets):
        raise ProblemError(
            Code.UNSUPPORTED_MEDIA_TYPE,
            f"the body must be {' or '.join(accepted)} (UTF-8)",
        )


def _too_large() -> ProblemError:
    # Made when raised: a problem document is a pydantic model, not free to build per request.
    return ProblemError(Code.PAYLOAD_TOO_LARGE, f"the body may have at most {MAX_BODY_BYTES} bytes")


async def _read_limited(request: Request, timeout_s: float) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()  # refused before reading a byte
    body = bytearray()
    try:
        # A client that announces more than it sends must not hold a connection (and a request
        # slot) for as long as it likes.
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():  # a chunked body has no Content-Length: count
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise _too_large()
    except TimeoutError:
        raise ProblemError(
            Code.REQUEST_TIMEOUT,
            f"the body did not arrive within {timeout_s:g} s ({len(body)} bytes came)",
            headers={"Connection": "close"},
        ) from None
    return bytes(body)


async def read_json_object(
    request: Request,
    accepted: tuple[str, ...] = (JSON,),
    *,
    timeout_s: float,
    max_depth: int = MAX_DEPTH,
) -> dict[str, Any]:
    """The body as a strict JSON object (CONTRACT §4.1): 415, 413, 408 or 400 otherwise, checked
    in that order. Nothing that is not RFC 8259 JSON, or nests past `max_depth`, gets further;
    the whole body must arrive within `timeout_s` of the headers."""
    _check_content_type(request.headers.get("content-type"), accepted)
    raw = await _read_limited(request, timeout_s)
    try:
        body = loads(raw, max_depth=max_depth)
    except JsonError as exc:
        raise _malformed(f"the body is not strict UTF-8 JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _malformed("the body must be a JSON object")
    return body


def parse_idempotency_key(value: str | None) -> str | None:
    if value is not None and not 0 < len(value) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise _malformed(f"Idempotency-Key must have 1-{MAX_IDEMPOTENCY_KEY_LENGTH} characters")
    return value


def parse_if_match(value: str | None) -> int | None:
    """The expected version from `If-Match: "<version>"`; `*` (or none) expects nothing."""
    if value is None or value.strip() == "*":
        return None
    match = _IF_MATCH.fullmatch(value.strip())
    if match is None:
        raise _malformed('If-Match must be one strong ETag, "<version>", or *')
    return int(match.group(1))


def parse_trunk_id(value: str) -> UUID:
    """The path id: a UUID in its canonical 8-4-4-4-12 hex form (any case)."""
    if _UUID.fullmatch(value) is None:
        raise ProblemError(
            Code.VALIDATION_FAILED,
            "the trunk id in the path is not a UUID",
            errors=[FieldError(pointer="/id", message="must be a UUID")],
        )
    return UUID(value)
