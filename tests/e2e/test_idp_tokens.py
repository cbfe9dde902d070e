"""Identity-provider tokens on the gateway as it runs (`sip-trunks gateway`, set up from its
environment), with the IdP's JWKS served by the test on the loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from service.entrypoints.gateway.tokens import ClaimRules, mint_token
from tests.conftest import KAFKA_BOOTSTRAP
from tests.e2e.stack import Stack, free_port, running_stack
from tests.unit.gateway.idp import ISSUER, JwksServer, claims, ec_key, rsa_key, serving

BASE = "/api/v1/sip-trunks"


@pytest_asyncio.fixture
async def idp_gateway(tmp_path: Path) -> AsyncIterator[tuple[Stack, JwksServer]]:
    """A gateway whose IdP publishes its JWKS at a loopback port the test serves or not."""
    jwks = JwksServer(port=free_port())
    async with running_stack(
        tmp_path,
        KAFKA_BOOTSTRAP,
        roles=["gateway"],
        prefix="e2e-idp",
        AUTH_JWKS_URL=jwks.url,
        AUTH_ISSUER=ISSUER,
        AUTH_TENANT_CLAIM="org",
        AUTH_JWKS_COOLDOWN_S="0",
        AUTH_JWKS_TIMEOUT_S="1",
    ) as stack:
        yield stack, jwks


async def test_the_running_gateway_takes_idp_and_hs256_tokens(
    idp_gateway: tuple[Stack, JwksServer],
) -> None:
    stack, jwks = idp_gateway
    first, rotated, unpublished = rsa_key("e2e-rsa"), ec_key("e2e-ec"), ec_key("e2e-new")
    idp_claims = claims(tenant=None) | {"org": "acme"}
    hs256 = mint_token(stack.secret, tenant="acme", rules=ClaimRules("org", issuer=ISSUER))
    async with stack.client(tenant=None) as api:

        async def status(token: str) -> int:
            response = await api.get(BASE, headers={"Authorization": f"Bearer {token}"})
            return response.status_code

        jwks.keys = [first]
        with serving(jwks):
            assert await status(first.sign(idp_claims)) == 200
            assert await status(first.sign(claims())) == 401  # `tenant` is not the claim here
            jwks.keys = [first, rotated]
            assert await status(rotated.sign(idp_claims)) == 200
            assert jwks.fetches == 2
        # The IdP is down: a kid not fetched yet is refused; known keys and HS256 still pass.
        assert await status(unpublished.sign(idp_claims)) == 401
        assert await status(rotated.sign(idp_claims)) == 200
        assert await status(hs256) == 200
