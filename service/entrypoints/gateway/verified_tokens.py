"""Bearer tokens already verified, by their exact text, until they expire.

Checking a token's signature and claims costs more CPU than the rest of a GET (PyJWT decodes
every segment in Python, twice), while a client sends the same token on request after request.
Once verified, a token stays valid until its `exp` (plus the leeway): `nbf` and `iat` only ever
become true, the signing key and the claim rules are fixed, so its caller can be kept until then.
Only tokens that passed every check are kept; a refused one is checked (and logged) each time.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["MAX_TOKENS", "VerifiedTokens"]

MAX_TOKENS = 4096  # a bound on memory: past it, the oldest entry makes way

V = TypeVar("V")


class VerifiedTokens(Generic[V]):
    """What each verified token stood for (`V`), until the instant it expires (epoch seconds)."""

    def __init__(self, max_tokens: int = MAX_TOKENS) -> None:
        self._max = max_tokens
        self._entries: dict[str, tuple[V, float]] = {}  # insertion order: oldest first

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, now: float) -> V | None:
        """What `token` stood for, None when it was not verified or has expired at `now`."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        value, expires = entry
        if now < expires:
            return value
        del self._entries[token]
        return None

    def put(self, token: str, value: V, expires: float) -> None:
        if token not in self._entries and len(self._entries) >= self._max:
            del self._entries[next(iter(self._entries))]
        self._entries[token] = (value, expires)
