"""Example tests for the aggregate's rules and every rejection reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest

from service.domain import (
    MASKED_PASSWORD,
    Credentials,
    Gateway,
    Reason,
    Rejected,
    SipTrunk,
    TrunkChange,
    create_trunk,
    delete_trunk,
    update_trunk,
    upsert_system_trunk,
    visible_to,
    with_provider_id,
)
from tests.unit.domain.domain_builders import (
    LATER,
    NOW,
    PASSWORD,
    TENANT,
    body,
    system_trunk,
    trunk,
)


def update(existing: SipTrunk | None, changes: object, **kwargs: Any) -> TrunkChange:
    options: dict[str, Any] = {"tenant_id": TENANT, "expected_version": None, "now": LATER}
    return update_trunk(existing, changes=changes, **{**options, **kwargs})


def rejection(call: Any, *args: Any, **kwargs: Any) -> Rejected:
    with pytest.raises(Rejected) as caught:
        call(*args, **kwargs)
    return caught.value


def pointers(error: Rejected) -> set[str]:
    assert error.reason is Reason.VALIDATION_FAILED
    return {e.pointer for e in error.errors}


def test_reason_codes_are_the_contract_ones() -> None:
    assert [r.value for r in Reason] == [
        "validation_failed",
        "not_found",
        "system_trunk_immutable",
        "version_conflict",
        "already_exists",
        "idempotency_key_reused",
        "provider_rejected",
        "provider_unavailable",
    ]


# --- create --------------------------------------------------------------------------------


def test_create() -> None:
    trunk_id = uuid4()
    change = create_trunk(None, trunk_id=trunk_id, tenant_id=TENANT, fields=body(), now=NOW)
    created = change.trunk
    assert (created.id, created.tenant_id, created.version) == (trunk_id, TENANT, 1)
    assert created.created_at == created.updated_at == NOW
    assert not created.is_system
    assert created.provider_id is None
    assert created.gateways == (Gateway("sip-gateway.example.com", 5060, "Primary Gateway"),)
    assert created.authentication == Credentials("office_sip_user", PASSWORD)
    assert change.changed_fields == ("authentication", "gateways", "name")


def test_create_lists_advanced_when_set_and_omits_absent_credentials() -> None:
    fields = body(authentication=None, advanced={"transport": "tcp"})
    change = create_trunk(None, trunk_id=uuid4(), tenant_id=TENANT, fields=fields, now=NOW)
    assert change.changed_fields == ("advanced", "gateways", "name")
    assert change.trunk.authentication is None


def test_create_stores_utc_with_microseconds() -> None:
    """Trunks created within one second keep their order (CONTRACT.md §4.1)."""
    local = datetime(2024, 1, 15, 11, 30, 0, 999999, tzinfo=timezone(timedelta(hours=2)))
    created = create_trunk(None, trunk_id=uuid4(), tenant_id=TENANT, fields=body(), now=local)
    assert created.trunk.created_at == datetime(2024, 1, 15, 9, 30, 0, 999999, tzinfo=UTC)
    assert created.trunk.created_at.tzinfo is UTC


def test_create_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        create_trunk(
            None, trunk_id=uuid4(), tenant_id=TENANT, fields=body(), now=datetime(2024, 1, 1)
        )


def test_create_with_an_id_in_use_is_already_exists() -> None:
    existing = trunk()
    error = rejection(
        create_trunk, existing, trunk_id=existing.id, tenant_id=TENANT, fields=body(), now=NOW
    )
    assert error.reason is Reason.ALREADY_EXISTS


def test_create_requires_name_and_gateways_and_refuses_unknown_fields() -> None:
    fields = {"authentication": None, "expectedVersion": 3}
    error = rejection(
        create_trunk, None, trunk_id=uuid4(), tenant_id=TENANT, fields=fields, now=NOW
    )
    assert pointers(error) == {"/name", "/gateways", "/expectedVersion"}


# --- visibility, not_found, system_trunk_immutable, version_conflict -----------------------


def test_visibility() -> None:
    assert visible_to(trunk(), TENANT)
    assert not visible_to(trunk(), "tenant-b")
    assert visible_to(system_trunk(), "tenant-b")
    assert visible_to(system_trunk(), None)


def guard(
    operation: str, existing: SipTrunk | None, tenant: str = TENANT, version: int = 1
) -> Reason:
    options: dict[str, Any] = {"tenant_id": tenant, "expected_version": version}
    if operation == "update":
        return rejection(update, existing, {"name": "x"}, **options).reason
    return rejection(delete_trunk, existing, **options).reason


@pytest.mark.parametrize("operation", ["update", "delete"])
def test_guards_in_order(operation: str) -> None:
    assert guard(operation, None) is Reason.NOT_FOUND
    # Another tenant's trunk is not found, even when also stale: its existence is not revealed.
    assert guard(operation, trunk(), tenant="tenant-b", version=9) is Reason.NOT_FOUND
    assert guard(operation, system_trunk(), version=9) is Reason.SYSTEM_TRUNK_IMMUTABLE
    assert guard(operation, trunk(), version=2) is Reason.VERSION_CONFLICT


def test_version_conflict_names_both_versions() -> None:
    error = rejection(update, trunk(), {"name": "x"}, expected_version=3)
    assert error.reason is Reason.VERSION_CONFLICT
    assert "3" in error.detail
    assert "1" in error.detail


def test_guards_come_before_validation() -> None:
    assert rejection(update, system_trunk(), {"name": None}).reason is Reason.SYSTEM_TRUNK_IMMUTABLE


# --- update --------------------------------------------------------------------------------


def test_update_name() -> None:
    before = trunk()
    change = update(before, {"name": " Renamed "}, expected_version=1)
    assert change.changed_fields == ("name",)
    assert change.trunk == replace(before, name="Renamed", version=2, updated_at=LATER)


def test_an_update_that_changes_nothing_keeps_version_and_time() -> None:
    before = trunk(advanced={"transport": "udp"})
    changes = {
        "name": " Main Office SIP Trunk",
        "gateways": [{"ipOrDomain": "SIP-GATEWAY.example.com.", "name": "Primary Gateway"}],
        "authentication": {"password": MASKED_PASSWORD},
        "advanced": {"transport": "udp"},
    }
    change = update(before, changes)
    assert change == TrunkChange(before, ())
    assert not change.changed


def test_gateways_are_replaced_whole() -> None:
    gateways = [{"ipOrDomain": "10.0.0.2", "port": 5080, "name": "B"}]
    change = update(trunk(), {"gateways": gateways})
    assert change.trunk.gateways == (Gateway("10.0.0.2", 5080, "B"),)
    assert change.changed_fields == ("gateways",)


def test_authentication_is_merged_key_by_key() -> None:
    change = update(trunk(), {"authentication": {"username": "other"}})
    assert change.trunk.authentication == Credentials("other", PASSWORD)
    assert change.changed_fields == ("authentication.username",)


def test_a_new_password() -> None:
    change = update(trunk(), {"authentication": {"password": "n3w-password"}})
    assert change.trunk.authentication == Credentials("office_sip_user", "n3w-password")
    assert change.changed_fields == ("authentication.password",)


def test_the_masked_password_keeps_the_stored_one() -> None:
    changes = {"authentication": {"username": "other", "password": MASKED_PASSWORD}}
    change = update(trunk(), changes)
    assert change.trunk.authentication == Credentials("other", PASSWORD)
    assert change.changed_fields == ("authentication.username",)


def test_the_masked_password_without_a_stored_one_is_an_error() -> None:
    changes = {"authentication": {"username": "u", "password": MASKED_PASSWORD}}
    error = rejection(update, trunk(authentication=None), changes)
    assert pointers(error) == {"/authentication/password"}
    assert "no password to keep" in error.errors[0].message


def test_another_all_star_password_is_refused_on_update() -> None:
    error = rejection(update, trunk(), {"authentication": {"password": "*" * 9}})
    assert pointers(error) == {"/authentication/password"}


def test_credentials_are_added_and_removed_as_a_whole() -> None:
    credentials = {"username": "u", "password": "p" * 8}
    added = update(trunk(authentication=None), {"authentication": credentials})
    assert added.trunk.authentication == Credentials("u", "p" * 8)
    assert added.changed_fields == ("authentication",)
    removed = update(trunk(), {"authentication": None})
    assert removed.trunk.authentication is None
    assert removed.changed_fields == ("authentication",)


def test_partial_credentials_where_there_were_none() -> None:
    error = rejection(update, trunk(authentication=None), {"authentication": {"username": "u"}})
    assert pointers(error) == {"/authentication/password"}


def test_advanced_is_merged_key_by_key() -> None:
    before = trunk(advanced={"transport": "udp", "numbers": ["+1"], "destinationCountry": "DE"})
    changes = {"advanced": {"numbers": ["+2"], "transport": None, "mediaEncryption": "allow"}}
    change = update(before, changes)
    assert change.trunk.advanced == {
        "numbers": ["+2"],
        "mediaEncryption": "allow",
        "destinationCountry": "DE",
    }
    assert change.changed_fields == (
        "advanced.mediaEncryption",
        "advanced.numbers",
        "advanced.transport",
    )


def test_advanced_null_clears_it() -> None:
    change = update(trunk(advanced={"transport": "udp"}), {"advanced": None})
    assert change.trunk.advanced == {}
    assert change.changed_fields == ("advanced.transport",)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"name": None}, {"/name"}),
        ({"gateways": None}, {"/gateways"}),
        ({"id": "x", "isSystem": True, "foo": None}, {"/id", "/isSystem", "/foo"}),
        ({"advanced": {"trnsport": None}}, {"/advanced/trnsport"}),
        ({"authentication": {"realm": None}}, {"/authentication/realm"}),
        ({"gateways": [{"ipOrDomain": "a.example", "name": "a"}, {"port": 0}]},
         {"/gateways/1/ipOrDomain", "/gateways/1/port", "/gateways/1/name"}),
        ({"advanced": {"numbers": ["+1", "1"]}}, {"/advanced/numbers/1"}),
        ({"authentication": "secret"}, {"/authentication"}),
        ({"advanced": []}, {"/advanced"}),
    ],
)  # fmt: skip
def test_update_validation_pointers_are_relative_to_the_patch(
    changes: dict[str, Any], expected: set[str]
) -> None:
    assert pointers(rejection(update, trunk(), changes)) == expected


@pytest.mark.parametrize("changes", [None, [], "name", 1])
def test_changes_must_be_an_object(changes: object) -> None:
    assert pointers(rejection(update, trunk(), changes)) == {""}


def test_each_error_pointer_is_reported_once() -> None:
    error = rejection(update, trunk(), {"advanced": {"trnsport": "udp"}})
    assert [e.pointer for e in error.errors] == ["/advanced/trnsport"]


# --- delete --------------------------------------------------------------------------------


def test_delete_yields_the_next_version() -> None:
    before = trunk()
    deleted = delete_trunk(before, tenant_id=TENANT, expected_version=1)
    assert deleted == replace(before, version=2)


# --- system trunks -------------------------------------------------------------------------


def test_a_declared_system_trunk_is_created() -> None:
    trunk_id = uuid4()
    change = upsert_system_trunk(None, trunk_id=trunk_id, fields=body(), now=NOW)
    assert change.trunk.is_system
    assert change.trunk.tenant_id is None
    assert change.trunk.id == trunk_id
    assert change.trunk.version == 1
    assert change.changed_fields == ("authentication", "gateways", "name")


def test_a_redeclared_system_trunk_is_replaced_only_when_it_differs() -> None:
    before = with_provider_id(system_trunk(advanced={"transport": "tls"}), "ST_1")
    same = upsert_system_trunk(
        before, trunk_id=before.id, fields=body(advanced={"transport": "tls"}), now=LATER
    )
    assert same == TrunkChange(before, ())
    changed = upsert_system_trunk(
        before, trunk_id=before.id, fields=body(authentication=None), now=LATER
    )
    assert changed.changed_fields == ("advanced.transport", "authentication")
    assert changed.trunk == replace(
        before, authentication=None, advanced={}, version=2, updated_at=LATER
    )


def test_a_system_trunk_id_used_by_a_tenant_trunk_is_already_exists() -> None:
    existing = trunk()
    error = rejection(upsert_system_trunk, existing, trunk_id=existing.id, fields=body(), now=NOW)
    assert error.reason is Reason.ALREADY_EXISTS


def test_a_bad_system_trunk_declaration_is_validation_failed() -> None:
    error = rejection(upsert_system_trunk, None, trunk_id=uuid4(), fields={"name": "x"}, now=NOW)
    assert pointers(error) == {"/gateways"}


# --- provider id ---------------------------------------------------------------------------


def test_setting_the_provider_id_is_not_a_new_version() -> None:
    before = trunk()
    assert with_provider_id(before, "ST_abc") == replace(before, provider_id="ST_abc")


def test_the_password_stays_out_of_repr() -> None:
    assert PASSWORD not in repr(trunk())
