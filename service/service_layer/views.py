"""The domain trunk as every client sees it (CONTRACT.md §1): the password always masked."""

from __future__ import annotations

from sip_trunk_contracts import TrunkView

from service.domain.document import to_document
from service.domain.model import SipTrunk

__all__ = ["to_view"]


def to_view(trunk: SipTrunk) -> TrunkView:
    return TrunkView.model_validate(to_document(trunk))
