"""The REST API over the real handlers (in memory): every row of CONTRACT §2's status table."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from uuid import uuid4

import httpx
import pytest
from sip_trunk_contracts import MASKED_PASSWORD, CommandEnvelope
from structlog.testing import capture_logs

from service.adapters.command_bus import BrokerUnavailable, Outcome
from service.domain import Reason
from service.entrypoints.gateway.app import create_app
from service.entrypoints.gateway.commands import create_command
from service.entrypoints.gateway.tokens import READ_SCOPE, WRITE_SCOPE, mint_token
from tests.unit.gateway.gateway_fakes import (
    BASE,
    OTHER_TENANT,
    SECRET,
    SETTINGS,
    TENANT,
    MemoryBackend,
    auth,
    running_app,
    token,
)
from tests.unit.service.fakes import SEAL_KEY, sealed

PASSWORD = "Plaintext-Pa55word"
TRUNK = {
    "name": "Main Office SIP Trunk",
    "gateways": [{"ipOrDomain": "sip-gateway.example.com", "port": 5060, "name": "Primary"}],
    "authentication": {"username": "office_sip_user", "password": PASSWORD},
    "advanced": {},
}
WRITABLE_FIELDS = {"name", "gateways", "authentication", "advanced"}
TRUNK_FIELDS = {*WRITABLE_FIELDS, "id", "isSystem", "providerId", "createdAt", "updatedAt"}


@pytest.fixture
async def app() -> AsyncIterator[tuple[httpx.AsyncClient, MemoryBackend]]:
    async with running_app() as running:
        yield running


@pytest.fixture
def client(app: tuple[httpx.AsyncClient, MemoryBackend]) -> httpx.AsyncClient:
    return app[0]


@pytest.fixture
def backend(app: tuple[httpx.AsyncClient, MemoryBackend]) -> MemoryBackend:
    return app[1]


async def create(
    client: httpx.AsyncClient, tenant: str = TENANT, **overrides: Any
) -> dict[str, Any]:
    response = await client.post(BASE, headers=auth(tenant), json={**TRUNK, **overrides})
    assert response.status_code == 201, response.text
    trunk: dict[str, Any] = response.json()
    return trunk


def assert_problem(
    response: httpx.Response, status: int, code: str, pointer: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == "about:blank"
    assert body["title"]
    assert body["status"] == status
    assert body["code"] == code
    assert body["detail"]
    assert isinstance(body["errors"], list)
    if pointer is not None:
        assert pointer in [e["pointer"] for e in body["errors"]], body
    assert PASSWORD not in response.text
    return body


# --- success -------------------------------------------------------------------------------


async def test_create_returns_201_trunk_location_etag(client: httpx.AsyncClient) -> None:
    response = await client.post(BASE, headers=auth(), json=TRUNK)
    assert response.status_code == 201
    trunk = response.json()
    assert set(trunk) == TRUNK_FIELDS
    assert trunk["authentication"] == {"username": "office_sip_user", "password": MASKED_PASSWORD}
    assert response.headers["Location"] == f"{BASE}/{trunk['id']}"
    assert response.headers["ETag"] == '"1"'
    assert PASSWORD not in response.text


async def test_get_returns_the_stored_trunk_with_etag(client: httpx.AsyncClient) -> None:
    trunk = await create(client)
    response = await client.get(f"{BASE}/{trunk['id']}", headers=auth())
    assert response.status_code == 200
    assert response.json() == trunk
    assert response.headers["ETag"] == '"1"'
    assert response.headers["content-type"] == "application/json"


async def test_get_accepts_an_upper_case_uuid(client: httpx.AsyncClient) -> None:
    trunk = await create(client)
    response = await client.get(f"{BASE}/{trunk['id'].upper()}", headers=auth())
    assert response.json() == trunk


async def test_patch_changes_only_given_fields_and_reads_back(client: httpx.AsyncClient) -> None:
    trunk = await create(client)
    response = await client.patch(f"{BASE}/{trunk['id']}", headers=auth(), json={"name": "New"})
    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'
    assert response.json() == {**trunk, "name": "New", "updatedAt": response.json()["updatedAt"]}
    again = await client.get(f"{BASE}/{trunk['id']}", headers=auth())
    assert again.json() == response.json()
    assert again.headers["ETag"] == '"2"'


async def test_reference_empty_patch_returns_the_trunk_unchanged(
    client: httpx.AsyncClient,
) -> None:
    trunk = await create(client)
    response = await client.patch(
        f"{BASE}/{trunk['id']}",
        headers={"Authorization": f"Bearer {token()}", "Content-Type": "application/json"},
        content=b"{}",
    )
    assert response.status_code == 200
    assert response.json() == trunk
    assert response.headers["ETag"] == '"1"'


async def test_patch_accepts_merge_patch_media_type_and_charset(
    client: httpx.AsyncClient,
) -> None:
    trunk = await create(client)
    for content_type in ("application/merge-patch+json", "application/json; charset=UTF-8"):
        response = await client.patch(
            f"{BASE}/{trunk['id']}",
            headers=auth(**{"Content-Type": content_type}),
            content=b'{"authentication": {"password": "********"}}',
        )
        assert response.status_code == 200, response.text


async def test_delete_returns_204_then_the_trunk_is_gone(client: httpx.AsyncClient) -> None:
    trunk = await create(client)
    response = await client.delete(f"{BASE}/{trunk['id']}", headers=auth())
    assert response.status_code == 204
    assert response.content == b""
    gone = await client.get(f"{BASE}/{trunk['id']}", headers=auth())
    assert_problem(gone, 404, "not_found")


async def test_delete_ignores_a_body_and_its_content_type(client: httpx.AsyncClient) -> None:
    trunk = await create(client)
    response = await client.request(
        "DELETE",
        f"{BASE}/{trunk['id']}",
        headers=auth(**{"Content-Type": "text/plain"}),
        content=b"whatever",
    )
    assert response.status_code == 204


async def test_list_returns_tenant_and_system_trunks_oldest_first(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    system_id = backend.seed_system_trunk()
    mine = [await create(client, name=f"t{i}") for i in range(3)]
    await create(client, OTHER_TENANT)
    response = await client.get(BASE, headers=auth())
    assert response.status_code == 200
    assert "Link" not in response.headers
    ids = [t["id"] for t in response.json()]
    assert ids == [str(system_id), *(t["id"] for t in mine)]


async def test_pagination_follows_link_until_the_end(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    backend.seed_system_trunk()
    for i in range(6):
        await create(client, name=f"t{i}")
    await create(client, OTHER_TENANT)
    url: str | None = f"{BASE}?limit=2"
    pages: list[list[dict[str, Any]]] = []
    while url is not None:
        response = await client.get(url, headers=auth())
        assert response.status_code == 200
        pages.append(response.json())
        link = response.headers.get("Link")
        url = None
        if link is not None:
            assert link.endswith('>; rel="next"')
            url = link[1 : link.index(">")]
            assert url.startswith(f"{BASE}?limit=2&cursor=")
    assert [len(p) for p in pages] == [2, 2, 2, 1]  # 7 visible: a full last page has no link
    everything = (await client.get(f"{BASE}?limit=1000", headers=auth())).json()
    assert [t for page in pages for t in page] == everything
    created = [t["createdAt"] for t in everything]
    assert created == sorted(created)


async def test_full_last_page_has_no_link(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        await create(client)
    response = await client.get(f"{BASE}?limit=2", headers=auth())
    assert len(response.json()) == 2
    assert "Link" not in response.headers


@pytest.mark.parametrize(
    ("query", "pointer"),
    [
        ("limit=0", "/limit"),
        ("limit=1001", "/limit"),
        ("limit=ten", "/limit"),
        ("cursor=not-a-cursor!", "/cursor"),
        ("cursor=WzFd", "/cursor"),  # base64url of [1]
    ],
)
async def test_list_parameters_out_of_range_are_422(
    client: httpx.AsyncClient, query: str, pointer: str
) -> None:
    response = await client.get(f"{BASE}?{query}", headers=auth())
    assert_problem(response, 422, "validation_failed", pointer)


# --- 400, 413, 415 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[]", b'"text"', b"null", b'{"name": NaN}', b"\xff\xfe{}", b"[" * 60_000],
)
async def test_body_not_a_json_object_is_400(client: httpx.AsyncClient, body: bytes) -> None:
    headers = auth(**{"Content-Type": "application/json"})
    assert_problem(await client.post(BASE, headers=headers, content=body), 400, "malformed_request")
    url = f"{BASE}/{uuid4()}"
    assert_problem(await client.patch(url, headers=headers, content=body), 400, "malformed_request")


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": 1e99999, "gateways": []}',  # Infinity to Python: not JSON
        b'{"name": -Infinity}',
        b'{"name": "\\ud800", "gateways": []}',  # a lone surrogate
        b'{"advanced": {"numbers": ' + b"[" * 600 + b"]" * 600 + b"}}",
        b'{"a": ' + b"[" * 32 + b"]" * 32 + b"}",  # 33 levels
    ],
)
async def test_what_strict_json_refuses_is_400_and_never_sent(
    app: tuple[httpx.AsyncClient, MemoryBackend], body: bytes
) -> None:
    client, backend = app
    trunk = await create(client)
    sent = len(backend.sent)
    headers = auth(**{"Content-Type": "application/json"})
    assert_problem(await client.post(BASE, headers=headers, content=body), 400, "malformed_request")
    url = f"{BASE}/{trunk['id']}"
    assert_problem(await client.patch(url, headers=headers, content=body), 400, "malformed_request")
    assert len(backend.sent) == sent


async def test_a_patch_body_may_nest_one_level_less_than_a_create(
    client: httpx.AsyncClient,
) -> None:
    """The command carries the patch inside `changes`: at 32 levels the command would be 33."""
    trunk = await create(client)
    headers = auth(**{"Content-Type": "application/json"})
    url = f"{BASE}/{trunk['id']}"
    too_deep = b'{"a": ' + b"[" * 31 + b"]" * 31 + b"}"  # 32 levels
    assert_problem(
        await client.patch(url, headers=headers, content=too_deep), 400, "malformed_request"
    )
    deepest = b'{"a": ' + b"[" * 30 + b"]" * 30 + b"}"  # 31 levels: the worker judges it
    assert_problem(
        await client.patch(url, headers=headers, content=deepest), 422, "validation_failed"
    )
    assert_problem(
        await client.post(BASE, headers=headers, content=too_deep), 422, "validation_failed"
    )


async def test_a_body_that_does_not_arrive_in_time_is_408() -> None:

    async def stalls() -> AsyncIterator[bytes]:
        yield b'{"name": '
        await asyncio.sleep(5)
        yield b'"late"}'

    headers = auth(**{"Content-Type": "application/json"})
    impatient = SETTINGS.model_copy(update={"gateway_body_timeout_s": 0.2})
    async with running_app(settings=impatient) as (client, backend):
        started = asyncio.get_running_loop().time()
        response = await client.post(BASE, headers=headers, content=stalls())
        assert asyncio.get_running_loop().time() - started < 2
    body = assert_problem(response, 408, "request_timeout")
    assert "did not arrive within 0.2 s" in body["detail"]
    assert response.headers["connection"] == "close"
    assert backend.sent == []


async def test_every_response_says_nosniff_and_api_responses_are_never_cached(
    app: tuple[httpx.AsyncClient, MemoryBackend],
) -> None:
    client, _ = app
    trunk = await create(client)
    responses = [
        await client.get(BASE, headers=auth()),
        await client.get(f"{BASE}/{trunk['id']}", headers=auth()),
        await client.get(f"{BASE}/{uuid4()}", headers=auth()),  # a problem document
        await client.get(BASE),  # 401
    ]
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
    health = await client.get("/healthz")
    assert health.headers["x-content-type-options"] == "nosniff"
    assert "cache-control" not in health.headers


async def test_every_refused_token_gets_the_same_answer_and_the_reason_is_logged(
    client: httpx.AsyncClient,
) -> None:
    expired = mint_token(SECRET, tenant=TENANT, scopes=(READ_SCOPE,), ttl_s=-60)
    forged = mint_token("another-secret-of-32-bytes-or-more!", tenant=TENANT, scopes=(READ_SCOPE,))
    with capture_logs() as logs:
        details = {
            (await client.get(BASE, headers={"Authorization": f"Bearer {bad}"})).json()["detail"]
            for bad in (expired, forged, "not.a.jwt")
        }
    assert details == {"the bearer token is not valid"}
    reasons = [entry["reason"] for entry in logs if entry["event"] == "auth.token_refused"]
    assert len(reasons) == 3
    assert any("expired" in reason for reason in reasons)


async def test_a_client_that_leaves_mid_body_is_no_error() -> None:
    """As uvicorn tells the app when the connection closes before the announced bytes came."""
    app = create_app(SETTINGS, MemoryBackend())
    messages = [
        {"type": "http.request", "body": b'{"name": ', "more_body": True},
        {"type": "http.disconnect"},
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": BASE,
        "raw_path": BASE.encode(),
        "query_string": b"",
        "root_path": "",
        "server": ("gw", 80),
        "client": ("127.0.0.1", 5000),
        "headers": [
            (b"host", b"gw"),
            (b"content-type", b"application/json"),
            (b"content-length", b"100"),
            *[(k.lower().encode(), v.encode()) for k, v in auth().items()],
        ],
    }

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    with capture_logs() as logs:
        await app(scope, receive, send)
    events = [entry["event"] for entry in logs]
    assert "request.crashed" not in events
    assert "request.client_gone" in events
    assert not [m for m in sent if m["type"] == "http.response.start" and m["status"] >= 500]


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/xml", "application/json; charset=latin-1", "json"],
)
async def test_wrong_content_type_is_415(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = auth(**({"Content-Type": content_type} if content_type else {}))
    body = json.dumps(TRUNK).encode()
    assert_problem(
        await client.post(BASE, headers=headers, content=body), 415, "unsupported_media_type"
    )
    url = f"{BASE}/{uuid4()}"
    assert_problem(
        await client.patch(url, headers=headers, content=b"{}"), 415, "unsupported_media_type"
    )


async def test_merge_patch_type_is_for_patch_only(client: httpx.AsyncClient) -> None:
    headers = auth(**{"Content-Type": "application/merge-patch+json"})
    response = await client.post(BASE, headers=headers, content=json.dumps(TRUNK).encode())
    assert_problem(response, 415, "unsupported_media_type")


async def test_body_over_64_kib_is_413(client: httpx.AsyncClient) -> None:
    big = json.dumps({**TRUNK, "name": "x" * (64 * 1024)}).encode()
    headers = auth(**{"Content-Type": "application/json"})
    response = await client.post(BASE, headers=headers, content=big)
    assert_problem(response, 413, "payload_too_large")
    response = await client.patch(f"{BASE}/{uuid4()}", headers=headers, content=big)
    assert_problem(response, 413, "payload_too_large")


async def test_chunked_body_over_64_kib_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the bytes are counted
        yield b'{"name": "'
        for _ in range(70):
            yield b"x" * 1024
        yield b'"}'

    response = await client.post(
        BASE, headers=auth(**{"Content-Type": "application/json"}), content=chunks()
    )
    assert_problem(response, 413, "payload_too_large")


async def test_body_of_exactly_64_kib_is_read(client: httpx.AsyncClient) -> None:
    body = json.dumps({"name": ""}).encode()
    body = body[:-2] + b"x" * (64 * 1024 - len(body)) + b'"}'
    assert len(body) == 64 * 1024
    headers = auth(**{"Content-Type": "application/json"})
    response = await client.post(BASE, headers=headers, content=body)
    assert_problem(response, 422, "validation_failed")  # read, then refused by the worker


@pytest.mark.parametrize("value", ["1", 'W/"1"', '"1", "2"', '"x"', '"-1"', '"01"', '""'])
async def test_malformed_if_match_is_400(client: httpx.AsyncClient, value: str) -> None:
    trunk = await create(client)
    url = f"{BASE}/{trunk['id']}"
    response = await client.patch(url, headers=auth(**{"If-Match": value}), json={})
    assert_problem(response, 400, "malformed_request")
    response = await client.delete(url, headers=auth(**{"If-Match": value}))
    assert_problem(response, 400, "malformed_request")


@pytest.mark.parametrize("key", ["", "k" * 256])
async def test_malformed_idempotency_key_is_400(client: httpx.AsyncClient, key: str) -> None:
    headers = auth(**{"Idempotency-Key": key})
    assert_problem(await client.post(BASE, headers=headers, json=TRUNK), 400, "malformed_request")
    url = f"{BASE}/{uuid4()}"
    assert_problem(await client.delete(url, headers=headers), 400, "malformed_request")


# --- 403, 404, 409, 412, 422 from the worker -----------------------------------------------


async def test_system_trunk_is_visible_but_immutable(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    url = f"{BASE}/{backend.seed_system_trunk()}"
    for tenant in (TENANT, OTHER_TENANT):
        assert (await client.get(url, headers=auth(tenant))).json()["isSystem"] is True
    response = await client.patch(url, headers=auth(), json={"name": "mine"})
    assert_problem(response, 403, "system_trunk_immutable")
    assert_problem(await client.delete(url, headers=auth()), 403, "system_trunk_immutable")


async def test_unknown_trunk_is_404(client: httpx.AsyncClient) -> None:
    url = f"{BASE}/{uuid4()}"
    assert_problem(await client.get(url, headers=auth()), 404, "not_found")
    assert_problem(await client.patch(url, headers=auth(), json={}), 404, "not_found")
    assert_problem(await client.delete(url, headers=auth()), 404, "not_found")


async def test_trunk_id_in_use_is_409(client: httpx.AsyncClient, backend: MemoryBackend) -> None:
    key = "create-once"
    taken = create_command(TENANT, {}, key, seal_key=SEAL_KEY).trunk_id
    elsewhere = CommandEnvelope.create(
        sealed(TRUNK),
        trunk_id=taken,
        tenant_id=TENANT,
        source="/gateway",
        command_id=str(uuid4()),
        correlation_id="elsewhere",
    )
    await backend.request(elsewhere, timeout_s=1)  # the id is taken by a command from elsewhere
    response = await client.post(BASE, headers=auth(**{"Idempotency-Key": key}), json=TRUNK)
    assert_problem(response, 409, "already_exists")


async def test_if_match_current_version_succeeds_stale_is_412(client: httpx.AsyncClient) -> None:
    trunk = await create(client)
    url = f"{BASE}/{trunk['id']}"
    ok = await client.patch(url, headers=auth(**{"If-Match": '"1"'}), json={"name": "v2"})
    assert ok.headers["ETag"] == '"2"'
    stale = await client.patch(url, headers=auth(**{"If-Match": '"1"'}), json={"name": "v3"})
    assert_problem(stale, 412, "version_conflict")
    assert_problem(
        await client.delete(url, headers=auth(**{"If-Match": '"1"'})), 412, "version_conflict"
    )
    anyone = await client.patch(url, headers=auth(**{"If-Match": "*"}), json={"name": "v3"})
    assert anyone.headers["ETag"] == '"3"'
    assert (await client.delete(url, headers=auth(**{"If-Match": '"3"'}))).status_code == 204


async def test_invalid_fields_are_422_with_pointers(client: httpx.AsyncClient) -> None:
    gateways = [{"ipOrDomain": "sip.example.com", "port": "5060", "name": "g"}]
    response = await client.post(BASE, headers=auth(), json={**TRUNK, "gateways": gateways})
    assert_problem(response, 422, "validation_failed", "/gateways/0/port")
    missing = await client.post(BASE, headers=auth(), json={"name": "x"})
    assert_problem(missing, 422, "validation_failed", "/gateways")


@pytest.mark.parametrize("field", ["id", "isSystem", "providerId", "createdAt", "unknown"])
async def test_read_only_and_unknown_fields_are_refused_by_name(
    client: httpx.AsyncClient, field: str
) -> None:
    response = await client.post(BASE, headers=auth(), json={**TRUNK, field: "x"})
    assert_problem(response, 422, "validation_failed", f"/{field}")
    trunk = await create(client)
    patch = await client.patch(f"{BASE}/{trunk['id']}", headers=auth(), json={field: "x"})
    assert_problem(patch, 422, "validation_failed", f"/{field}")


@pytest.mark.parametrize("field", ["trunkId", "tenantId"])
async def test_envelope_fields_in_a_create_body_are_refused(
    client: httpx.AsyncClient, backend: MemoryBackend, field: str
) -> None:
    response = await client.post(BASE, headers=auth(), json={**TRUNK, field: OTHER_TENANT})
    assert_problem(response, 422, "validation_failed", f"/{field}")
    assert backend.sent == []


async def test_path_id_not_a_uuid_is_422(client: httpx.AsyncClient) -> None:
    for bad in ("nope", "123", f"{uuid4().hex}", f"{{{uuid4()}}}"):
        url = f"{BASE}/{bad}"
        assert_problem(await client.get(url, headers=auth()), 422, "validation_failed", "/id")
        response = await client.patch(url, headers=auth(), json={})
        assert_problem(response, 422, "validation_failed", "/id")
        response = await client.delete(url, headers=auth())
        assert_problem(response, 422, "validation_failed", "/id")


@pytest.mark.parametrize(
    ("reason", "status"),
    [(Reason.PROVIDER_REJECTED, 422), (Reason.PROVIDER_UNAVAILABLE, 503)],
)
async def test_provider_refusals(
    client: httpx.AsyncClient, backend: MemoryBackend, reason: Reason, status: int
) -> None:
    backend.harness.provider.fail(reason)
    response = await client.post(BASE, headers=auth(), json=TRUNK)
    assert_problem(response, status, reason.value)


# --- 503, 504, 500 -------------------------------------------------------------------------


async def test_broker_unavailable_is_503(client: httpx.AsyncClient, backend: MemoryBackend) -> None:
    backend.fail_with = BrokerUnavailable("down")
    assert_problem(await client.post(BASE, headers=auth(), json=TRUNK), 503, "broker_unavailable")


async def test_timeout_is_504_with_the_command_id(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    backend.fail_with = TimeoutError()
    response = await client.post(BASE, headers=auth(**{"Idempotency-Key": "k1"}), json=TRUNK)
    body = assert_problem(response, 504, "timeout")
    assert body["commandId"] == create_command(TENANT, {}, "k1", seal_key=SEAL_KEY).command_id
    assert "Idempotency-Key" in body["detail"]


async def test_retry_after_timeout_with_the_same_key_is_safe(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    headers = auth(**{"Idempotency-Key": "after-timeout"})
    backend.fail_with = TimeoutError()
    timed_out = await client.post(BASE, headers=headers, json=TRUNK)
    assert timed_out.status_code == 504
    backend.fail_with = None
    retried = await client.post(BASE, headers=headers, json=TRUNK)
    assert retried.status_code == 201
    assert len(backend.harness.db.trunks) == 1


async def test_another_requests_outcome_is_never_returned(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    """Two requests with one X-Request-ID: an outcome caused by another command is not ours."""
    other = await create(client)
    original = backend.request

    async def crossed(command: CommandEnvelope, **kwargs: Any) -> Outcome:
        # as if the other request's command answered
        command = replace(command, headers=replace(command.headers, id=str(uuid4())))
        return await original(command, **kwargs)

    backend.request = crossed  # type: ignore[method-assign]
    response = await client.patch(f"{BASE}/{other['id']}", headers=auth(), json={})
    assert_problem(response, 504, "timeout")


async def test_an_outcome_about_another_tenant_is_never_returned(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    """A producer reusing this command id for another tenant's trunk: its outcome is not ours."""
    mine = await create(client)
    original = backend.request

    async def foreign(*args: Any, **kwargs: Any) -> Outcome:
        outcome = await original(*args, **kwargs)
        return Outcome(
            outcome.headers, outcome.event.model_copy(update={"tenantId": "someone-else"})
        )

    backend.request = foreign  # type: ignore[method-assign]
    response = await client.patch(f"{BASE}/{mine['id']}", headers=auth(), json={})
    assert_problem(response, 504, "timeout")


async def test_an_unexpected_error_is_a_500_problem_with_request_id(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    backend.fail_with = RuntimeError("bug")
    with capture_logs() as logs:
        response = await client.post(BASE, headers=auth(**{"X-Request-ID": "r-500"}), json=TRUNK)
    assert_problem(response, 500, "internal_error")
    assert response.headers["X-Request-ID"] == "r-500"
    assert [e["event"] for e in logs] == ["request.crashed"]
    assert PASSWORD not in repr(logs)


# --- routing -------------------------------------------------------------------------------


async def test_unknown_path_and_method_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/nowhere", headers=auth()), 404, "not_found")
    response = await client.put(BASE, headers=auth(), json={})
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, POST"
    response = await client.post(f"{BASE}/{uuid4()}", headers=auth(), json={})
    assert response.headers["Allow"] == "DELETE, GET, PATCH"


# --- tenants -------------------------------------------------------------------------------


async def test_another_tenants_trunk_is_404_on_every_verb(client: httpx.AsyncClient) -> None:
    theirs = await create(client, OTHER_TENANT)
    url = f"{BASE}/{theirs['id']}"
    assert_problem(await client.get(url, headers=auth()), 404, "not_found")
    assert_problem(await client.patch(url, headers=auth(), json={"name": "x"}), 404, "not_found")
    assert_problem(await client.delete(url, headers=auth()), 404, "not_found")
    assert theirs["id"] not in [t["id"] for t in (await client.get(BASE, headers=auth())).json()]
    still = await client.get(url, headers=auth(OTHER_TENANT))
    assert still.json() == theirs


async def test_create_acts_for_the_callers_tenant_only(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    key = {"Idempotency-Key": "shared-key"}
    mine = await client.post(BASE, headers=auth(**key), json=TRUNK)
    theirs = await client.post(BASE, headers=auth(OTHER_TENANT, **key), json=TRUNK)
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]  # keys are per tenant
    assert [s.body["tenantId"] for s in backend.sent] == [TENANT, OTHER_TENANT]
    listed = (await client.get(BASE, headers=auth(OTHER_TENANT))).json()
    assert [t["id"] for t in listed] == [theirs.json()["id"]]


# --- idempotency, correlation --------------------------------------------------------------


async def test_same_key_and_body_return_the_first_outcome_applied_once(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    headers = auth(**{"Idempotency-Key": "create-1"})
    first = await client.post(BASE, headers=headers, json=TRUNK)
    second = await client.post(BASE, headers=headers, json=TRUNK)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert first.headers["Location"] == second.headers["Location"]
    assert len(backend.harness.db.trunks) == 1
    assert backend.harness.provider.ops() == ["create"]
    assert backend.sent[0].command_id == backend.sent[1].command_id


async def test_same_key_other_body_is_422(client: httpx.AsyncClient) -> None:
    headers = auth(**{"Idempotency-Key": "create-2"})
    assert (await client.post(BASE, headers=headers, json=TRUNK)).status_code == 201
    other = await client.post(BASE, headers=headers, json={**TRUNK, "name": "Other"})
    assert_problem(other, 422, "idempotency_key_reused")


async def test_patch_and_delete_retries_apply_once(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    trunk = await create(client)
    url = f"{BASE}/{trunk['id']}"
    patch = auth(**{"Idempotency-Key": "patch-1"})
    first = await client.patch(url, headers=patch, json={"name": "Renamed"})
    second = await client.patch(url, headers=patch, json={"name": "Renamed"})
    assert first.json() == second.json()
    assert first.headers["ETag"] == second.headers["ETag"] == '"2"'
    reused = await client.patch(url, headers=patch, json={"name": "Again"})
    assert_problem(reused, 422, "idempotency_key_reused")
    delete = auth(**{"Idempotency-Key": "delete-1"})
    assert (await client.delete(url, headers=delete)).status_code == 204
    assert (await client.delete(url, headers=delete)).status_code == 204
    assert backend.harness.provider.ops() == ["create", "update", "delete"]


async def test_request_id_is_the_correlation_id_and_is_echoed(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    response = await client.post(BASE, headers=auth(**{"X-Request-ID": "req-42"}), json=TRUNK)
    assert response.headers["X-Request-ID"] == "req-42"
    assert backend.sent[-1].correlation_id == "req-42"
    generated = await client.post(BASE, headers=auth(), json=TRUNK)
    assert generated.headers["X-Request-ID"] == backend.sent[-1].correlation_id


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", BASE, {}),  # 401
        ("GET", "/nowhere", {}),  # 404 from routing
        ("GET", f"{BASE}?limit=0", auth()),  # 422 from FastAPI
        ("POST", BASE, auth()),  # 415
        ("GET", "/healthz", {}),
    ],
)
async def test_request_id_is_echoed_on_every_response(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> None:
    response = await client.request(method, path, headers={**headers, "X-Request-ID": "abc"})
    assert response.headers["X-Request-ID"] == "abc"


@pytest.mark.parametrize("value", ["", " padded ", "x" * 201, "tab\there"])
async def test_unusable_request_id_is_replaced(client: httpx.AsyncClient, value: str) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": value})
    assert response.headers["X-Request-ID"] not in ("", value)


# --- probes, lifespan ----------------------------------------------------------------------


async def test_probes(client: httpx.AsyncClient, backend: MemoryBackend) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ok"}
    backend.is_ready = False
    assert_problem(await client.get("/readyz"), 503, "broker_unavailable")
    assert (await client.get("/healthz")).status_code == 200


async def test_readiness_that_raises_is_not_ready(backend: MemoryBackend) -> None:
    async def broken() -> bool:
        raise OSError("no route")

    backend.ready = broken  # type: ignore[method-assign]
    async with running_app(backend) as (client, _):
        assert_problem(await client.get("/readyz"), 503, "broker_unavailable")


async def test_lifespan_starts_and_stops_the_backend() -> None:
    backend = MemoryBackend()
    async with running_app(backend):
        assert backend.running
    assert not backend.running


async def test_scopes_are_per_verb(client: httpx.AsyncClient) -> None:
    trunk = await create(client)
    reader = {"Authorization": f"Bearer {token(scopes=(READ_SCOPE,))}"}
    writer = {"Authorization": f"Bearer {token(scopes=(WRITE_SCOPE,))}"}
    assert (await client.get(BASE, headers=reader)).status_code == 200
    assert_problem(await client.get(BASE, headers=writer), 403, "insufficient_scope")
    url = f"{BASE}/{trunk['id']}"
    assert_problem(await client.get(url, headers=writer), 403, "insufficient_scope")
    assert_problem(await client.post(BASE, headers=reader, json=TRUNK), 403, "insufficient_scope")
    assert_problem(await client.patch(url, headers=reader, json={}), 403, "insufficient_scope")
    assert_problem(await client.delete(url, headers=reader), 403, "insufficient_scope")
    response = await client.delete(url, headers=reader)
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="sip-trunks", error="insufficient_scope", scope="sip-trunks:write"'
    )
