"""An identity provider's public keys: one from a PEM file, or those of its JWKS (by `kid`).

Only RS256 and ES256 keys are used (auth.py states which token is checked with which key).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt import PyJWK, PyJWKClient

__all__ = [
    "IDP_ALGORITHMS",
    "AuthConfigError",
    "JwksKeys",
    "KeyUnavailable",
    "PublicKey",
    "load_public_key",
]

IDP_ALGORITHMS = ("RS256", "ES256")
MIN_RSA_BITS = 2048  # NIST SP 800-131A: shorter RSA keys are no longer acceptable for signatures


class AuthConfigError(ValueError):
    """A setting of the token checks that cannot work; the gateway does not start."""


class KeyUnavailable(Exception):
    """No key to check a token with; the message says why (for the log)."""


@dataclass(frozen=True, slots=True)
class PublicKey:
    key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey
    algorithm: str


def load_public_key(path: Path) -> PublicKey:
    """The key of `AUTH_PUBLIC_KEY_FILE`: an RSA key (RS256) or an EC P-256 key (ES256)."""
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise AuthConfigError(f"AUTH_PUBLIC_KEY_FILE {path}: {exc.strerror}") from None
    try:
        key = load_pem_public_key(pem)
    except ValueError:
        # Never echo the file: it may be a private key given by mistake.
        hint = " (it holds a private key: give the public one)" if b"PRIVATE KEY" in pem else ""
        raise AuthConfigError(
            f"AUTH_PUBLIC_KEY_FILE {path}: not a PEM public key (BEGIN PUBLIC KEY){hint}"
        ) from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise AuthConfigError(
                f"AUTH_PUBLIC_KEY_FILE {path}: an RSA key of {key.key_size} bits; "
                f"at least {MIN_RSA_BITS} are needed"
            )
        return PublicKey(key, "RS256")
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return PublicKey(key, "ES256")
    raise AuthConfigError(
        f"AUTH_PUBLIC_KEY_FILE {path}: a {type(key).__name__}; "
        "an RSA key (RS256) or an EC P-256 key (ES256) is needed"
    )


class JwksKeys:
    """The signing keys of an identity provider's JWKS, by `kid`.

    PyJWKClient fetches the set, caches it for `lifespan_s`, and refetches it for a kid it does
    not know at most once per `cooldown_s` (so made-up kids cost the IdP one fetch per cooldown).
    Its calls block and hold a lock while they fetch: they run on one thread of our own, and a
    token waits for them at most `timeout_s`. A slow or dead endpoint thus costs the tokens that
    need it a 401 and one thread, never the event loop; a kid of the cached set is answered
    without the thread, so a stalled fetch holds up no token whose key is known.
    """

    def __init__(self, url: str, *, timeout_s: float, lifespan_s: float, cooldown_s: float):
        self._timeout_s = timeout_s
        self._client = PyJWKClient(
            url, timeout=timeout_s, lifespan=lifespan_s, cooldown_duration=cooldown_s
        )
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jwks")

    async def key(self, kid: str) -> PyJWK:
        """The key `kid` names, for RS256 or ES256; raises KeyUnavailable."""
        key = self._cached(kid)
        if key is None:
            key = await self._fetched(kid)
        if key.algorithm_name not in IDP_ALGORITHMS:
            raise KeyUnavailable(f"the JWKS key {kid!r} is for {key.algorithm_name}")
        return key

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)

    def _cached(self, kid: str) -> PyJWK | None:
        cache = self._client.jwk_set_cache
        jwk_set = cache.get() if cache is not None else None  # None once expired
        if jwk_set is None:
            return None
        # As PyJWKClient picks signing keys: `use` is `sig` or absent.
        return next(
            (k for k in jwk_set.keys if k.key_id == kid and k.public_key_use in ("sig", None)),
            None,
        )

    async def _fetched(self, kid: str) -> PyJWK:
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(self._thread, self._client.get_signing_key, kid)
        try:
            return await asyncio.wait_for(call, self._timeout_s)
        except TimeoutError:
            raise KeyUnavailable(f"the JWKS gave no key within {self._timeout_s}s") from None
        except Exception as exc:
            # Whatever the endpoint did (unreachable, an HTTP error, not a JWKS, no such kid),
            # the token is refused and the gateway carries on.
            raise KeyUnavailable(f"no key {kid!r} from the JWKS: {exc}") from None
