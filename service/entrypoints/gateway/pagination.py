"""List pages: an opaque cursor (base64url of the JSON `[createdAt, id]` of the last trunk seen).

The cursor names a position, not a trunk: a page after a deleted trunk still starts where it was.
Its createdAt is compared as an instant, so a cursor given out before timestamps carried
fractional seconds still names its position.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Final
from urllib.parse import urlencode

from sip_trunk_contracts import FieldError, format_utc

from service.entrypoints.gateway.problems import Code, ProblemError
from service.entrypoints.gateway.read_model import OrderKey, parse_instant

__all__ = [
    "CURSOR_SCHEMA",
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "decode_cursor",
    "encode_cursor",
    "next_link",
]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_MAX_CURSOR = 1024
CURSOR_SCHEMA: Final[dict[str, Any]] = {
    "minLength": 1,
    "maxLength": _MAX_CURSOR,
    "pattern": "^[A-Za-z0-9_-]+={0,2}$",
}
"""The cursor as the OpenAPI document states it: base64url. Only one the API gave out names a
position (422 otherwise): JSON Schema cannot say which those are."""


def encode_cursor(order_key: OrderKey) -> str:
    created, trunk_id = order_key
    raw = json.dumps([format_utc(created), trunk_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> OrderKey:
    """The position a cursor names; a 422 problem (pointer `/cursor`) when it is not one."""
    try:
        if len(cursor) > _MAX_CURSOR:
            raise ValueError("too long")
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
        if not (isinstance(key, list) and len(key) == 2 and all(isinstance(k, str) for k in key)):
            raise ValueError("not [createdAt, id]")
        return parse_instant(key[0]), key[1]
    except (ValueError, binascii.Error, RecursionError):
        raise ProblemError(
            Code.VALIDATION_FAILED,
            "the cursor is not one this API gave out",
            errors=[FieldError(pointer="/cursor", message="is not a valid cursor")],
        ) from None


def next_link(path: str, limit: int, order_key: OrderKey) -> str:
    query = urlencode({"limit": limit, "cursor": encode_cursor(order_key)})
    return f'<{path}?{query}>; rel="next"'
