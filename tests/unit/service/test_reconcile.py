"""Reconcile and system trunks on their ports alone: in-memory unit of work, provider listing
and lease, no database, no LiveKit (the real ones: tests/integration/test_livekit.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

from service.domain import SipTrunk
from service.service_layer.ports import ListedTrunk
from service.service_layer.reconcile import reconcile
from service.service_layer.system_trunks import provision_system_trunks
from tests.unit.service.fakes import Harness, create


@dataclass
class FakeLease:
    free: bool = True
    released: int = 0

    async def held(self) -> bool:
        return self.free

    async def release(self) -> None:
        self.released += 1


@dataclass
class FakeListing:
    """A provider that lists its trunks: `held` maps a provider id to the name it holds."""

    held: dict[str, str] = field(default_factory=dict)
    made_for: dict[str, str | None] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    created: int = 0

    async def create(self, trunk: SipTrunk) -> str:
        self.created += 1
        provider_id = f"NEW_{self.created}"
        self.held[provider_id], self.made_for[provider_id] = trunk.name, str(trunk.id)
        return provider_id

    async def update(self, before: SipTrunk, after: SipTrunk) -> str | None:
        return after.provider_id

    async def delete(self, trunk: SipTrunk) -> None:
        return None

    async def list_trunks(self) -> list[ListedTrunk]:
        return [
            ListedTrunk(pid, self.made_for.get(pid), {"name": name})
            for pid, name in self.held.items()
        ]

    def in_step(self, trunk: SipTrunk, listed: ListedTrunk) -> bool:
        return listed.held == {"name": trunk.name}

    async def replace(self, trunk: SipTrunk, provider_id: str) -> str:
        self.held[provider_id] = trunk.name
        return provider_id

    async def delete_id(self, provider_id: str) -> None:
        self.deleted.append(provider_id)
        del self.held[provider_id]


async def seeded() -> tuple[Harness, FakeListing, list[SipTrunk]]:
    h = Harness()
    await h.run(create(uuid4()), create(uuid4()), create(uuid4()))
    trunks = sorted(h.db.trunks.values(), key=lambda t: t.created_at)
    listing = FakeListing()
    for trunk in trunks:
        assert trunk.provider_id is not None
        listing.held[trunk.provider_id] = trunk.name
        listing.made_for[trunk.provider_id] = str(trunk.id)
    return h, listing, trunks


async def test_drift_missing_and_orphans_are_repaired_through_the_ports() -> None:
    h, listing, (in_step, drifted, missing) = await seeded()
    assert drifted.provider_id
    assert missing.provider_id
    listing.held[drifted.provider_id] = "Changed by hand"
    del listing.held[missing.provider_id]
    listing.held["ORPHAN"], listing.made_for["ORPHAN"] = "x", str(uuid4())
    listing.held["FOREIGN"], listing.made_for["FOREIGN"] = "y", None  # not ours: never touched
    lease, seen = FakeLease(), {}

    first = await reconcile(
        listing, h.db.unit_of_work, h.services, lease, orphan_grace_s=30, seen=seen
    )
    assert first.counts() == {
        "in_step": 1,
        "drift_repaired": 1,
        "missing_recreated": 1,
        "skipped": 1,
    }
    assert listing.held[drifted.provider_id] == drifted.name
    assert h.db.trunks[missing.id].provider_id == "NEW_1"
    assert h.db.trunks[missing.id].version == missing.version + 1
    assert [m.key for m in h.db.outbox[-2:]] == [str(missing.id)] * 2  # updated, state
    assert set(seen) == {"ORPHAN"}

    second = await reconcile(
        listing, h.db.unit_of_work, h.services, FakeLease(), orphan_grace_s=0, seen=seen
    )
    assert second.counts() == {"in_step": 3, "orphan_deleted": 1}
    assert listing.deleted == ["ORPHAN"]
    assert "FOREIGN" in listing.held
    assert seen == {}
    assert lease.released == 1
    assert in_step.provider_id in listing.held


async def test_a_lease_held_elsewhere_skips_the_run() -> None:
    h, listing, _ = await seeded()
    report = await reconcile(listing, h.db.unit_of_work, h.services, FakeLease(free=False))
    assert report.findings == []


async def test_system_trunks_are_provisioned_through_the_ports(tmp_path: Path) -> None:
    h = Harness()
    trunk_id = str(uuid4())
    gateway = {"ipOrDomain": "sip.example.net", "port": 5060, "name": "primary"}
    path = tmp_path / "system.json"
    path.write_text(json.dumps([{"id": trunk_id, "name": "Platform", "gateways": [gateway]}]))
    lease = FakeLease()

    assert await provision_system_trunks(path, h.db.unit_of_work, h.services, lease) == 1
    assert await provision_system_trunks(path, h.db.unit_of_work, h.services, lease) == 0
    assert await provision_system_trunks(None, h.db.unit_of_work, h.services, lease) == 0
    [trunk] = h.db.trunks.values()
    assert (str(trunk.id), trunk.name, trunk.tenant_id, trunk.is_system) == (
        trunk_id,
        "Platform",
        None,
        True,
    )
    assert h.provider.ops() == ["create"]
    assert lease.released == 2
