"""Bearer tokens: 401 for anything but a valid token, 403 for a missing scope, checks in order."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import httpx
import jwt
import pytest
from structlog.testing import capture_logs

from service.entrypoints.gateway.auth import Authenticator
from service.entrypoints.gateway.problems import ProblemError
from service.entrypoints.gateway.tokens import READ_SCOPE, ClaimRules
from tests.unit.gateway.gateway_fakes import BASE, SECRET, TENANT, MemoryBackend, running_app, token

CHALLENGE = 'Bearer realm="sip-trunks"'
INVALID = 'Bearer realm="sip-trunks", error="invalid_token"'


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with running_app() as (client, _):
        yield client


def claims(**overrides: Any) -> dict[str, Any]:
    base = {"sub": "alice", "tenant": TENANT, "scope": READ_SCOPE, "exp": int(time.time()) + 60}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def signed(secret: str = SECRET, algorithm: str = "HS256", **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), secret, algorithm=algorithm)


@pytest.mark.parametrize(
    ("authorization", "challenge"),
    [
        (None, CHALLENGE),
        ("Basic dXNlcjpwYXNz", CHALLENGE),
        ("Bearer", INVALID),
        ("Bearer not.a.jwt", INVALID),
        (f"Bearer {signed(secret='another-secret-of-enough-length-0123456789')}", INVALID),
        (f"Bearer {signed(exp=int(time.time()) - 10)}", INVALID),
        (f"Bearer {signed(exp=None)}", INVALID),
        (f"Bearer {signed(sub=None)}", INVALID),
        (f"Bearer {signed(tenant=None)}", INVALID),
        (f"Bearer {signed(tenant=7)}", INVALID),
        (f"Bearer {signed(tenant='')}", INVALID),
        (f"Bearer {signed(tenant='t' * 256)}", INVALID),
        (f"Bearer {signed(scope=7)}", INVALID),
        (f"Bearer {signed(scope=['sip-trunks:read', 7])}", INVALID),
        (f"Bearer {signed(algorithm='HS384')}", INVALID),
        (f"Bearer {jwt.encode(claims(), '', algorithm='none')}", INVALID),
    ],
)
async def test_no_valid_token_is_401(
    client: httpx.AsyncClient, authorization: str | None, challenge: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.get(BASE, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == challenge


async def test_a_valid_token_with_an_audience_and_lower_case_scheme_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(BASE, headers={"Authorization": f"bearer {signed(aud='x')}"})
    assert response.status_code == 200


async def test_the_caller_is_read_from_the_claims() -> None:
    authenticator = Authenticator(ClaimRules(), secret=SECRET)
    caller = await authenticator.caller(f"Bearer {token()}")
    assert caller.tenant == TENANT
    assert caller.subject == "developer"
    assert caller.scopes == {"sip-trunks:read", "sip-trunks:write"}
    listed = await authenticator.caller(f"Bearer {signed(scope=['sip-trunks:read', 'x'])}")
    assert listed.scopes == {"sip-trunks:read", "x"}  # a list, as IdPs send `scp`
    with pytest.raises(ProblemError):
        await Authenticator(ClaimRules(), secret="wrong-" + SECRET).caller(f"Bearer {token()}")


async def test_auth_comes_before_any_check_of_the_request(client: httpx.AsyncClient) -> None:
    bad = {"Content-Type": "text/plain", "If-Match": "bad", "Idempotency-Key": ""}
    for method, url in [("POST", BASE), ("PATCH", f"{BASE}/nope"), ("DELETE", f"{BASE}/nope")]:
        response = await client.request(method, url, headers=bad, content=b"x" * 70_000)
        assert response.status_code == 401
        response = await client.request(
            method,
            url,
            headers={**bad, "Authorization": f"Bearer {token(scopes=(READ_SCOPE,))}"},
            content=b"x" * 70_000,
        )
        assert response.status_code == 403


async def test_request_checks_run_in_order(client: httpx.AsyncClient) -> None:
    """415, then 413, then 400 (body), then 400 (headers), then 422 (path id)."""
    url = f"{BASE}/nope"
    headers = {"Authorization": f"Bearer {token()}", "If-Match": "bad"}
    json_type = {**headers, "Content-Type": "application/json"}
    order = [
        ({**headers, "Content-Type": "text/plain"}, b"x" * 70_000, 415),
        (json_type, b"x" * 70_000, 413),
        (json_type, b"x", 400),
        (json_type, b"{}", 400),  # If-Match
        ({**json_type, "If-Match": '"1"'}, b"{}", 422),  # the path id
    ]
    for request_headers, body, status in order:
        response = await client.patch(url, headers=request_headers, content=body)
        assert response.status_code == status, response.text


async def test_nothing_is_sent_before_auth(client: httpx.AsyncClient) -> None:
    backend = MemoryBackend()
    async with running_app(backend) as (c, _):
        await c.delete(f"{BASE}/{uuid4()}")
    assert backend.sent == []


async def test_a_verified_token_is_decoded_once_until_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[str] = []
    decode = jwt.decode

    def counted(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counted)
    now = time.time()
    authenticator = Authenticator(ClaimRules(leeway_s=5), secret=SECRET, clock=lambda: now)
    valid = signed(exp=int(now) + 60)
    first = await authenticator.caller(f"Bearer {valid}")
    assert await authenticator.caller(f"bearer  {valid} ") == first
    assert decoded == [valid]
    now += 64  # within the leeway after `exp`: still remembered
    assert await authenticator.caller(f"Bearer {valid}") == first
    now += 1  # past it: checked afresh (here PyJWT, on the real clock, still takes it)
    assert await authenticator.caller(f"Bearer {valid}") == first
    assert decoded == [valid, valid]


async def test_a_refused_token_is_checked_and_logged_every_time() -> None:
    authenticator = Authenticator(ClaimRules(), secret=SECRET)
    unknown_tenant = signed(tenant=7)
    with capture_logs() as logs:
        for _ in range(2):
            with pytest.raises(ProblemError):
                await authenticator.caller(f"Bearer {unknown_tenant}")
    assert [entry["event"] for entry in logs] == ["auth.token_refused"] * 2
