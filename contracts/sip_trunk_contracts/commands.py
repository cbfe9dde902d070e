"""Commands on ``sip-trunks.commands`` (CONTRACT.md §3).

Only the envelope fields (``trunkId``, ``tenantId``, ``expectedVersion``) are typed strictly.
The writable trunk fields are typed ``Any`` on purpose: the service's domain layer is the
single authority for the field rules of CONTRACT.md §1 and must be able to answer *any*
content with a ``TrunkRejected`` ``validation_failed`` carrying JSON pointers, rather than
the message failing to parse here. Unknown keys are kept in ``model_extra`` for the same reason.

A password in a command is sealed (CONTRACT.md §4.2, ``sealing.seal_fields``): the sealed string
is longer than the password, and the password's bounds are checked once the worker opened it.
"""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from pydantic import Field, StrictInt, StrictStr

from ._base import CommandModel

__all__ = ["CreateSipTrunk", "DeleteSipTrunk", "UpdateSipTrunk"]

_RULES = "validated by the service, see CONTRACT.md §1"
_TENANT = "the acting tenant"
_EXPECTED = "optimistic concurrency: reject with version_conflict unless this is the version"
_SEALED = "authentication.password is sealed (sealed:v1:<base64url>, see seal_password) or ********"


class CreateSipTrunk(CommandModel):
    """Create a trunk with the given id.

    ``authentication`` and ``advanced`` are optional, and absent differs from ``null``: absent
    means "none given", ``null`` is an explicit value. Unknown keys are kept, not dropped.
    """

    CE_TYPE: ClassVar[str] = "sip_trunks.CreateSipTrunk.v1"

    trunkId: UUID
    tenantId: StrictStr | None = Field(description=_TENANT)
    name: Any = Field(description=f"string; {_RULES}")
    gateways: Any = Field(description=f"list of gateways; {_RULES}")
    authentication: Any = Field(
        default=None, description=f"null or {{username, password}}; optional; {_SEALED}; {_RULES}"
    )
    advanced: Any = Field(default=None, description=f"object; optional; {_RULES}")

    def body(self) -> dict[str, Any]:
        """The trunk fields as sent, shaped like a REST ``POST`` body.

        This is how to tell absent from ``null``: an absent optional key is missing here, an
        explicit ``null`` is ``None``. Holds ``name``, ``gateways``, ``authentication`` and
        ``advanced`` if present, and every unknown key (e.g. a read-only ``id``), so that one
        validator serves REST and Kafka alike.
        """
        data: dict[str, Any] = {
            key: getattr(self, key)
            for key in ("name", "gateways", "authentication", "advanced")
            if key in self.model_fields_set  # name and gateways are required, so always set
        }
        data.update(self.model_extra or {})
        return data


class UpdateSipTrunk(CommandModel):
    """Apply a JSON Merge Patch (RFC 7396) of writable fields to a trunk.

    ``changes`` is passed through untouched; its keys and values are the domain's to judge.
    """

    CE_TYPE: ClassVar[str] = "sip_trunks.UpdateSipTrunk.v1"

    trunkId: UUID
    tenantId: StrictStr | None = Field(description=_TENANT)
    expectedVersion: StrictInt | None = Field(default=None, description=_EXPECTED)
    changes: dict[str, Any] = Field(
        description=f"merge patch of writable fields; {_SEALED}; {_RULES}"
    )


class DeleteSipTrunk(CommandModel):
    """Delete a trunk (and its provider trunk)."""

    CE_TYPE: ClassVar[str] = "sip_trunks.DeleteSipTrunk.v1"

    trunkId: UUID
    tenantId: StrictStr | None = Field(description=_TENANT)
    expectedVersion: StrictInt | None = Field(default=None, description=_EXPECTED)
