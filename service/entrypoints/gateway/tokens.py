"""Bearer tokens of the API (CONTRACT §2): JWTs with `sub`, a tenant, scopes and `exp`.

auth.py states which tokens the gateway accepts. `mint_token` makes HS256 tokens for developers
and tests (`sip-trunks token`) with the claim names, issuer and audience the gateway checks;
production tokens come from the platform's identity provider.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt

from service.adapters.dev_secrets import dev_secret
from service.config import Settings

__all__ = [
    "ALGORITHM",
    "READ_SCOPE",
    "WRITE_SCOPE",
    "ClaimRules",
    "jwt_secret",
    "mint_token",
]

ALGORITHM = "HS256"
READ_SCOPE = "sip-trunks:read"
WRITE_SCOPE = "sip-trunks:write"


@dataclass(frozen=True, slots=True)
class ClaimRules:
    """Where a token names the tenant and the scopes, the `iss` and `aud` it must carry (None:
    not checked), and the clock skew allowed in its times."""

    tenant: str = "tenant"
    scope: str = "scope"
    issuer: str | None = None
    audience: str | None = None
    leeway_s: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ClaimRules:
        return cls(
            settings.auth_tenant_claim,
            settings.auth_scope_claim,
            settings.auth_issuer,
            settings.auth_audience,
            settings.auth_leeway_s,
        )


_DEFAULT_RULES = ClaimRules()


def jwt_secret(settings: Settings) -> str | None:
    """The HS256 secret: AUTH_JWT_SECRET; without it, a dev secret generated once in DATA_DIR,
    unless an identity provider's key is set. None: no HS256 token is accepted."""
    if settings.auth_jwt_secret is not None:
        return settings.auth_jwt_secret.get_secret_value()
    if settings.auth_jwks_url is not None or settings.auth_public_key_file is not None:
        # A deployment with an identity provider takes no tokens that whoever reads DATA_DIR
        # could mint.
        return None
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
    rules: ClaimRules = _DEFAULT_RULES,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": subject, rules.tenant: tenant, rules.scope: " ".join(scopes)}
    claims |= {"iat": now, "exp": now + ttl_s}
    if rules.issuer is not None:
        claims["iss"] = rules.issuer
    if rules.audience is not None:
        claims["aud"] = rules.audience
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
