"""The trunk as a JSON document in the contract's camelCase (CONTRACT.md §1): the one mapping.

Every JSON shape of a trunk is made here, and nowhere else:
- the document a merge patch applies to (`rules`, with the plaintext password),
- the JSON columns of a stored row (`gateways` both ways; `advanced` is already a document),
- the public view (`service_layer.views`, the password masked).
Values are Python objects (`UUID`, aware `datetime`); the encoders write them as the contract says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sip_trunk_contracts import MASKED_PASSWORD

from service.domain.model import Credentials, Gateway, SipTrunk

__all__ = ["gateways_from_document", "gateways_to_document", "to_document"]


def to_document(trunk: SipTrunk, *, reveal_password: bool = False) -> dict[str, Any]:
    """The whole trunk, keys in the contract's order; the password masked unless revealed
    (only the domain's own merge patch needs it)."""
    return {
        "id": trunk.id,
        "name": trunk.name,
        "gateways": gateways_to_document(trunk.gateways),
        "authentication": _credentials(trunk.authentication, reveal_password),
        "advanced": dict(trunk.advanced),
        "isSystem": trunk.is_system,
        "providerId": trunk.provider_id,
        "createdAt": trunk.created_at,
        "updatedAt": trunk.updated_at,
    }


def gateways_to_document(gateways: Iterable[Gateway]) -> list[dict[str, Any]]:
    return [{"ipOrDomain": g.ip_or_domain, "port": g.port, "name": g.name} for g in gateways]


def gateways_from_document(items: Iterable[Mapping[str, Any]]) -> tuple[Gateway, ...]:
    """Gateways stored by this service (already valid): no checks, see `validation` for input."""
    return tuple(Gateway(g["ipOrDomain"], g["port"], g["name"]) for g in items)


def _credentials(auth: Credentials | None, reveal_password: bool) -> dict[str, str] | None:
    if auth is None:
        return None
    return {
        "username": auth.username,
        "password": auth.password if reveal_password else MASKED_PASSWORD,
    }
