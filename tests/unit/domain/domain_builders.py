"""Shared builders for the domain tests, imported as `tests.unit.domain.domain_builders`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from hypothesis import strategies as st

from service.domain import SipTrunk, create_trunk, upsert_system_trunk

NOW = datetime(2024, 1, 15, 9, 30, 0, 123456, tzinfo=UTC)
LATER = datetime(2024, 1, 16, 10, 0, 0, tzinfo=UTC)
TENANT = "tenant-a"
PASSWORD = "s3cret-pass"


def body(**overrides: Any) -> dict[str, Any]:
    """A valid create body; keyword arguments replace (or, with `None`, drop) fields."""
    result: dict[str, Any] = {
        "name": "Main Office SIP Trunk",
        "gateways": [
            {"ipOrDomain": "sip-gateway.example.com", "port": 5060, "name": "Primary Gateway"}
        ],
        "authentication": {"username": "office_sip_user", "password": PASSWORD},
        "advanced": {},
    }
    result.update(overrides)
    return {k: v for k, v in result.items() if v is not None}


def trunk(tenant_id: str | None = TENANT, trunk_id: UUID | None = None, **fields: Any) -> SipTrunk:
    return create_trunk(
        None, trunk_id=trunk_id or uuid4(), tenant_id=tenant_id, fields=body(**fields), now=NOW
    ).trunk


def system_trunk(**fields: Any) -> SipTrunk:
    return upsert_system_trunk(None, trunk_id=uuid4(), fields=body(**fields), now=NOW).trunk


# Anything json.loads can return (NaN aside: it is not JSON).
json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
json_values: st.SearchStrategy[object] = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
