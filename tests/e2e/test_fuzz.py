"""Arbitrary bodies and headers against the live stack: never a 500, never a hang, every error
a problem document. (The same property runs fast and wide on the in-memory backend in
tests/unit/gateway; here it crosses Kafka, the worker and the database.)"""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.stack import Stack
from tests.e2e.test_rest_api import BASE

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "name": JSON,
        "gateways": st.lists(
            st.fixed_dictionaries({}, optional={"ipOrDomain": JSON, "port": JSON, "name": JSON}),
            max_size=3,
        ),
        "authentication": JSON,
        "advanced": JSON,
    },
) | st.dictionaries(st.text(max_size=10), JSON, max_size=3)
# What an HTTP client can send: printable ASCII, no surrounding blanks (h11 refuses those).
ASCII = st.characters(min_codepoint=32, max_codepoint=126)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "If-Match": st.sampled_from(['"1"', '"0"', "*", 'W/"1"', "x", '"99999999999999999999"']),
        "Idempotency-Key": st.text(ASCII, max_size=300).map(str.strip),
        "X-Request-ID": st.text(ASCII, max_size=50).map(str.strip),
        "Content-Type": st.sampled_from(
            ["application/json", "text/plain", "application/json; charset=latin-1", ""]
        ),
    },
)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def answered(response: httpx.Response) -> None:
    assert response.status_code < 500 or response.status_code in (503, 504), response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == response.status_code


def test_arbitrary_writes_get_an_answer(stack: Stack) -> None:
    with httpx.Client(base_url=stack.base_url, timeout=30) as http:
        auth = {"Authorization": f"Bearer {stack.token('fuzzer')}"}
        seed = http.post(
            BASE,
            headers=auth,
            json={"name": "S", "gateways": [{"ipOrDomain": "sip.example.com", "name": "g"}]},
        )
        trunk_url = f"{BASE}/{seed.json()['id']}"

        @FUZZ
        @given(
            method=st.sampled_from(["POST", "PATCH", "DELETE", "GET"]),
            body=FIELDS,
            headers=HEADERS,
            own_trunk=st.booleans(),
        )
        def check(method: str, body: Any, headers: dict[str, str], own_trunk: bool) -> None:
            url = BASE if method == "POST" or not own_trunk else trunk_url
            if method in ("PATCH", "DELETE") and url == BASE:
                url = f"{BASE}/00000000-0000-4000-8000-000000000000"
            sent_headers = {"Content-Type": "application/json", **auth, **headers}
            answered(http.request(method, url, json=body, headers=sent_headers))

        check()
