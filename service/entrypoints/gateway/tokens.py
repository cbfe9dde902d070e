"""Bearer tokens of the API (CONTRACT §2): HS256 JWTs with `sub`, `tenant`, `scope`, `exp`.

`mint_token` is for developers and tests (`sip-trunks token`); production tokens come from the
platform's identity provider, signed with the same AUTH_JWT_SECRET.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable

import jwt

from service.adapters.dev_secrets import dev_secret
from service.config import Settings

__all__ = ["ALGORITHM", "READ_SCOPE", "WRITE_SCOPE", "jwt_secret", "mint_token"]

ALGORITHM = "HS256"
READ_SCOPE = "sip-trunks:read"
WRITE_SCOPE = "sip-trunks:write"


def jwt_secret(settings: Settings) -> str:
    if settings.auth_jwt_secret is not None:
        return settings.auth_jwt_secret.get_secret_value()
    return dev_secret(
        settings.data_dir, "jwt.secret", lambda: secrets.token_urlsafe(48).encode()
    ).decode()


def mint_token(
    secret: str,
    *,
    tenant: str,
    subject: str = "developer",
    scopes: Iterable[str] = (READ_SCOPE, WRITE_SCOPE),
    ttl_s: int = 3600,
) -> str:
    now = int(time.time())
    claims = {"sub": subject, "tenant": tenant, "scope": " ".join(scopes), "iat": now}
    claims["exp"] = now + ttl_s
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
