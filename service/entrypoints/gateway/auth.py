"""Bearer JWT authentication and scope checks (CONTRACT §2, RFC 6750).

Which algorithms are accepted follows from the keys configured, and a token is checked only
with the key of its `alg`, pinned to that key's one algorithm:
- HS256 with `AUTH_JWT_SECRET`; without it, with the dev secret of DATA_DIR, unless an identity
  provider's key is configured (then no HS256 at all).
- RS256 or ES256 with the identity provider's key: the one of `AUTH_PUBLIC_KEY_FILE` (an RSA
  key: RS256 only; an EC P-256 key: ES256 only), or the key of `AUTH_JWKS_URL` the token's `kid`
  names, with that key's algorithm (its `alg`; else RS256 for RSA, ES256 for P-256). JWKS keys
  of any other algorithm are not used.
- Any other `alg`, `none` included, is refused; so is an `alg` whose key is not configured. An
  HS256 token is never checked with a public key as its secret, nor an RS256 token with an EC key.

Claims, of every token: `exp`; `sub`, a non-empty string; the tenant claim (`AUTH_TENANT_CLAIM`,
default `tenant`), a string of 1-255 characters (the width a command's tenantId may have); the
scope claim (`AUTH_SCOPE_CLAIM`, default `scope`), space-separated or a list of strings (as some
IdPs send `scp`), absent meaning none. `iss` must be `AUTH_ISSUER` and `aud` must name
`AUTH_AUDIENCE` when they are set; an `aud` is not checked otherwise (the contract names none).
`exp`, and `nbf` and `iat` when present, allow `AUTH_LEEWAY_S` of clock skew (default none).

Every refused token gets the same 401; why it was refused goes to the log (`auth.token_refused`).

A token that passed is remembered by its exact text until its `exp` plus the leeway
(verified_tokens.py), so the next request with it skips the decoding. One checked with a JWKS
key is taken from memory only while its `kid` still picks that very key: a refetched set that
withdrew or replaced it has the token checked afresh, as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK
from sip_trunk_contracts.limits import MAX_ID_LENGTH

from service.config import Settings
from service.entrypoints.gateway.idp_keys import (
    IDP_ALGORITHMS,
    JwksKeys,
    KeyUnavailable,
    PublicKey,
    load_public_key,
)
from service.entrypoints.gateway.problems import Code, ProblemError
from service.entrypoints.gateway.tokens import ALGORITHM, ClaimRules, jwt_secret
from service.entrypoints.gateway.verified_tokens import VerifiedTokens
from service.logs import get_logger

__all__ = ["REALM", "Authenticator", "Caller", "authorize"]

log = get_logger(__name__)

REALM = "sip-trunks"
# One answer for every refused token: why it was refused goes to the log, not to the caller.
_INVALID = "the bearer token is not valid"
MAX_KID_LENGTH = 255  # a kid is logged when no key has it


@dataclass(frozen=True, slots=True)
class Caller:
    subject: str
    tenant: str
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Verified:
    caller: Caller
    key: Any  # the key that checked the token


class Authenticator:
    """The caller of a request, from its `Authorization` header (the rules above)."""

    def __init__(
        self,
        rules: ClaimRules,
        *,
        secret: str | None = None,
        public_key: PublicKey | None = None,
        jwks: JwksKeys | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self._rules = rules
        self._clock = clock  # epoch seconds: when a remembered token expires
        self._secret = secret
        self._public_key = public_key
        self._jwks = jwks
        self._required = ["exp", "sub", rules.tenant]
        self._verified: VerifiedTokens[_Verified] = VerifiedTokens()
        self.algorithms = (
            ([ALGORITHM] if secret is not None else [])
            + ([public_key.algorithm] if public_key is not None else [])
            + (list(IDP_ALGORITHMS) if jwks is not None else [])
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        """Raises AuthConfigError for a key file that cannot be used."""
        public_key = None
        if settings.auth_public_key_file is not None:
            public_key = load_public_key(settings.auth_public_key_file)
        jwks = None
        if settings.auth_jwks_url is not None:
            jwks = JwksKeys(
                settings.auth_jwks_url,
                timeout_s=settings.auth_jwks_timeout_s,
                lifespan_s=settings.auth_jwks_lifespan_s,
                cooldown_s=settings.auth_jwks_cooldown_s,
            )
        return cls(
            ClaimRules.from_settings(settings),
            secret=jwt_secret(settings),
            public_key=public_key,
            jwks=jwks,
        )

    def close(self) -> None:
        if self._jwks is not None:
            self._jwks.close()

    async def caller(self, authorization: str | None) -> Caller:
        """Raises a 401 problem for anything but a valid token."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            # No credentials for this scheme: RFC 6750 §3.1 says no error code then.
            raise _unauthorized("a bearer token is required", invalid=False)
        token = token.strip()
        known = self._verified.get(token, self._clock())
        if known is not None and await self._still_current(known.key):
            return known.caller
        key, algorithm = await self._key(token)
        rules = self._rules
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=rules.issuer,
                audience=rules.audience,
                leeway=rules.leeway_s,
                options={"require": self._required, "verify_aud": rules.audience is not None},
            )
        except jwt.InvalidTokenError as exc:
            # PyJWT's messages name the failed check, never the token or the key.
            raise _refused(str(exc)) from None
        caller = self._caller(claims)
        # PyJWT: expired once `exp <= now - leeway`; `exp` was required and read as an int.
        self._verified.put(token, _Verified(caller, key), int(claims["exp"]) + rules.leeway_s)
        return caller

    async def _still_current(self, key: Any) -> bool:
        """The key a remembered token was checked with would still be picked for it: a JWKS key
        while its kid names it (the set may have been refetched since); the others never
        change."""
        if not isinstance(key, PyJWK) or self._jwks is None:
            return True
        try:
            return await self._jwks.key(str(key.key_id)) is key
        except KeyUnavailable:
            return False

    async def _key(self, token: str) -> tuple[Any, str]:
        """The key the token's header points at, and its one algorithm."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise _refused(str(exc)) from None
        alg = header.get("alg")
        if alg == ALGORITHM and self._secret is not None:
            return self._secret, ALGORITHM
        if self._public_key is not None and alg == self._public_key.algorithm:
            return self._public_key.key, alg
        if self._jwks is not None and alg in IDP_ALGORITHMS:
            kid = header.get("kid")
            if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LENGTH:
                raise _refused(f"no `kid` of 1-{MAX_KID_LENGTH} characters to pick a JWKS key")
            try:
                jwk = await self._jwks.key(kid)
            except KeyUnavailable as exc:
                raise _refused(str(exc)) from None
            return jwk, jwk.algorithm_name
        accepted = ", ".join(self.algorithms)
        raise _refused(f"`alg` {str(alg)[:20]!r} is not accepted here (only {accepted})")

    def _caller(self, claims: dict[str, Any]) -> Caller:
        subject, tenant = claims["sub"], claims[self._rules.tenant]
        scope = claims.get(self._rules.scope, "")
        if not isinstance(subject, str) or not subject:
            raise _refused("`sub` is not a non-empty string")
        # As wide as a command's tenantId may be (the width the service stores).
        if not isinstance(tenant, str) or not 0 < len(tenant) <= MAX_ID_LENGTH:
            raise _refused(
                f"`{self._rules.tenant}` is not a string of 1-{MAX_ID_LENGTH} characters"
            )
        if isinstance(scope, str):
            return Caller(subject, tenant, frozenset(scope.split()))
        if isinstance(scope, list) and all(isinstance(s, str) for s in scope):
            return Caller(subject, tenant, frozenset(scope))
        raise _refused(f"`{self._rules.scope}` is neither space-separated nor a list of strings")


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
