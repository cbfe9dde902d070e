"""Identity-provider tokens against the gateway app, with the IdP's JWKS served on the loopback:
RS256/ES256 keys by kid, rotation, a JWKS that is down, silent or broken, forged tokens."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from pydantic import SecretStr
from structlog.testing import capture_logs

from service.config import Settings
from service.entrypoints.gateway.tokens import READ_SCOPE, ClaimRules, mint_token
from service.entrypoints.processes import free_port
from tests.unit.gateway.gateway_fakes import BASE, SECRET, running_app
from tests.unit.gateway.idp import (
    ISSUER,
    JwksServer,
    claims,
    ec_key,
    forged,
    rsa_key,
    serving,
    silent_endpoint,
)

TRUNK = {"name": "IdP trunk", "gateways": [{"ipOrDomain": "sip.example.com", "name": "main"}]}


def idp_settings(url: str, **overrides: Any) -> Settings:
    """HS256 and the IdP's JWKS both accepted; no refetch cooldown unless asked for."""
    options: dict[str, Any] = {
        "auth_jwt_secret": SecretStr(SECRET),
        "auth_jwks_url": url,
        "auth_issuer": ISSUER,
        "auth_jwks_cooldown_s": 0,
        "auth_jwks_timeout_s": 2,
        "gateway_reply_timeout_s": 1.0,
    }
    return Settings(**(options | overrides))


@asynccontextmanager
async def gateway(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(settings=settings) as (client, _):
        yield client


async def status(client: httpx.AsyncClient, token: str) -> int:
    response = await client.get(BASE, headers={"Authorization": f"Bearer {token}"})
    return response.status_code


def hs256(settings: Settings, tenant: str = "tenant-a") -> str:
    """A dev token as `sip-trunks token` mints it for these settings."""
    return mint_token(SECRET, tenant=tenant, rules=ClaimRules.from_settings(settings))


def refusals(logs: list[dict[str, Any]]) -> list[str]:
    return [str(entry["reason"]) for entry in logs if entry["event"] == "auth.token_refused"]


async def test_rs256_and_es256_tokens_of_the_jwks_are_accepted() -> None:
    rsa, ec = rsa_key("rsa-1"), ec_key("ec-1")
    with serving(JwksServer([rsa, ec])) as jwks:
        async with gateway(idp_settings(jwks.url)) as client:
            assert await status(client, rsa.sign(claims())) == 200
            assert await status(client, ec.sign(claims())) == 200
            assert jwks.fetches == 1  # both keys came with the first fetch
            reader = rsa.sign(claims(scope=READ_SCOPE))
            created = await client.post(
                BASE, json=TRUNK, headers={"Authorization": f"Bearer {reader}"}
            )
            assert created.status_code == 403


async def test_a_wrong_or_missing_issuer_or_audience_is_refused() -> None:
    key = rsa_key("rsa-1")
    with serving(JwksServer([key])) as jwks:
        settings = idp_settings(jwks.url, auth_audience="sip-trunks-api")
        async with gateway(settings) as client:
            assert await status(client, key.sign(claims(aud="sip-trunks-api"))) == 200
            assert await status(client, key.sign(claims(aud=["other", "sip-trunks-api"]))) == 200
            with capture_logs() as logs:
                for bad in [
                    claims(aud="sip-trunks-api", iss="https://evil.example.test/"),
                    claims(aud="sip-trunks-api", iss=None),
                    claims(aud="another-api"),
                    claims(),  # no aud
                ]:
                    assert await status(client, key.sign(bad)) == 401
            reasons = refusals(logs)
            assert len(reasons) == 4
            assert "issuer" in reasons[0].lower()
            assert "iss" in reasons[1]
            assert "audience" in reasons[2].lower()
            assert "aud" in reasons[3]
            # The HS256 tokens of this deployment are held to the same rules.
            assert await status(client, hs256(settings)) == 200
            assert await status(client, mint_token(SECRET, tenant="tenant-a")) == 401


async def test_a_rotated_key_is_fetched_and_the_old_one_serves_while_published() -> None:
    old, new = rsa_key("2026-01"), rsa_key("2026-02", second=True)
    with serving(JwksServer([old])) as jwks:
        settings = idp_settings(jwks.url, auth_jwks_lifespan_s=1)
        async with gateway(settings) as client:
            assert await status(client, old.sign(claims())) == 200
            assert jwks.fetches == 1
            jwks.keys = [old, new]  # the IdP publishes the new key and signs with it
            assert await status(client, new.sign(claims())) == 200
            assert jwks.fetches == 2  # the unknown kid made the gateway refetch
            assert await status(client, old.sign(claims())) == 200
            assert await status(client, new.sign(claims())) == 200
            assert jwks.fetches == 2  # both known now: from the cache
            jwks.keys = [new]  # the old key is withdrawn; the gateway learns it at expiry
            await asyncio.sleep(1.1)
            assert await status(client, old.sign(claims())) == 401
            assert await status(client, new.sign(claims())) == 200


async def test_a_remembered_token_is_refused_once_the_refetched_jwks_withdrew_its_key() -> None:
    old, new = rsa_key("2026-01"), rsa_key("2026-02", second=True)
    with serving(JwksServer([old, new])) as jwks:
        async with gateway(idp_settings(jwks.url, auth_jwks_lifespan_s=1)) as client:
            token = old.sign(claims())
            assert await status(client, token) == 200
            assert await status(client, token) == 200  # remembered
            jwks.keys = [new]
            await asyncio.sleep(1.1)  # the set expires: the next check refetches it
            assert await status(client, token) == 401


async def test_a_kid_the_refreshed_jwks_lacks_is_refused() -> None:
    published, unpublished = rsa_key("published"), rsa_key("ghost", second=True)
    with serving(JwksServer([published])) as jwks:
        async with gateway(idp_settings(jwks.url)) as client:
            assert await status(client, published.sign(claims())) == 200
            with capture_logs() as logs:
                assert await status(client, unpublished.sign(claims())) == 401
                # A published kid on a token signed with another key.
                assert await status(client, unpublished.sign(claims(), kid="published")) == 401
            assert jwks.fetches == 2  # one refetch for the unknown kid, none for the other
            assert "ghost" in refusals(logs)[0]
            assert "signature" in refusals(logs)[1].lower()


async def test_unknown_kids_refetch_at_most_once_per_cooldown() -> None:
    key = rsa_key("rsa-1")
    with serving(JwksServer([key])) as jwks:
        async with gateway(idp_settings(jwks.url, auth_jwks_cooldown_s=60)) as client:
            assert await status(client, key.sign(claims())) == 200
            for n in range(5):
                assert await status(client, key.sign(claims(), kid=f"made-up-{n}")) == 401
            assert jwks.fetches == 1


async def test_a_jwks_that_is_down_refuses_its_tokens_and_hs256_still_works() -> None:
    key = rsa_key("rsa-1")
    jwks = JwksServer([key], port=free_port())  # nothing listens there yet
    settings = idp_settings(jwks.url)
    async with gateway(settings) as client:
        with capture_logs() as logs:
            assert await status(client, key.sign(claims())) == 401
        assert "JWKS" in refusals(logs)[0]
        assert await status(client, hs256(settings)) == 200
        with serving(jwks):  # the IdP is back
            assert await status(client, key.sign(claims())) == 200


async def test_a_jwks_that_never_answers_costs_only_its_tokens_a_401() -> None:
    key = rsa_key("rsa-1")
    with silent_endpoint() as url:
        settings = idp_settings(url, auth_jwks_timeout_s=1.5)
        async with gateway(settings) as client:
            started = time.monotonic()
            waiting = [asyncio.create_task(status(client, key.sign(claims()))) for _ in range(3)]
            await asyncio.sleep(0.1)
            # Meanwhile the event loop serves other callers.
            assert await status(client, hs256(settings)) == 200
            assert not any(task.done() for task in waiting)
            assert await asyncio.gather(*waiting) == [401, 401, 401]
            assert time.monotonic() - started < 3


async def test_a_stalled_refetch_holds_up_no_token_whose_key_is_known() -> None:
    key = rsa_key("rsa-1")
    with serving(JwksServer([key])) as jwks:
        async with gateway(idp_settings(jwks.url, auth_jwks_timeout_s=2)) as client:
            assert await status(client, key.sign(claims())) == 200
            jwks.answering.clear()
            unknown = asyncio.create_task(status(client, key.sign(claims(), kid="rotated?")))
            assert await asyncio.to_thread(jwks.holding.wait, 5)  # the refetch hangs
            assert await status(client, key.sign(claims())) == 200
            assert not unknown.done()
            assert await unknown == 401


async def test_a_broken_jwks_document_is_a_401() -> None:
    key = rsa_key("rsa-1")
    secret = {"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAxMjM0NQ", "kid": "sym"}
    token = key.sign(claims(), kid="sym")
    for document in [
        b"<html>not json</html>",
        b"[]",
        b'{"keys": []}',
        json.dumps({"keys": [secret]}).encode(),
    ]:
        with serving(JwksServer(body=document)) as jwks:
            async with gateway(idp_settings(jwks.url)) as client:
                with capture_logs() as logs:
                    assert await status(client, token) == 401, document
                assert jwks.fetches >= 1
                assert "JWKS" in refusals(logs)[0], document


async def test_alg_none_and_hs256_signed_with_the_public_key_are_refused() -> None:
    key = rsa_key("rsa-1")
    payload = claims()
    with serving(JwksServer([key])) as jwks:
        async with gateway(idp_settings(jwks.url)) as client:
            assert await status(client, key.sign(payload)) == 200
            attacks = [
                forged({"alg": "none", "kid": key.kid}, payload, None),
                forged({"alg": "HS256", "kid": key.kid}, payload, key.public_pem()),
                forged({"alg": "HS256", "kid": key.kid}, payload, json.dumps(key.jwk()).encode()),
                forged({"alg": "RS256", "kid": key.kid}, payload, key.public_pem()),
                # an ES256 token naming the RSA key
                ec_key("ec-1").sign(payload, kid=key.kid),
            ]
            with capture_logs() as logs:
                for attack in attacks:
                    assert await status(client, attack) == 401
            assert len(refusals(logs)) == len(attacks)


async def test_the_tenant_and_scope_claims_are_the_configured_ones() -> None:
    key = rsa_key("rsa-1")
    tenant_claim = "https://example.test/org"
    with serving(JwksServer([key])) as jwks:
        settings = idp_settings(jwks.url, auth_tenant_claim=tenant_claim, auth_scope_claim="scp")

        def token(org: str, scp: Any = ("sip-trunks:read", "sip-trunks:write")) -> dict[str, str]:
            idp_claims = claims(tenant=None, scope=None) | {tenant_claim: org, "scp": list(scp)}
            return {"Authorization": f"Bearer {key.sign(idp_claims)}"}

        async with gateway(settings) as client:
            created = await client.post(BASE, json=TRUNK, headers=token("org-1"))
            assert created.status_code == 201, created.text
            mine = await client.get(BASE, headers=token("org-1"))
            assert [t["id"] for t in mine.json()] == [created.json()["id"]]
            theirs = await client.get(BASE, headers=token("org-2"))
            assert theirs.json() == []
            reader = token("org-1", ["sip-trunks:read"])
            assert (await client.post(BASE, json=TRUNK, headers=reader)).status_code == 403
            assert await status(client, key.sign(claims())) == 401  # `tenant`, not the org claim
            # The dev tokens of this deployment use the configured names too.
            assert await status(client, hs256(settings, tenant="org-1")) == 200
