"""Reconciliation: make the provider's trunks agree with ours, whatever happened in between.

A crash between a LiveKit call and the database commit, a change made by hand at LiveKit, or a
LiveKit trunk deleted by hand all leave the two apart; each run repairs that:

- a trunk of ours whose provider trunk differs (drift) is pushed again (full replace);
- a trunk of ours whose provider trunk is missing gets a new one (new `providerId`, a new
  version, a `TrunkUpdated` with changedFields `["providerId"]` and a state snapshot);
- a provider trunk that carries our metadata but that none of our trunks points at (an orphan)
  is deleted, once it is older than a grace period (it may belong to a command in flight).

Provider trunks without our metadata are never touched. One reconciler runs at a time per
database (a lease), its database writes are short and version-guarded, and its report holds ids
and counts, nothing secret.
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
from service.outgoing import Cause

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
    container: Container, *, orphan_grace_s: float = ORPHAN_GRACE_S
) -> ReconcileReport:
    provider = container.livekit
    if provider is None:
        raise ValueError("reconcile needs PROVIDER=livekit")
    lease = lease_for(container.engine, "reconcile")
    if not await lease.held():
        log.info("reconcile.skipped", reason="another reconciler is running")
        return ReconcileReport()
    try:
        report = await _reconcile(container, provider, orphan_grace_s)
    finally:
        await lease.release()
    log.info("reconcile.done", **report.counts())
    return report


async def _reconcile(
    container: Container, provider: LiveKitProvider, orphan_grace_s: float
) -> ReconcileReport:
    report = ReconcileReport()
    remote = {i.sip_trunk_id: i for i in await provider.list_trunks() if provider.made_by_us(i)}
    async with container.unit_of_work() as uow:  # read only: no lock held during LiveKit calls
        trunks = await uow.trunks.list_all()
    for trunk in trunks:
        info = remote.pop(trunk.provider_id, None) if trunk.provider_id else None
        try:
            await _repair(container, provider, trunk, info, report)
        except Rejected as refusal:
            report.add("failed", str(trunk.id), trunk.provider_id, refusal.detail)
    now = time.time()
    for provider_id, info in remote.items():
        trunk_id = provider.made_by_us(info) or "-"
        if now - _created_s(info) < orphan_grace_s:
            report.add("skipped", trunk_id, provider_id, "recent: may be a command in flight")
            continue
        try:
            await provider.delete_id(provider_id)
            report.add("orphan_deleted", trunk_id, provider_id)
        except Rejected as refusal:
            report.add("failed", trunk_id, provider_id, refusal.detail)
    return report


async def _repair(
    container: Container,
    provider: LiveKitProvider,
    trunk: SipTrunk,
    info: Any,
    report: ReconcileReport,
) -> None:
    if info is None:
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


def _created_s(info: Any) -> float:
    created = getattr(info, "created_at", None)
    return float(getattr(created, "seconds", 0) or 0)
