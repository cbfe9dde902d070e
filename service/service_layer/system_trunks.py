"""System trunks: declared in a settings file, upserted by the worker at start.

The file (SYSTEM_TRUNKS_FILE, YAML or JSON) holds a list of trunks with a fixed `id` and the
writable fields of a create body:

    - id: 00000000-0000-4000-8000-000000000001
      name: Platform fallback trunk
      gateways: [{ipOrDomain: sip.example.net, port: 5060, name: primary}]

They go through the same domain rules as any trunk, belong to no tenant (`tenantId` null),
and are announced with the usual events, so every subscriber and read model sees them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml

from service.domain import rules
from service.logs import get_logger
from service.service_layer.handlers import Services
from service.service_layer.outgoing import Cause
from service.service_layer.ports import Lease, UnitOfWorkFactory

__all__ = ["SystemTrunksFileError", "load_declarations", "provision_system_trunks"]

log = get_logger(__name__)


class SystemTrunksFileError(ValueError):
    pass


def load_declarations(path: Path) -> list[tuple[UUID, dict[str, Any]]]:
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except OSError as exc:
        raise SystemTrunksFileError(f"cannot read system trunks from {path}: {exc}") from None
    except (ValueError, yaml.YAMLError) as exc:
        # Say where, never what: the parsers quote the offending line, which may be a password.
        raise SystemTrunksFileError(f"{path}: not valid {_where(exc)}") from None
    if not isinstance(data, list):
        raise SystemTrunksFileError(f"{path}: expected a list of trunks")
    declarations = []
    for index, item in enumerate(data):
        if not isinstance(item, dict) or "id" not in item:
            raise SystemTrunksFileError(f"{path}: trunk #{index} needs an `id`")
        fields = dict(item)
        try:
            trunk_id = UUID(str(fields.pop("id")))
        except ValueError as exc:
            raise SystemTrunksFileError(f"{path}: trunk #{index}: `id` is not a UUID") from exc
        declarations.append((trunk_id, fields))
    return declarations


def _where(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"JSON (line {exc.lineno}, column {exc.colno})"
    mark = getattr(exc, "problem_mark", None)
    return f"YAML (line {mark.line + 1}, column {mark.column + 1})" if mark else "YAML/JSON"


async def provision_system_trunks(
    path: Path | None, unit_of_work: UnitOfWorkFactory, services: Services, lease: Lease
) -> int:
    """Create or update every trunk declared in `path`; return how many changed.

    Workers starting together take turns (`lease`): one provisions, the others find it done.
    """
    if path is None:
        return 0
    declarations = load_declarations(path)
    for _ in range(300):  # wait for a worker provisioning right now (at most ~30 s)
        if await lease.held():
            break
        await asyncio.sleep(0.1)
    else:
        raise SystemTrunksFileError("another worker held the system-trunks lease for 30 s")
    try:
        return await _provision(unit_of_work, services, path, declarations)
    finally:
        await lease.release()


async def _provision(
    unit_of_work: UnitOfWorkFactory,
    svc: Services,
    path: Path,
    declarations: list[tuple[UUID, dict[str, Any]]],
) -> int:
    cause = Cause(correlation_id=f"system-trunks:{uuid.uuid4()}")
    changed = 0
    async with unit_of_work() as uow:
        for trunk_id, fields in declarations:
            existing = await uow.trunks.get(trunk_id)
            change = rules.upsert_system_trunk(
                existing, trunk_id=trunk_id, fields=fields, now=svc.clock()
            )
            if not change.changed:
                continue
            if existing is None:
                trunk = rules.with_provider_id(
                    change.trunk, await svc.provider.create(change.trunk)
                )
                await uow.trunks.add(trunk)
                messages = svc.messages.created(trunk, cause)
            else:
                trunk = rules.with_provider_id(
                    change.trunk, await svc.provider.update(existing, change.trunk)
                )
                await uow.trunks.update(trunk)
                messages = svc.messages.updated(trunk, change.changed_fields, cause)
            await uow.outbox.add(messages)  # the event, then the state snapshot
            changed += 1
        await uow.commit()
    log.info("system_trunks.provisioned", file=str(path), changed=changed)
    return changed
