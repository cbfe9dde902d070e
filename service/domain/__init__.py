"""The pure domain layer of the SIP trunk service: data, field rules and the aggregate's rules.

No I/O and no framework here; the boundary layers map `Rejected` to REST problems and
TrunkRejected events.
"""

from service.domain.errors import (
    AlreadyExists,
    FieldViolation,
    NotFound,
    Reason,
    Rejected,
    SystemTrunkImmutable,
    ValidationFailed,
    VersionConflict,
)
from service.domain.merge_patch import apply_merge_patch
from service.domain.model import Credentials, Gateway, SipTrunk, TrunkChange
from service.domain.rules import (
    MASKED_PASSWORD,
    create_trunk,
    delete_trunk,
    update_trunk,
    upsert_system_trunk,
    visible_to,
    with_provider_id,
)
from service.domain.validation import TrunkFields, validate_trunk_body

__all__ = [
    "MASKED_PASSWORD",
    "AlreadyExists",
    "Credentials",
    "FieldViolation",
    "Gateway",
    "NotFound",
    "Reason",
    "Rejected",
    "SipTrunk",
    "SystemTrunkImmutable",
    "TrunkChange",
    "TrunkFields",
    "ValidationFailed",
    "VersionConflict",
    "apply_merge_patch",
    "create_trunk",
    "delete_trunk",
    "update_trunk",
    "upsert_system_trunk",
    "validate_trunk_body",
    "visible_to",
    "with_provider_id",
]
