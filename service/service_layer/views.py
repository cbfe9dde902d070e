"""The domain trunk as every client sees it (CONTRACT.md §1): the password always masked."""

from __future__ import annotations

from typing import Any

from sip_trunk_contracts import TrunkView, format_utc

from service.domain.document import to_document
from service.domain.model import SipTrunk

__all__ = ["to_view", "view_json"]


def to_view(trunk: SipTrunk) -> TrunkView:
    return TrunkView.model_validate(to_document(trunk))


def view_json(trunk: SipTrunk) -> dict[str, Any]:
    """`to_view(trunk)` as JSON values, ready to encode, without building the model: the
    domain only makes valid trunks, so validating each one again on the hot path would only
    cost time (test_outgoing holds the encodings byte for byte equal to the contract's)."""
    document = to_document(trunk)
    created = format_utc(trunk.created_at)
    document["createdAt"] = created
    same = trunk.updated_at == trunk.created_at  # a new trunk's: formatted once
    document["updatedAt"] = created if same else format_utc(trunk.updated_at)
    return document
