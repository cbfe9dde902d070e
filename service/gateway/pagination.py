"""List pages: an opaque cursor (base64url of the JSON `[createdAt, id]` of the last trunk seen).

The cursor names a position, not a trunk: a page after a deleted trunk still starts where it was.
"""

from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import urlencode

from sip_trunk_contracts import FieldError

from service.gateway.problems import Code, ProblemError

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "decode_cursor", "encode_cursor", "next_link"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_MAX_CURSOR = 1024


def encode_cursor(order_key: tuple[str, str]) -> str:
    raw = json.dumps(list(order_key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """The position a cursor names; a 422 problem (pointer `/cursor`) when it is not one."""
    try:
        if len(cursor) > _MAX_CURSOR:
            raise ValueError("too long")
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
    except (ValueError, binascii.Error, RecursionError):
        key = None
    if not (isinstance(key, list) and len(key) == 2 and all(isinstance(k, str) for k in key)):
        raise ProblemError(
            Code.VALIDATION_FAILED,
            "the cursor is not one this API gave out",
            errors=[FieldError(pointer="/cursor", message="is not a valid cursor")],
        )
    return key[0], key[1]


def next_link(path: str, limit: int, order_key: tuple[str, str]) -> str:
    query = urlencode({"limit": limit, "cursor": encode_cursor(order_key)})
    return f'<{path}?{query}>; rel="next"'
