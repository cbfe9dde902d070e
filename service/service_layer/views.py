"""The domain trunk as every client sees it (CONTRACT.md §1): the password always masked."""

from __future__ import annotations

from sip_trunk_contracts import MASKED_PASSWORD, AuthenticationView, GatewayView, TrunkView

from service.domain.model import SipTrunk

__all__ = ["to_view"]


def to_view(trunk: SipTrunk) -> TrunkView:
    auth = trunk.authentication
    return TrunkView(
        id=trunk.id,
        name=trunk.name,
        gateways=[
            GatewayView(ipOrDomain=g.ip_or_domain, port=g.port, name=g.name) for g in trunk.gateways
        ],
        authentication=(
            AuthenticationView(username=auth.username, password=MASKED_PASSWORD) if auth else None
        ),
        advanced=dict(trunk.advanced),
        isSystem=trunk.is_system,
        providerId=trunk.provider_id,
        createdAt=trunk.created_at,
        updatedAt=trunk.updated_at,
    )
