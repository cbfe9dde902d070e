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

It sees the world through ports only: the provider's listing (`ProviderListing`), a unit-of-work
factory and a lease; the composition root (`service/bootstrap.py`) hands them in.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from service.domain import rules
from service.domain.errors import Rejected
from service.domain.model import SipTrunk
from service.logs import get_logger
from service.service_layer.handlers import Services
from service.service_layer.outgoing import Cause
from service.service_layer.ports import (
    ConcurrentModification,
    Lease,
    ListedTrunk,
    ProviderListing,
    UnitOfWorkFactory,
)

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


@dataclass(frozen=True, slots=True)
class _Run:
    provider: ProviderListing
    unit_of_work: UnitOfWorkFactory
    services: Services  # its clock and messages; the provider is the listing above


async def reconcile(
    provider: ProviderListing,
    unit_of_work: UnitOfWorkFactory,
    services: Services,
    lease: Lease,
    *,
    orphan_grace_s: float = ORPHAN_GRACE_S,
    seen: dict[str, float] | None = None,
) -> ReconcileReport:
    """One run. `seen` (provider id -> when first seen orphaned) carries over between runs."""
    if not await lease.held():
        log.info("reconcile.skipped", reason="another reconciler is running")
        return ReconcileReport()
    run = _Run(provider, unit_of_work, services)
    try:
        report = await _reconcile(run, orphan_grace_s, {} if seen is None else seen)
    finally:
        await lease.release()
    log.info("reconcile.done", **report.counts())
    return report


async def _reconcile(run: _Run, grace_s: float, seen: dict[str, float]) -> ReconcileReport:
    report = ReconcileReport()
    async with run.unit_of_work() as uow:  # read only: no lock held during provider calls
        trunks = await uow.trunks.list_all()
    remote = {listed.provider_id: listed for listed in await run.provider.list_trunks()}
    for trunk in trunks:
        theirs = remote.pop(trunk.provider_id, None) if trunk.provider_id else None
        try:
            await _repair(run, trunk, theirs, report)
        except Rejected as refusal:
            report.add("failed", str(trunk.id), trunk.provider_id, refusal.detail)
    now = time.monotonic()
    orphans = {pid: listed.trunk_id for pid, listed in remote.items()}
    for provider_id in list(seen):
        if provider_id not in orphans:
            del seen[provider_id]  # gone, or claimed by a commit
    for provider_id, trunk_id in orphans.items():
        if trunk_id is None:
            continue  # not made by this deployment: never touched
        first = seen.setdefault(provider_id, now)
        current = await _current(run, trunk_id)
        if current is not None and current.provider_id == provider_id:
            report.add("in_step", trunk_id, provider_id, "committed during this run")
        elif now - first < grace_s:
            report.add("skipped", trunk_id, provider_id, f"orphan for < {grace_s:.0f} s")
        else:
            try:
                await run.provider.delete_id(provider_id)
                seen.pop(provider_id, None)
                report.add("orphan_deleted", trunk_id, provider_id)
            except Rejected as refusal:
                report.add("failed", trunk_id, provider_id, refusal.detail)
    return report


async def _current(run: _Run, trunk_id: str) -> SipTrunk | None:
    try:
        key = uuid.UUID(trunk_id)
    except ValueError:
        return None
    async with run.unit_of_work() as uow:
        return await uow.trunks.get(key)


async def _repair(
    run: _Run, read: SipTrunk, theirs: ListedTrunk | None, report: ReconcileReport
) -> None:
    """`read`: our trunk as the run first read it; `theirs`: the provider trunk it points at."""
    trunk = await _current(run, str(read.id))
    if trunk is None or trunk.version != read.version:
        report.add("skipped", str(read.id), read.provider_id, "changed during this run")
    elif theirs is None:
        new_id = await run.provider.create(trunk)
        await _record_provider_id(run, trunk, new_id)
        report.add("missing_recreated", str(trunk.id), new_id)
    elif not run.provider.in_step(trunk, theirs):
        assert trunk.provider_id is not None
        new_id = await run.provider.replace(trunk, trunk.provider_id)
        if new_id != trunk.provider_id:
            await _record_provider_id(run, trunk, new_id)
        report.add("drift_repaired", str(trunk.id), new_id)
    else:
        report.add("in_step", str(trunk.id), trunk.provider_id)


async def _record_provider_id(run: _Run, trunk: SipTrunk, provider_id: str) -> None:
    svc = run.services
    change = rules.reassign_provider(trunk, provider_id, svc.clock())
    cause = Cause(correlation_id=f"reconcile:{uuid.uuid4()}")
    try:
        async with run.unit_of_work() as uow:
            await uow.trunks.update(change.trunk)  # version-guarded: a newer command wins
            # TrunkUpdated and the state snapshot (a new provider id is a change)
            await uow.outbox.add(svc.messages.updated(change.trunk, change.changed_fields, cause))
            await uow.commit()
    except ConcurrentModification:
        # The trunk changed meanwhile; the provider trunk just made is an orphan for next time.
        log.info("reconcile.raced", trunk_id=str(trunk.id))
