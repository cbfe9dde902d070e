"""Reconciliation: make the provider's trunks agree with ours, whatever happened in between.

A crash between a LiveKit call and the database commit, a change made by hand at LiveKit, or a
LiveKit trunk deleted by hand all leave the two apart; each run repairs that:

- a trunk of ours whose provider trunk differs (drift) is pushed again (full replace);
- a trunk of ours whose provider trunk is missing gets a new one (new `providerId`, a new
  version, a `TrunkUpdated` with changedFields `["providerId"]` and a state snapshot);
- a provider trunk that carries our metadata (owner = LIVEKIT_OWNER) but that none of our
  trunks points at (an orphan) is deleted once it has been an orphan for a grace period, as seen
  by this process (`seen`; LiveKit keeps no creation time): it may belong to a command in flight.

Our database is read before LiveKit is listed, and each trunk is read again right before it is
repaired (skipped if it changed meanwhile), so a command committed during a run is never taken
for drift or for a missing provider trunk. Provider trunks without our metadata are never
deleted. One reconciler runs at a time per database (a lease), its database writes are short and
version-guarded, and its report holds ids and counts, nothing secret.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from service.adapters.leases import lease_for
from service.adapters.livekit_provider import LiveKitProvider, same
from service.adapters.sql_unit_of_work import ConcurrentModification
from service.bootstrap import Container
from service.domain import rules
from service.domain.errors import Rejected
from service.domain.model import SipTrunk
from service.logs import get_logger
from service.service_layer.outgoing import Cause

__all__ = ["Finding", "ReconcileReport", "reconcile"]

log = get_logger(__name__)

ORPHAN_GRACE_S = 60.0


@dataclass(frozen=True, slots=True)
class Finding:
    action: str  # in_step | drift_repaired | missing_recreated | orphan_deleted | skipped | failed
    trunk_id: str
    provider_id: str
    note: str = ""


@dataclass
class ReconcileReport:
    findings: list[Finding] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return dict(Counter(f.action for f in self.findings))

    def add(self, action: str, trunk_id: str, provider_id: str | None, note: str = "") -> None:
        self.findings.append(Finding(action, trunk_id, provider_id or "-", note))


async def reconcile(
    container: Container,
    *,
    orphan_grace_s: float = ORPHAN_GRACE_S,
    seen: dict[str, float] | None = None,
) -> ReconcileReport:
    """One run. `seen` (provider id -> when first seen orphaned) carries over between runs."""
    provider = container.livekit
    if provider is None:
        raise ValueError("reconcile needs PROVIDER=livekit")
    lease = lease_for(container.engine, "reconcile")
    if not await lease.held():
        log.info("reconcile.skipped", reason="another reconciler is running")
        return ReconcileReport()
    try:
        report = await _reconcile(container, provider, orphan_grace_s, {} if seen is None else seen)
    finally:
        await lease.release()
    log.info("reconcile.done", **report.counts())
    return report


async def _reconcile(
    container: Container, provider: LiveKitProvider, grace_s: float, seen: dict[str, float]
) -> ReconcileReport:
    report = ReconcileReport()
    async with container.unit_of_work() as uow:  # read only: no lock held during LiveKit calls
        trunks = await uow.trunks.list_all()
    remote = {info.sip_trunk_id: info for info in await provider.list_trunks()}
    for trunk in trunks:
        info = remote.pop(trunk.provider_id, None) if trunk.provider_id else None
        try:
            await _repair(container, provider, trunk, info, report)
        except Rejected as refusal:
            report.add("failed", str(trunk.id), trunk.provider_id, refusal.detail)
    now = time.monotonic()
    orphans = {pid: provider.made_by_us(info) for pid, info in remote.items()}
    for provider_id in list(seen):
        if provider_id not in orphans:
            del seen[provider_id]  # gone, or claimed by a commit
    for provider_id, trunk_id in orphans.items():
        if trunk_id is None:
            continue  # not made by this deployment: never touched
        first = seen.setdefault(provider_id, now)
        current = await _current(container, trunk_id)
        if current is not None and current.provider_id == provider_id:
            report.add("in_step", trunk_id, provider_id, "committed during this run")
        elif now - first < grace_s:
            report.add("skipped", trunk_id, provider_id, f"orphan for < {grace_s:.0f} s")
        else:
            try:
                await provider.delete_id(provider_id)
                seen.pop(provider_id, None)
                report.add("orphan_deleted", trunk_id, provider_id)
            except Rejected as refusal:
                report.add("failed", trunk_id, provider_id, refusal.detail)
    return report


async def _current(container: Container, trunk_id: str) -> SipTrunk | None:
    try:
        key = uuid.UUID(trunk_id)
    except ValueError:
        return None
    async with container.unit_of_work() as uow:
        return await uow.trunks.get(key)


async def _repair(
    container: Container,
    provider: LiveKitProvider,
    listed: SipTrunk,
    info: Any,
    report: ReconcileReport,
) -> None:
    trunk = await _current(container, str(listed.id))
    if trunk is None or trunk.version != listed.version:
        report.add("skipped", str(listed.id), listed.provider_id, "changed during this run")
    elif info is None:
        new_id = await provider.create(trunk)
        await _record_provider_id(container, trunk, new_id)
        report.add("missing_recreated", str(trunk.id), new_id)
    elif not same(provider.to_info(trunk), info):
        assert trunk.provider_id is not None
        new_id = await provider.replace(trunk, trunk.provider_id)
        if new_id != trunk.provider_id:
            await _record_provider_id(container, trunk, new_id)
        report.add("drift_repaired", str(trunk.id), new_id)
    else:
        report.add("in_step", str(trunk.id), trunk.provider_id)


async def _record_provider_id(container: Container, trunk: SipTrunk, provider_id: str) -> None:
    svc = container.services
    change = rules.reassign_provider(trunk, provider_id, svc.clock())
    cause = Cause(correlation_id=f"reconcile:{uuid.uuid4()}")
    try:
        async with container.unit_of_work() as uow:
            await uow.trunks.update(change.trunk)  # version-guarded: a newer command wins
            await uow.outbox.add(
                [
                    svc.messages.updated(change.trunk, change.changed_fields, cause),
                    svc.messages.state(change.trunk, cause),
                ]
            )
            await uow.commit()
    except ConcurrentModification:
        # The trunk changed meanwhile; the provider trunk just made is an orphan for next time.
        log.info("reconcile.raced", trunk_id=str(trunk.id))
