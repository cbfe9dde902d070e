"""What the fault suite checks, as pure functions over what was sent and what came back.

Kept apart from the processes and brokers so that each check is itself tested on made-up
histories (tests/faults/test_checks.py): a check that cannot fail proves nothing.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["create", "update", "delete"]

CREATED = "sip_trunks.TrunkCreated.v1"
UPDATED = "sip_trunks.TrunkUpdated.v1"
DELETED = "sip_trunks.TrunkDeleted.v1"
REJECTED = "sip_trunks.TrunkRejected.v1"
_APPLIED = {"create": CREATED, "update": UPDATED, "delete": DELETED}


@dataclass(frozen=True, slots=True)
class Sent:
    """One command as the client published it."""

    seq: int  # global send order; per trunk, the command order
    command_id: str  # ce_id
    trunk_id: str
    kind: Kind
    partition: int  # of the commands topic
    sent_at: float  # epoch seconds, taken just before the send


@dataclass(frozen=True, slots=True)
class Outcome:
    """One record of the events topic (a re-send is a second record with the same event id)."""

    event_id: str  # ce_id of the event
    command_id: str | None  # ce_causationid
    trunk_id: str  # record key
    ce_type: str
    version: int | None
    reason: str | None  # of a TrunkRejected
    published_at: float  # record timestamp (the relay's send), epoch seconds
    partition: int
    offset: int


@dataclass
class Verdict:
    commands: int = 0
    outcomes: int = 0  # distinct events
    resends: int = 0  # records that repeat an event already seen
    lost: list[str] = field(default_factory=list)  # command ids without an outcome
    duplicated: list[str] = field(default_factory=list)  # command ids with > 1 distinct outcome
    reordered: list[str] = field(default_factory=list)  # trunk ids whose outcomes broke order
    version_errors: list[str] = field(default_factory=list)  # trunks: versions not 1..n
    unexpected: list[str] = field(default_factory=list)  # outcomes the commands do not imply
    stray: list[str] = field(default_factory=list)  # events that answer none of our commands
    rejected: Counter[str] = field(default_factory=Counter)  # by reason

    @property
    def violations(self) -> int:
        return sum(
            len(x)
            for x in (
                self.lost,
                self.duplicated,
                self.reordered,
                self.version_errors,
                self.unexpected,
                self.stray,
            )
        )


def first_occurrences(outcomes: Iterable[Outcome]) -> list[Outcome]:
    """Each event once, at its first place in topic order; later copies are re-sends."""
    seen: set[str] = set()
    firsts = []
    for o in sorted(outcomes, key=lambda o: (o.partition, o.offset)):
        if o.event_id not in seen:
            seen.add(o.event_id)
            firsts.append(o)
    return firsts


def verify(
    sent: Sequence[Sent], outcomes: Sequence[Outcome], allowed_rejections: Collection[str] = ()
) -> Verdict:
    """Every command exactly one outcome, per-trunk command order, versions 1..n per trunk, and
    each outcome the one the trunk's command history implies (a rejection only for a reason in
    `allowed_rejections`, or `not_found` for a trunk that such a rejection left absent)."""
    verdict = Verdict(commands=len(sent))
    by_id = {c.command_id: c for c in sent}
    firsts = first_occurrences(outcomes)
    verdict.outcomes = len(firsts)
    verdict.resends = len(outcomes) - len(firsts)

    answers: dict[str, list[Outcome]] = defaultdict(list)
    for o in firsts:
        if o.command_id in by_id:
            answers[o.command_id].append(o)
        else:
            verdict.stray.append(o.event_id)
        if o.ce_type == REJECTED:
            verdict.rejected[o.reason or "?"] += 1
    for c in sent:
        n = len(answers.get(c.command_id, ()))
        if n == 0:
            verdict.lost.append(c.command_id)
        elif n > 1:
            verdict.duplicated.append(c.command_id)

    # Order: per trunk, the commands answered must appear in the order they were sent.
    per_trunk: dict[str, list[Outcome]] = defaultdict(list)
    for o in firsts:
        per_trunk[o.trunk_id].append(o)
    for trunk_id, events in per_trunk.items():
        seqs = [by_id[o.command_id].seq for o in events if o.command_id in by_id]
        if any(b <= a for a, b in itertools.pairwise(seqs)):
            verdict.reordered.append(trunk_id)
        versions = [o.version for o in events if o.ce_type != REJECTED]
        if versions != list(range(1, len(versions) + 1)):
            verdict.version_errors.append(trunk_id)

    # Expected outcomes: replay each trunk's commands in send order against a model of it.
    commands_of: dict[str, list[Sent]] = defaultdict(list)
    for c in sorted(sent, key=lambda c: c.seq):
        commands_of[c.trunk_id].append(c)
    for trunk_id, commands in commands_of.items():
        version = 0  # 0: the trunk does not exist
        for c in commands:
            got = answers.get(c.command_id)
            if not got:
                continue  # counted as lost
            o = got[0]
            if o.ce_type == REJECTED:
                absent = version == 0 and c.kind != "create"
                if o.reason in allowed_rejections or (o.reason == "not_found" and absent):
                    continue
                verdict.unexpected.append(f"{c.kind} {c.command_id}: rejected {o.reason}")
                continue
            expected_version = 1 if c.kind == "create" else version + 1
            exists = version > 0
            if (
                o.ce_type != _APPLIED[c.kind]
                or exists == (c.kind == "create")
                or o.version != expected_version
            ):
                verdict.unexpected.append(
                    f"{c.kind} {c.command_id} of {trunk_id} at v{version}: "
                    f"{o.ce_type.split('.')[1]} v{o.version}"
                )
            version = 0 if c.kind == "delete" else (o.version or 0)
    return verdict


def recovery_s(
    t0: float, sent: Sequence[Sent], outcomes: Sequence[Outcome], partitions: int
) -> float | None:
    """Seconds from a fault at `t0` until every partition of the commands topic has answered a
    command sent after it (None: not yet). Counting per partition keeps a fault that stops part
    of the service (one of two workers, one broker) from hiding behind the part that runs on."""
    sent_at = {c.command_id: (c.sent_at, c.partition) for c in sent}
    first: dict[int, float] = {}
    for o in outcomes:
        when = sent_at.get(o.command_id or "")
        if when is None or when[0] < t0:
            continue
        p = when[1]
        first[p] = min(first.get(p, math.inf), o.published_at)
    if len(first) < partitions:
        return None
    return max(0.0, max(first.values()) - t0)


def trunk_row(values: Mapping[str, Any]) -> tuple[Any, ...]:
    """What the state topic and the database must agree on for one trunk."""
    return (
        values["version"],
        values["tenant_id"],
        values["name"],
        values["provider_id"],
        values["username"],
        tuple((g["ipOrDomain"], g.get("port", 5060), g["name"]) for g in values["gateways"]),
    )


def compare_state(
    latest_state: Mapping[str, Mapping[str, Any] | None],
    database: Mapping[str, Mapping[str, Any]],
) -> list[str]:
    """Differences between the state topic's latest record per trunk (None: a tombstone) and the
    database rows (`trunk_row` fields), for every trunk either side knows."""
    differences = []
    for trunk_id in sorted(set(latest_state) | set(database)):
        state = latest_state.get(trunk_id)
        row = database.get(trunk_id)
        if state is None and row is None:
            continue
        if state is None or row is None:
            differences.append(
                f"{trunk_id}: state {'tombstone/absent' if state is None else 'present'}, "
                f"database {'absent' if row is None else 'present'}"
            )
        elif trunk_row(state) != trunk_row(row):
            differences.append(f"{trunk_id}: state {trunk_row(state)} != database {trunk_row(row)}")
    return differences


def state_values(body: Mapping[str, Any]) -> dict[str, Any]:
    """A TrunkState body as `trunk_row` fields."""
    trunk = body["trunk"]
    return {
        "version": body["version"],
        "tenant_id": body["tenantId"],
        "name": trunk["name"],
        "provider_id": trunk.get("providerId"),
        "username": (trunk.get("authentication") or {}).get("username"),
        "gateways": trunk["gateways"],
    }
