"""Sealed passwords in commands (CONTRACT §4.2), opened before the domain sees them.

A command's `authentication.password` (a create's, or in an update's `changes`) is sealed
(`sealed:v1:...`), the mask `********` (keep the stored one: left as it is) or plaintext, which
is refused unless the deployment accepts it (ACCEPT_PLAINTEXT_PASSWORDS). `open_passwords`
returns the command with the password opened, so that the domain checks the password itself
(8-128 printable ASCII); a sealed value no key opens, or a refused plaintext, becomes a field
error at `/authentication/password` that never quotes the value. A password that is not a string
is left to the domain's field rules.

The command's digest (how a redelivery or a retried Idempotency-Key is told from another command
under the same id) is taken over the opened body: a retry seals the same password anew, into
other bytes, and must still be the same command.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sip_trunk_contracts import MASKED_PASSWORD, CreateSipTrunk, UpdateSipTrunk, is_sealed
from sip_trunk_contracts.limits import SEALED_PASSWORD_MAX_LENGTH

from service.domain.errors import FieldViolation
from service.service_layer.inbound import InboundCommand
from service.service_layer.ports import PasswordSeal

__all__ = ["POINTER", "open_passwords"]

POINTER = "/authentication/password"  # in a create's fields and in an update's patch alike

_PLAINTEXT = "must be sealed (sealed:v1:..., CONTRACT §4.2): plaintext passwords are refused"
_TOO_LONG = f"is sealed, but longer than a valid password's seal ({SEALED_PASSWORD_MAX_LENGTH})"
_UNOPENED = "is sealed, but with none of this service's keys (or it is damaged)"


def open_passwords(
    cmd: InboundCommand, seal: PasswordSeal, *, accept_plaintext: bool
) -> InboundCommand:
    """`cmd` with its password opened, or refused with a field error; unchanged when it holds
    no password to open (none, the mask, not a string, or an accepted plaintext)."""
    model = cmd.model
    if isinstance(model, CreateSipTrunk):
        path: tuple[str, ...] = ("authentication",)
    elif isinstance(model, UpdateSipTrunk):
        path = ("changes", "authentication")
    else:  # a delete, or an invalid envelope (refused anyway)
        return cmd
    auth = _at(cmd.body, path)
    password = auth.get("password") if isinstance(auth, dict) else None
    if not isinstance(password, str) or password == MASKED_PASSWORD:
        return cmd
    if not is_sealed(password):
        return cmd if accept_plaintext else _refused(cmd, _PLAINTEXT)
    if len(password) > SEALED_PASSWORD_MAX_LENGTH:
        return _refused(cmd, _TOO_LONG)
    opened = seal.open(password)
    if opened is None:
        return _refused(cmd, _UNOPENED)
    body = _with_password(cmd.body, path, opened)
    # The same envelope, validated already: only the field holding the password is swapped
    # (its type is `Any` or a dict of `Any`, so validating the opened body again would only
    # repeat the work). InboundCommand derives body_sha256 from the body: the copy's is the
    # opened body's.
    return replace(cmd, body=body, model=model.model_copy(update={path[0]: body[path[0]]}))


def _at(body: dict[str, Any], path: tuple[str, ...]) -> object:
    node: object = body
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _with_password(node: dict[str, Any], path: tuple[str, ...], password: str) -> dict[str, Any]:
    """A copy of `node` with the password at `path` replaced; the command's body is not touched."""
    if not path:
        return {**node, "password": password}
    return {**node, path[0]: _with_password(node[path[0]], path[1:], password)}


def _refused(cmd: InboundCommand, message: str) -> InboundCommand:
    return replace(cmd, errors=(*cmd.errors, FieldViolation(POINTER, message)))
