"""The worker's clock: creation timestamps never repeat nor go back (CONTRACT.md §4.1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from service.service_layer.handlers import MonotonicClock, Services

T0 = datetime(2024, 1, 15, 9, 30, 0, 500_000, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def clock_reading(*wall: datetime) -> list[datetime]:
    readings = iter(wall)
    clock = MonotonicClock(lambda: next(readings))
    return [clock() for _ in wall]


def test_follows_the_wall_clock_in_utc() -> None:
    local = T0.astimezone(timezone(timedelta(hours=2)))
    assert clock_reading(local, T0 + timedelta(seconds=1)) == [T0, T0 + timedelta(seconds=1)]
    assert clock_reading(local)[0].tzinfo is UTC


def test_a_repeated_reading_moves_on_by_a_microsecond() -> None:
    assert clock_reading(T0, T0, T0) == [T0, T0 + TICK, T0 + 2 * TICK]


def test_a_step_back_does_not_go_back_in_time() -> None:
    back = T0 - timedelta(seconds=5)
    later = T0 + timedelta(seconds=1)
    assert clock_reading(T0, back, back, later) == [T0, T0 + TICK, T0 + 2 * TICK, later]


def test_services_get_a_monotonic_clock_each() -> None:
    nothing: dict[str, Any] = {"provider": None, "messages": None, "passwords": None}
    first = Services(**nothing, digest_key=b"")
    second = Services(**nothing, digest_key=b"")
    assert isinstance(first.clock, MonotonicClock)
    assert first.clock is not second.clock
    readings = [first.clock() for _ in range(1000)]
    assert readings == sorted(set(readings))
