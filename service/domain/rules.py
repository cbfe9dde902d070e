"""The SipTrunk aggregate's behaviour: every rule of the contract once, as pure functions.

Versions: 1 on create; +1 on every change that changes something; a no-op update keeps the
version and `updated_at`. A delete yields the trunk at version+1 (carried by TrunkDeleted), so a
trunk's versions strictly increase across its whole life. Setting the provider id is
bookkeeping, not a change: no version bump.

Timestamps: `now` must be timezone-aware; it is stored in UTC with its microseconds, so that
trunks created within one second keep their creation order (CONTRACT.md §4.1; the worker's clock
never repeats a value, see `service.service_layer.handlers.MonotonicClock`).

`TrunkChange.changed_fields` is a sorted tuple of dotted paths in the contract's camelCase:
- create (and a new system trunk): the top-level fields that are set: `name`, `gateways`,
  plus `authentication` if there are credentials and `advanced` if it is not empty;
- update (and a re-declared system trunk): what actually differs after normalisation:
  `name`, `gateways` (the list as a whole), `authentication` (credentials added or removed),
  `authentication.username`, `authentication.password`, `advanced.<key>` (e.g.
  `advanced.numbers`, also when a key is added or removed); empty when nothing changed.

Update (`changes` is a JSON Merge Patch, RFC 7396, over the writable fields): absent fields are
unchanged, `gateways` is replaced whole, `authentication`/`advanced` are merged key by key, `null`
removes (`advanced: null` leaves `{}`; `name`/`gateways: null` fail as required). A password equal
to `MASKED_PASSWORD` keeps the stored one (an error at `/authentication/password` if there is
none). The merged result is validated like a create body; error pointers are those of the patch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Final
from uuid import UUID

from sip_trunk_contracts import MASKED_PASSWORD

from service.domain.document import to_document
from service.domain.errors import (
    AlreadyExists,
    FieldViolation,
    NotFound,
    SystemTrunkImmutable,
    ValidationFailed,
    VersionConflict,
)
from service.domain.merge_patch import apply_merge_patch
from service.domain.model import Credentials, SipTrunk, TrunkChange
from service.domain.validation import (
    INVALID,
    WRITABLE_FIELDS,
    TrunkFields,
    check_patch_keys,
    check_trunk_fields,
    ensure_valid,
    validate_trunk_body,
)

__all__ = [
    "MASKED_PASSWORD",
    "create_trunk",
    "delete_trunk",
    "reassign_provider",
    "update_trunk",
    "upsert_system_trunk",
    "visible_to",
    "with_provider_id",
]

_ABSENT: Final = object()


def visible_to(trunk: SipTrunk, tenant_id: str | None) -> bool:
    """A tenant sees its own trunks and the system trunks."""
    return trunk.is_system or trunk.tenant_id == tenant_id


def create_trunk(
    existing: SipTrunk | None,
    *,
    trunk_id: UUID,
    tenant_id: str | None,
    fields: Mapping[str, object],
    now: datetime,
) -> TrunkChange:
    if existing is not None:
        raise AlreadyExists()
    values = validate_trunk_body(fields)
    return _new_trunk(trunk_id, tenant_id, values, now, is_system=False)


def update_trunk(
    existing: SipTrunk | None,
    *,
    tenant_id: str | None,
    changes: object,
    expected_version: int | None,
    now: datetime,
) -> TrunkChange:
    """Apply a merge patch; `changes` should be a JSON object (anything else fails validation)."""
    trunk = _modifiable(existing, tenant_id, expected_version)
    return _replace_fields(trunk, _patched(trunk, changes), now)


def delete_trunk(
    existing: SipTrunk | None, *, tenant_id: str | None, expected_version: int | None
) -> SipTrunk:
    """The trunk as deleted, at the next version (the version TrunkDeleted carries)."""
    trunk = _modifiable(existing, tenant_id, expected_version)
    return replace(trunk, version=trunk.version + 1)


def upsert_system_trunk(
    existing: SipTrunk | None, *, trunk_id: UUID, fields: Mapping[str, object], now: datetime
) -> TrunkChange:
    """Create or replace a system trunk declared in settings (validated like a create body)."""
    if existing is not None and not existing.is_system:
        raise AlreadyExists()
    values = validate_trunk_body(fields)
    if existing is None:
        return _new_trunk(trunk_id, None, values, now, is_system=True)
    return _replace_fields(existing, values, now)


def with_provider_id(trunk: SipTrunk, provider_id: str | None) -> SipTrunk:
    return trunk if provider_id == trunk.provider_id else replace(trunk, provider_id=provider_id)


def reassign_provider(trunk: SipTrunk, provider_id: str, now: datetime) -> TrunkChange:
    """The provider trunk was made anew (reconciliation): a visible change, so a new version."""
    if provider_id == trunk.provider_id:
        return TrunkChange(trunk, ())
    moved = replace(
        trunk, provider_id=provider_id, version=trunk.version + 1, updated_at=_timestamp(now)
    )
    return TrunkChange(moved, ("providerId",))


# --- internals -----------------------------------------------------------------------------


def _timestamp(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def _modifiable(
    existing: SipTrunk | None, tenant_id: str | None, expected_version: int | None
) -> SipTrunk:
    # Order matters: another tenant's trunk must look absent, whatever else is wrong.
    if existing is None or not visible_to(existing, tenant_id):
        raise NotFound()
    if existing.is_system:
        raise SystemTrunkImmutable()
    if expected_version is not None and expected_version != existing.version:
        raise VersionConflict(expected_version, existing.version)
    return existing


def _new_trunk(
    trunk_id: UUID, tenant_id: str | None, values: TrunkFields, now: datetime, *, is_system: bool
) -> TrunkChange:
    stamp = _timestamp(now)
    trunk = SipTrunk(
        id=trunk_id,
        tenant_id=tenant_id,
        name=values.name,
        gateways=values.gateways,
        authentication=values.authentication,
        advanced=values.advanced,
        is_system=is_system,
        provider_id=None,
        created_at=stamp,
        updated_at=stamp,
        version=1,
    )
    set_fields = ["name", "gateways"]
    set_fields += ["authentication"] if values.authentication else []
    set_fields += ["advanced"] if values.advanced else []
    return TrunkChange(trunk, tuple(sorted(set_fields)))


def _replace_fields(trunk: SipTrunk, values: TrunkFields, now: datetime) -> TrunkChange:
    changed = _changed_fields(trunk, values)
    if not changed:
        return TrunkChange(trunk, ())
    updated = replace(
        trunk,
        name=values.name,
        gateways=values.gateways,
        authentication=values.authentication,
        advanced=values.advanced,
        updated_at=_timestamp(now),
        version=trunk.version + 1,
    )
    return TrunkChange(updated, changed)


def _changed_fields(trunk: SipTrunk, values: TrunkFields) -> tuple[str, ...]:
    changed = [
        field
        for field, differs in (
            ("name", trunk.name != values.name),
            ("gateways", trunk.gateways != values.gateways),
        )
        if differs
    ]
    changed += _credential_changes(trunk.authentication, values.authentication)
    changed += [
        f"advanced.{key}"
        for key in {*trunk.advanced, *values.advanced}
        if trunk.advanced.get(key, _ABSENT) != values.advanced.get(key, _ABSENT)
    ]
    return tuple(sorted(changed))


def _credential_changes(old: Credentials | None, new: Credentials | None) -> list[str]:
    if old is None or new is None:
        return [] if old == new else ["authentication"]
    return [
        f"authentication.{key}"
        for key, differs in (
            ("username", old.username != new.username),
            ("password", old.password != new.password),
        )
        if differs
    ]


def _patched(trunk: SipTrunk, changes: object) -> TrunkFields:
    if not isinstance(changes, Mapping):
        raise ValidationFailed([FieldViolation("", "must be an object (a JSON merge patch)")])
    errors: list[FieldViolation] = []
    check_patch_keys(changes, errors)
    patch = _unmasked(changes, trunk.authentication, errors)
    merged = apply_merge_patch(_writable_document(trunk), patch)
    assert isinstance(merged, Mapping)  # an object patch always yields an object
    values = check_trunk_fields(merged, errors)
    ensure_valid(errors)
    assert values is not INVALID  # an INVALID result always comes with an error
    return values


def _unmasked(
    changes: Mapping[str, object], stored: Credentials | None, errors: list[FieldViolation]
) -> Mapping[str, object]:
    """Replace a masked password in the patch by the stored one, so the merge keeps it."""
    auth = changes.get("authentication")
    if not isinstance(auth, Mapping) or auth.get("password") != MASKED_PASSWORD:
        return changes
    if stored is None:
        # Reported first, so that it wins over the merged result's complaint about the mask.
        errors.append(
            FieldViolation(
                "/authentication/password", "is masked, but there is no password to keep"
            )
        )
        return changes
    return {**changes, "authentication": {**auth, "password": stored.password}}


def _writable_document(trunk: SipTrunk) -> dict[str, object]:
    """The writable fields as the JSON document the merge patch applies to (plaintext password)."""
    document = to_document(trunk, reveal_password=True)
    return {key: document[key] for key in WRITABLE_FIELDS}
