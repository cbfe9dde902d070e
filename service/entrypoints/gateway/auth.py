"""Bearer JWT authentication and scope checks (CONTRACT §2, RFC 6750).

A token is HS256, signed with `AUTH_JWT_SECRET`, and carries `exp`, `sub`, `tenant` (a string of
1-255 characters, the width a command's tenantId may have) and `scope` (space-separated).
An `aud` claim is not checked: the contract names no audience.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

from service.entrypoints.gateway.problems import Code, ProblemError
from service.entrypoints.gateway.tokens import ALGORITHM

__all__ = ["REALM", "Caller", "authenticate", "authorize"]

REALM = "sip-trunks"
MAX_TENANT_LENGTH = 255
_REQUIRED_CLAIMS = ["exp", "sub", "tenant"]


@dataclass(frozen=True, slots=True)
class Caller:
    subject: str
    tenant: str
    scopes: frozenset[str]


def authenticate(authorization: str | None, secret: str) -> Caller:
    """The caller of a request with this `Authorization` header; raises a 401 problem."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        # No credentials for this scheme: RFC 6750 §3.1 says no error code then.
        raise _unauthorized("a bearer token is required", invalid=False)
    try:
        claims = jwt.decode(
            token.strip(),
            secret,
            algorithms=[ALGORITHM],
            options={"require": _REQUIRED_CLAIMS, "verify_aud": False},
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("the token has expired") from None
    except jwt.InvalidTokenError as exc:
        # PyJWT's messages name the failed check, never the token or the secret.
        raise _unauthorized(f"the token is not valid: {exc}") from None
    subject, tenant, scope = claims["sub"], claims["tenant"], claims.get("scope", "")
    if not isinstance(subject, str) or not subject:
        raise _unauthorized("the token's `sub` must be a non-empty string")
    if not isinstance(tenant, str) or not 0 < len(tenant) <= MAX_TENANT_LENGTH:
        raise _unauthorized(f"the token's `tenant` must be a string of 1-{MAX_TENANT_LENGTH} chars")
    if not isinstance(scope, str):
        raise _unauthorized("the token's `scope` must be a space-separated string")
    return Caller(subject, tenant, frozenset(scope.split()))


def authorize(caller: Caller, scope: str) -> None:
    """Raises a 403 problem unless the caller's token grants `scope`."""
    if scope not in caller.scopes:
        raise ProblemError(
            Code.INSUFFICIENT_SCOPE,
            f"the token lacks the scope {scope!r}",
            headers={
                "WWW-Authenticate": (
                    f'Bearer realm="{REALM}", error="insufficient_scope", scope="{scope}"'
                )
            },
        )


def _unauthorized(detail: str, *, invalid: bool = True) -> ProblemError:
    challenge = f'Bearer realm="{REALM}"' + (', error="invalid_token"' if invalid else "")
    return ProblemError(Code.UNAUTHORIZED, detail, headers={"WWW-Authenticate": challenge})
