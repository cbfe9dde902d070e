"""The one trunk <-> document mapping: the contract's shape, masked unless asked, and a fixed
point of validation (what the domain writes out, it reads back as the same trunk)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from hypothesis import given
from sip_trunk_contracts import TrunkView

from service.domain import MASKED_PASSWORD, create_trunk, validate_trunk_body
from service.domain.document import gateways_from_document, gateways_to_document, to_document
from service.domain.validation import WRITABLE_FIELDS
from tests.unit.domain.domain_builders import NOW, PASSWORD, TENANT, trunk
from tests.unit.domain.test_domain_properties import FAST, valid_bodies


def test_the_document_has_the_contracts_fields_in_order() -> None:
    assert list(to_document(trunk())) == list(TrunkView.model_fields)


def test_the_password_is_masked_unless_revealed() -> None:
    t = trunk(advanced={"transport": "tls"})
    assert to_document(t)["authentication"] == {
        "username": "office_sip_user",
        "password": MASKED_PASSWORD,
    }
    assert to_document(t, reveal_password=True)["authentication"]["password"] == PASSWORD
    assert to_document(trunk(authentication=None))["authentication"] is None
    assert PASSWORD not in repr(to_document(t))


def test_a_document_shares_nothing_with_the_trunk() -> None:
    t = trunk(advanced={"numbers": ["+15550100"]})
    document = to_document(t)
    document["advanced"]["transport"] = "udp"
    document["gateways"][0]["port"] = 1
    assert t.advanced == {"numbers": ["+15550100"]}
    assert t.gateways[0].port == 5060


def test_the_view_is_the_document() -> None:
    t = trunk()
    document = to_document(t)
    view = TrunkView.model_validate(document).model_dump()
    assert view["gateways"] == document["gateways"]
    assert view["authentication"] == document["authentication"]
    assert {k: view[k] for k in ("id", "isSystem", "providerId", "createdAt", "updatedAt")} == {
        "id": t.id,
        "isSystem": False,
        "providerId": None,
        "createdAt": NOW,
        "updatedAt": NOW,
    }


@FAST
@given(body=valid_bodies)
def test_the_writable_document_validates_to_the_same_trunk(body: dict[str, Any]) -> None:
    t = create_trunk(None, trunk_id=UUID(int=1), tenant_id=TENANT, fields=body, now=NOW).trunk
    document = to_document(t, reveal_password=True)
    fields = validate_trunk_body({key: document[key] for key in WRITABLE_FIELDS})
    assert (fields.name, fields.gateways, fields.authentication) == (
        t.name,
        t.gateways,
        t.authentication,
    )
    assert fields.advanced == t.advanced
    assert gateways_from_document(gateways_to_document(t.gateways)) == t.gateways
