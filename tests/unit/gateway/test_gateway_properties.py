"""Whatever arrives, the gateway answers: never a 500, every error a problem document.

Cases come from the app's own OpenAPI document (schemathesis, valid and invalid) and from raw
bytes and headers (hypothesis), sent to every operation through the ASGI transport.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode
from sip_trunk_contracts import MASKED_PASSWORD

from service.entrypoints.gateway.app import openapi_document
from service.entrypoints.gateway.tokens import READ_SCOPE
from tests.unit.gateway.gateway_fakes import BASE, auth, running_app, token

SEED = {
    "name": "Seed",
    "gateways": [{"ipOrDomain": "sip.example.com", "name": "g"}],
    "authentication": {"username": "user", "password": "Seed-Pa55word"},
}
AUTHORIZATIONS = st.sampled_from(
    [
        f"Bearer {token()}",
        f"Bearer {token(scopes=(READ_SCOPE,))}",
        f"Bearer {token('tenant-b')}",
        "Bearer garbage",
        None,
    ]
)
FAST = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

Send = Callable[..., httpx.Response]


@pytest.fixture(scope="module")
def send() -> Iterator[Send]:
    """Sends a request to one app (with a seeded trunk) on one event loop, from sync code."""
    with asyncio.Runner() as runner:
        context = running_app()
        client, _ = runner.run(context.__aenter__())
        runner.run(client.post(BASE, headers=auth(), json=SEED))
        try:
            yield lambda *args, **kwargs: runner.run(client.request(*args, **kwargs))
        finally:
            runner.run(context.__aexit__(None, None, None))


@pytest.fixture(scope="module")
def seeded(send: Send) -> str:
    trunk_id: str = send("GET", BASE, headers=auth()).json()[0]["id"]
    return trunk_id


def assert_answered(response: httpx.Response) -> None:
    assert response.status_code != 500, response.text
    assert response.status_code < 500 or response.status_code in (503, 504)
    assert "X-Request-ID" in response.headers
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == response.status_code
        assert {"type", "title", "detail", "code", "errors"} <= set(problem)
    for password in _passwords(response.json() if response.content else None):
        assert password == MASKED_PASSWORD


def _passwords(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "password":
                yield item
            else:
                yield from _passwords(item)
    elif isinstance(value, list):
        for item in value:
            yield from _passwords(item)


def _schema_cases(seeded: str) -> st.SearchStrategy[Any]:
    schema = schemathesis.openapi.from_dict(openapi_document())
    on_seed = [
        schema["/api/v1/sip-trunks/{id}"][method].as_strategy(mode, path_parameters={"id": seeded})
        for method in ("GET", "PATCH")
        for mode in GenerationMode
    ]
    return st.one_of(*(schema.as_strategy(mode) for mode in GenerationMode), *on_seed)


def test_schema_generated_requests_are_answered(send: Send, seeded: str) -> None:
    @FAST
    @given(case=_schema_cases(seeded), authorization=AUTHORIZATIONS)
    def check(case: Any, authorization: str | None) -> None:
        kwargs = case.as_transport_kwargs(base_url="http://gw")
        kwargs.pop("cookies", None)
        headers = {k: v for k, v in kwargs.pop("headers").items() if k != "Authorization"}
        if authorization is not None:
            headers["Authorization"] = authorization
        if "json" in kwargs:
            kwargs["content"] = json.dumps(kwargs.pop("json")).encode()
            headers.setdefault("Content-Type", "application/json")
        if "data" in kwargs:
            kwargs["content"] = kwargs.pop("data")
        try:
            encoded = {k: str(v).encode("latin-1") for k, v in headers.items()}
        except UnicodeEncodeError:
            return  # not sendable as an HTTP header
        assert_answered(send(kwargs.pop("method"), kwargs.pop("url"), headers=encoded, **kwargs))

    check()


HEADER_VALUE = st.one_of(
    st.sampled_from(
        ["application/json", "application/json; charset=utf-8", "*", '"1"', 'W/"1"', "", "text"]
    ),
    st.binary(max_size=300).filter(lambda b: not {0, 10, 13} & set(b)),
)
HEADERS = st.dictionaries(
    st.sampled_from(["Content-Type", "If-Match", "Idempotency-Key", "X-Request-ID"]),
    HEADER_VALUE,
)
BODIES = st.one_of(
    st.binary(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=12,
    ).map(lambda v: json.dumps(v).encode()),
)


def test_arbitrary_bodies_and_headers_are_answered(send: Send, seeded: str) -> None:
    paths = st.sampled_from([BASE, f"{BASE}/{seeded}", f"{BASE}/not-a-uuid", "/readyz"])
    methods = st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT"])

    @FAST
    @given(
        method=methods,
        path=paths,
        headers=HEADERS,
        body=BODIES,
        authorization=AUTHORIZATIONS,
    )
    def check(
        method: str,
        path: str,
        headers: dict[str, str | bytes],
        body: bytes,
        authorization: str | None,
    ) -> None:
        if authorization is not None:
            headers["Authorization"] = authorization
        assert_answered(send(method, path, headers=headers, content=body))

    check()
