"""The memory of verified tokens: until their expiry, bounded."""

from __future__ import annotations

from service.entrypoints.gateway.verified_tokens import VerifiedTokens


def test_a_token_is_known_until_it_expires_then_forgotten() -> None:
    tokens: VerifiedTokens[str] = VerifiedTokens()
    tokens.put("t", "caller", expires=100.0)
    assert tokens.get("t", now=99.9) == "caller"
    assert tokens.get("t", now=100.0) is None
    assert len(tokens) == 0
    assert tokens.get("never-seen", now=0.0) is None


def test_past_the_bound_the_oldest_token_makes_way() -> None:
    tokens: VerifiedTokens[int] = VerifiedTokens(max_tokens=2)
    for n in range(3):
        tokens.put(f"t{n}", n, expires=100.0)
    assert len(tokens) == 2
    assert tokens.get("t0", now=0.0) is None
    assert tokens.get("t2", now=0.0) == 2
    tokens.put("t2", 2, expires=200.0)  # put again: no eviction
    assert tokens.get("t1", now=0.0) == 1
