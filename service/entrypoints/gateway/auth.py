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
from service.logs import get_logger

__all__ = ["REALM", "Caller", "authenticate", "authorize"]

log = get_logger(__name__)

REALM = "sip-trunks"
# One answer for every refused token: why it was refused goes to the log, not to the caller.
_INVALID = "the bearer token is not valid"
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
    except jwt.InvalidTokenError as exc:
        # PyJWT's messages name the failed check, never the token or the secret.
        raise _refused(str(exc)) from None
    subject, tenant, scope = claims["sub"], claims["tenant"], claims.get("scope", "")
    if not isinstance(subject, str) or not subject:
        raise _refused("`sub` is not a non-empty string")
    if not isinstance(tenant, str) or not 0 < len(tenant) <= MAX_TENANT_LENGTH:
        raise _refused(f"`tenant` is not a string of 1-{MAX_TENANT_LENGTH} characters")
    if not isinstance(scope, str):
        raise _refused("`scope` is not a space-separated string")
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


def _refused(reason: str) -> ProblemError:
    log.info("auth.token_refused", reason=reason)
    return _unauthorized(_INVALID)


def _unauthorized(detail: str, *, invalid: bool = True) -> ProblemError:
    challenge = f'Bearer realm="{REALM}"' + (', error="invalid_token"' if invalid else "")
    return ProblemError(Code.UNAUTHORIZED, detail, headers={"WWW-Authenticate": challenge})
