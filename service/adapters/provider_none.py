"""PROVIDER=none: no external provider; trunks live only here and `providerId` stays null.

A real setting (a deployment without LiveKit, or a staging stack), not a test double.
"""

from __future__ import annotations

from service.domain.model import SipTrunk

__all__ = ["NoProvider"]


class NoProvider:
    async def create(self, trunk: SipTrunk) -> str | None:
        return None

    async def update(self, before: SipTrunk, after: SipTrunk) -> str | None:
        return after.provider_id

    async def delete(self, trunk: SipTrunk) -> None:
        return None
