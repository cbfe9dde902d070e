"""The SIP Trunks API, end to end: HTTP → gateway → Kafka → worker → database → relay → Kafka →
gateway → HTTP, every process real. One test per behaviour of CONTRACT.md §2."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sip_trunk_contracts import Topics

from service.entrypoints.gateway.tokens import READ_SCOPE
from tests.e2e.conftest import SYSTEM_TRUNK_ID
from tests.e2e.stack import Stack, free_port, start_process, stop_process, wait_ready
from tests.integration.kafka_stack import every_message

BASE = "/api/v1/sip-trunks"
PASSWORD = "E2e-Secret-pass"


def trunk_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Main Office SIP Trunk",
        "gateways": [{"ipOrDomain": "sip-gateway.example.com", "port": 5060, "name": "Primary"}],
        "authentication": {"username": "office_sip_user", "password": PASSWORD},
        **overrides,
    }


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    doc = response.json()
    assert doc["status"] == status
    assert doc["code"] == code
    assert {"type", "title", "detail"} <= doc.keys()
    return doc


async def create(api: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await api.post(BASE, json=trunk_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_get_patch_list_delete(stack: Stack) -> None:
    async with stack.client() as api:
        created = await api.post(BASE, json=trunk_body())
        assert created.status_code == 201
        trunk = created.json()
        assert list(trunk) == [
            "id",
            "name",
            "gateways",
            "authentication",
            "advanced",
            "isSystem",
            "providerId",
            "createdAt",
            "updatedAt",
        ]
        assert trunk["authentication"] == {"username": "office_sip_user", "password": "********"}
        assert trunk["createdAt"].endswith("Z")
        assert created.headers["etag"] == '"1"'
        assert created.headers["location"] == f"{BASE}/{trunk['id']}"

        got = await api.get(f"{BASE}/{trunk['id']}")
        assert got.status_code == 200
        assert got.json() == trunk
        assert got.headers["etag"] == '"1"'

        patched = await api.patch(
            f"{BASE}/{trunk['id']}",
            json={"name": "Renamed", "authentication": {"password": "********"}},
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["name"] == "Renamed"
        assert patched.json()["gateways"] == trunk["gateways"]  # only provided fields change
        assert patched.headers["etag"] == '"2"'
        # read-your-writes: the next GET on this gateway shows the change
        assert (await api.get(f"{BASE}/{trunk['id']}")).json()["name"] == "Renamed"

        listed = await api.get(BASE, params={"limit": 1000})
        assert trunk["id"] in [t["id"] for t in listed.json()]

        deleted = await api.delete(f"{BASE}/{trunk['id']}")
        assert deleted.status_code == 204
        problem(await api.get(f"{BASE}/{trunk['id']}"), 404, "not_found")


async def test_the_reference_patch_returns_the_trunk_unchanged(stack: Stack) -> None:
    async with stack.client() as api:
        trunk = await create(api)
        response = await api.patch(
            f"{BASE}/{trunk['id']}", content=b"{}", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200
        assert response.json() == trunk
        assert response.headers["etag"] == '"1"'


async def test_masked_password_keeps_the_stored_one(stack: Stack) -> None:
    async with stack.client() as api:
        trunk = await create(api)
        response = await api.patch(
            f"{BASE}/{trunk['id']}", json={"authentication": {"password": "********"}}
        )
        assert response.status_code == 200
        assert response.headers["etag"] == '"1"'  # nothing changed: the password was kept


async def test_auth_errors(stack: Stack) -> None:
    async with stack.client(tenant=None) as anonymous:
        doc = problem(await anonymous.get(BASE), 401, "unauthorized")
        assert doc
        response = await anonymous.get(BASE)
        assert response.headers["www-authenticate"].startswith("Bearer")
        for token in ["garbage", stack.token(ttl_s=-10), stack.token() + "x"]:
            bad = await anonymous.get(BASE, headers={"Authorization": f"Bearer {token}"})
            problem(bad, 401, "unauthorized")
            assert bad.headers["www-authenticate"].startswith("Bearer")
        reader = {"Authorization": f"Bearer {stack.token(scopes=[READ_SCOPE])}"}
        assert (await anonymous.get(BASE, headers=reader)).status_code == 200
        problem(
            await anonymous.post(BASE, json=trunk_body(), headers=reader), 403, "insufficient_scope"
        )


async def test_bodies_not_strict_json_or_too_deep_are_400_and_never_reach_kafka(
    stack: Stack,
) -> None:
    """CONTRACT §4.1: NaN, Infinity, a lone surrogate or nesting deeper than 32 levels in a
    POST or PATCH body is `400 malformed_request`, and no command of it is put on Kafka."""
    refused, accepted = f"refused-{uuid.uuid4().hex[:12]}", f"accepted-{uuid.uuid4().hex[:12]}"

    def body(name: str = f'"{refused}"', port: str = "5060", advanced: str = "{}") -> bytes:
        """A valid trunk's JSON text but for the one value given as it is."""
        gateway = f'{{"ipOrDomain": "sip.example.com", "name": "gw", "port": {port}}}'
        return f'{{"name": {name}, "gateways": [{gateway}], "advanced": {advanced}}}'.encode()

    bodies = {
        "NaN": body(port="NaN"),
        "Infinity": body(port="Infinity"),
        "lone surrogate": body(name=f'"{refused}\\ud800"'),
        "33 deep": body(advanced=f'{{"headers": {"[" * 33 + "]" * 33}}}'),
    }
    json_header = {"Content-Type": "application/json"}
    async with stack.client() as api:
        url = f"{BASE}/{(await create(api))['id']}"
        for name, content in bodies.items():
            for response in (
                await api.post(BASE, content=content, headers=json_header),
                await api.patch(url, content=content, headers=json_header),
            ):
                assert response.status_code == 400, (name, response.request.method, response.text)
                problem(response, 400, "malformed_request")
        await create(api, name=accepted)  # after the refused ones, through the same gateway
    topics = Topics.with_prefix(stack.env["KAFKA_TOPIC_PREFIX"])
    commands = [m.raw for m in await every_message(topics) if m.topic == topics.commands]
    assert any(accepted.encode() in value for value in commands)  # the search sees commands
    assert [value for value in commands if refused.encode() in value] == []


async def test_request_errors(stack: Stack) -> None:
    async with stack.client() as api:
        trunk = await create(api)
        url = f"{BASE}/{trunk['id']}"
        json_header = {"Content-Type": "application/json"}
        problem(
            await api.post(BASE, content=b"{not json", headers=json_header),
            400,
            "malformed_request",
        )
        problem(
            await api.post(BASE, content=b"name=x", headers={"Content-Type": "text/plain"}),
            415,
            "unsupported_media_type",
        )
        big = json.dumps(trunk_body(name="x" * (65 * 1024))).encode()
        problem(await api.post(BASE, content=big, headers=json_header), 413, "payload_too_large")
        problem(await api.get(f"{BASE}/not-a-uuid"), 422, "validation_failed")
        problem(await api.patch(url, json={"gateways": []}), 422, "validation_failed")
        bad = problem(
            await api.post(
                BASE, json=trunk_body(gateways=[{"ipOrDomain": "sip:x", "port": "1", "name": "g"}])
            ),
            422,
            "validation_failed",
        )
        assert {"/gateways/0/ipOrDomain", "/gateways/0/port"} <= {
            e["pointer"] for e in bad["errors"]
        }
        problem(
            await api.post(BASE, json=trunk_body(id=str(uuid.uuid4()))), 422, "validation_failed"
        )


async def test_system_trunk_is_listed_and_immutable(stack: Stack) -> None:
    async with stack.client(tenant="any-tenant") as api:
        listed = await api.get(BASE)
        assert SYSTEM_TRUNK_ID in [t["id"] for t in listed.json()]
        url = f"{BASE}/{SYSTEM_TRUNK_ID}"
        assert (await api.get(url)).json()["isSystem"] is True
        problem(await api.patch(url, json={"name": "mine"}), 403, "system_trunk_immutable")
        problem(await api.delete(url), 403, "system_trunk_immutable")


async def test_tenant_isolation_on_all_five_verbs(stack: Stack) -> None:
    async with stack.client(tenant="owner") as owner, stack.client(tenant="intruder") as other:
        trunk = await create(owner)
        url = f"{BASE}/{trunk['id']}"
        problem(await other.get(url), 404, "not_found")
        problem(await other.patch(url, json={"name": "x"}), 404, "not_found")
        problem(await other.delete(url), 404, "not_found")
        assert trunk["id"] not in [
            t["id"] for t in (await other.get(BASE, params={"limit": 1000})).json()
        ]
        own = await create(other)  # POST is always the caller's own
        assert own["id"] not in [
            t["id"] for t in (await owner.get(BASE, params={"limit": 1000})).json()
        ]
        assert (await owner.get(url)).status_code == 200


async def test_unknown_id_is_404(stack: Stack) -> None:
    async with stack.client() as api:
        url = f"{BASE}/{uuid.uuid4()}"
        problem(await api.get(url), 404, "not_found")
        problem(await api.patch(url, json={"name": "x"}), 404, "not_found")
        problem(await api.delete(url), 404, "not_found")


async def test_pagination_follows_link_headers(stack: Stack) -> None:
    async with stack.client(tenant=f"pager-{uuid.uuid4().hex[:6]}") as api:
        created = [await create(api, name=f"T{i}") for i in range(5)]
        seen: list[str] = []
        url: str | None = f"{BASE}?limit=2"
        pages = 0
        while url:
            response = await api.get(url)
            assert response.status_code == 200
            seen += [t["id"] for t in response.json() if not t["isSystem"]]
            pages += 1
            url = response.links.get("next", {}).get("url")
        assert seen == [t["id"] for t in created]  # oldest first, each once
        assert pages >= 3


async def test_trunks_created_within_a_second_are_listed_in_creation_order(stack: Stack) -> None:
    """CONTRACT.md §4.1: exact creation order, with fractional seconds (not id order)."""
    async with stack.client(tenant=f"order-{uuid.uuid4().hex[:6]}") as api:
        created = [await create(api, name=f"T{i}") for i in range(5)]
        stamps = [datetime.fromisoformat(t["createdAt"]) for t in created]
        assert stamps == sorted(set(stamps))  # strictly increasing, also within one second
        assert all(re.fullmatch(r"\S+T\S+\.\d{6}Z", t["createdAt"]) for t in created)
        listed = (await api.get(BASE, params={"limit": 1000})).json()
        assert [t["id"] for t in listed if not t["isSystem"]] == [t["id"] for t in created]


async def test_if_match(stack: Stack) -> None:
    async with stack.client() as api:
        trunk = await create(api)
        url = f"{BASE}/{trunk['id']}"
        ok = await api.patch(url, json={"name": "v2"}, headers={"If-Match": '"1"'})
        assert ok.status_code == 200
        problem(
            await api.patch(url, json={"name": "v3"}, headers={"If-Match": '"1"'}),
            412,
            "version_conflict",
        )
        problem(await api.delete(url, headers={"If-Match": '"1"'}), 412, "version_conflict")
        assert (await api.delete(url, headers={"If-Match": '"2"'})).status_code == 204


async def test_idempotency_key(stack: Stack) -> None:
    async with stack.client() as api:
        key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
        first = await api.post(BASE, json=trunk_body(), headers=key)
        again = await api.post(BASE, json=trunk_body(), headers=key)
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()  # the first outcome, applied once
        problem(
            await api.post(BASE, json=trunk_body(name="Other"), headers=key),
            422,
            "idempotency_key_reused",
        )
        url = f"{BASE}/{first.json()['id']}"
        patch_key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
        one = await api.patch(url, json={"name": "Once"}, headers=patch_key)
        two = await api.patch(url, json={"name": "Once"}, headers=patch_key)
        assert one.headers["etag"] == two.headers["etag"] == '"2"'
        assert (await api.get(url)).headers["etag"] == '"2"'  # applied once


async def test_request_id_is_echoed(stack: Stack) -> None:
    async with stack.client() as api:
        response = await api.get(BASE, headers={"X-Request-ID": "trace-123"})
        assert response.headers["x-request-id"] == "trace-123"
        generated = await api.get(BASE)
        assert generated.headers["x-request-id"]


async def test_concurrent_writes_keep_versions(stack: Stack) -> None:
    async with stack.client() as api:
        trunk = await create(api)
        url = f"{BASE}/{trunk['id']}"
        results = await asyncio.gather(*(api.patch(url, json={"name": f"n{i}"}) for i in range(10)))
        assert all(r.status_code == 200 for r in results)
        assert sorted(r.headers["etag"] for r in results) == sorted(f'"{v}"' for v in range(2, 12))


async def test_no_password_in_any_response(stack: Stack) -> None:
    async with stack.client() as api:
        trunk = await create(api)
        for response in [
            await api.get(BASE, params={"limit": 1000}),
            await api.get(f"{BASE}/{trunk['id']}"),
            await api.patch(
                f"{BASE}/{trunk['id']}", json={"authentication": {"password": PASSWORD + "2"}}
            ),
        ]:
            assert PASSWORD not in response.text


async def test_a_second_gateway_instance_works_side_by_side(stack: Stack, tmp_path: Path) -> None:
    """Another gateway process on the same topics: it reads the first one's writes, its own
    writes answer correctly, and an Idempotency-Key retried there gets the first outcome."""
    port = free_port()
    env = {**stack.env, "GATEWAY_PORT": str(port)}
    second = await start_process("gateway", env, tmp_path / "gateway-2.log")
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_ready(base, tmp_path / "gateway-2.log")
        async with stack.client() as one, stack.client(base_url=base) as two:
            key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
            first = await one.post(BASE, json=trunk_body(), headers=key)
            assert first.status_code == 201
            url = f"{BASE}/{first.json()['id']}"
            for _ in range(50):  # the second instance reads the same event on its own time
                if (await two.get(url)).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert (await two.get(url)).status_code == 200  # from the state topic / events
            retried = await two.post(BASE, json=trunk_body(), headers=key)
            assert retried.status_code == 201
            assert retried.json() == first.json()
            patched = await two.patch(url, json={"name": "From two"})
            assert patched.headers["etag"] == '"2"'
            for _ in range(50):  # the first instance sees it as soon as the event arrives
                if (await one.get(url)).json()["name"] == "From two":
                    break
                await asyncio.sleep(0.1)
            assert (await one.get(url)).json()["name"] == "From two"
    finally:
        await stop_process(second)
