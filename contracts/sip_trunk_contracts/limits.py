"""Every limit of the contract, stated once (CONTRACT.md §1, §2, §3 and §4.1).

The service's field rules (domain validation), its command reader, the REST gateway's request
checks and its OpenAPI document all read these names, so that one number lives in one place.
Plain constants (and two ``Literal`` types for the closed value sets): no behaviour here.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "DEFAULT_PORT",
    "DOMAIN_MAX_LENGTH",
    "GATEWAY_NAME_MAX_LENGTH",
    "HEADER_NAME_MAX_LENGTH",
    "HEADER_VALUE_MAX_LENGTH",
    "MAX_BODY_BYTES",
    "MAX_DEPTH",
    "MAX_GATEWAYS",
    "MAX_HEADERS",
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "MAX_ID_LENGTH",
    "MAX_NUMBERS",
    "MAX_PORT",
    "MEDIA_ENCRYPTIONS",
    "MIN_GATEWAYS",
    "MIN_PORT",
    "NAME_MAX_LENGTH",
    "PASSWORD_MAX_LENGTH",
    "PASSWORD_MIN_LENGTH",
    "SEALED_PASSWORD_MAX_LENGTH",
    "SEAL_OVERHEAD",
    "TRANSPORTS",
    "USERNAME_PATTERN",
    "MediaEncryption",
    "Transport",
]

# --- messages and requests -----------------------------------------------------------------

MAX_BODY_BYTES: Final = 64 * 1024
"""A REST body (413 beyond) and a command's value on Kafka (``validation_failed`` beyond)."""

MAX_DEPTH: Final = 32
"""Levels of JSON objects and arrays; a top-level object is level 1 (§4.1)."""

MAX_ID_LENGTH: Final = 255
"""``ce_id``, ``ce_source`` and ``tenantId`` of a command: the widths the service stores."""

MAX_IDEMPOTENCY_KEY_LENGTH: Final = 255
"""The REST ``Idempotency-Key`` header, 1 to this many characters (§2)."""

# --- trunk fields (§1) ---------------------------------------------------------------------

NAME_MAX_LENGTH: Final = 100
"""A trunk ``name``: 1 to this many characters after trimming."""

MIN_GATEWAYS: Final = 1
MAX_GATEWAYS: Final = 10
"""``gateways``: this many items."""

DOMAIN_MAX_LENGTH: Final = 253
"""``ipOrDomain`` as a domain name."""

MIN_PORT: Final = 1
MAX_PORT: Final = 65535
DEFAULT_PORT: Final = 5060
"""A gateway ``port`` (a JSON integer); the default when it is omitted."""

GATEWAY_NAME_MAX_LENGTH: Final = 64
"""A gateway ``name``: 1 to this many printable characters after trimming."""

USERNAME_PATTERN: Final = r"[A-Za-z0-9._~+-]{1,64}"
"""``authentication.username``, matched whole."""

PASSWORD_MIN_LENGTH: Final = 8
PASSWORD_MAX_LENGTH: Final = 128
"""``authentication.password``: printable ASCII."""

SEAL_OVERHEAD: Final = 48
"""Bytes a sealed box adds to the password: its one-time public key (32) and MAC (16) (§4.2)."""

SEALED_PASSWORD_MAX_LENGTH: Final = len("sealed:v1:") + 4 * -(
    -(PASSWORD_MAX_LENGTH + SEAL_OVERHEAD) // 3
)
"""A sealed password in a command: ``sealed:v1:`` and the padded base64url of the longest
password's box. Longer cannot hold a valid password, so the worker does not try to open it;
the password's own bounds are checked once it is opened."""

Transport = Literal["auto", "udp", "tcp", "tls"]
TRANSPORTS: Final[tuple[Transport, ...]] = get_args(Transport)
"""``advanced.transport``."""

MediaEncryption = Literal["disable", "allow", "require"]
MEDIA_ENCRYPTIONS: Final[tuple[MediaEncryption, ...]] = get_args(MediaEncryption)
"""``advanced.mediaEncryption``."""

MAX_NUMBERS: Final = 50
"""``advanced.numbers``: at most this many E.164 numbers."""

HEADER_NAME_MAX_LENGTH: Final = 255
HEADER_VALUE_MAX_LENGTH: Final = 1024
"""``advanced.headers``: a name (an RFC 3261 token) and its value."""

MAX_HEADERS: Final = 50
"""``advanced.headers``: at most this many. Not in CONTRACT.md: it bounds a trunk's size, since
merge patches add headers one update at a time and every snapshot must fit in a Kafka message."""
