"""Why a command is refused: the contract's rejection reasons and field-level errors."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sip_trunk_contracts import RejectionReason

__all__ = [
    "AlreadyExists",
    "FieldViolation",
    "NotFound",
    "Reason",
    "Rejected",
    "SystemTrunkImmutable",
    "ValidationFailed",
    "VersionConflict",
]


# The contract's closed list of reasons is the domain's vocabulary too: one enum, no mapping.
# (The contracts package is plain pydantic models and constants: no I/O comes with it.)
Reason = RejectionReason


@dataclass(frozen=True, slots=True)
class FieldViolation:
    pointer: str  # RFC 6901 JSON pointer into the request body, e.g. "/gateways/0/port"
    message: str  # never contains the offending value: it may be a password


class Rejected(Exception):
    """A command the domain refuses; `reason` maps 1:1 to the contract's reason codes."""

    def __init__(self, reason: Reason, detail: str, errors: Iterable[FieldViolation] = ()) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.errors: tuple[FieldViolation, ...] = tuple(errors)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason.value!r}, {self.detail!r}, {self.errors!r})"


# A rejection stays a small message whatever the input (thousands of unknown keys...).
MAX_ERRORS = 50


class ValidationFailed(Rejected):
    def __init__(self, errors: Iterable[FieldViolation]) -> None:
        # The first error per pointer only: an update is checked as a patch and as the merged
        # result, which can report the same field twice.
        first: dict[str, FieldViolation] = {}
        for error in errors:
            first.setdefault(error.pointer, error)
        errs = tuple(first.values())[:MAX_ERRORS]
        pointers = ", ".join((e.pointer or "(body)")[:100] for e in errs[:10])
        more = f" and {len(first) - 10} more" if len(first) > 10 else ""
        super().__init__(Reason.VALIDATION_FAILED, f"invalid fields: {pointers}{more}", errs)


class NotFound(Rejected):
    def __init__(self) -> None:
        super().__init__(Reason.NOT_FOUND, "SIP trunk not found")


class SystemTrunkImmutable(Rejected):
    def __init__(self) -> None:
        super().__init__(
            Reason.SYSTEM_TRUNK_IMMUTABLE, "system trunks cannot be modified or deleted"
        )


class VersionConflict(Rejected):
    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(
            Reason.VERSION_CONFLICT, f"expected version {expected}, current version is {actual}"
        )
        self.expected = expected
        self.actual = actual


class AlreadyExists(Rejected):
    def __init__(self) -> None:
        super().__init__(Reason.ALREADY_EXISTS, "a SIP trunk with this id already exists")
