"""The relay's wake-up on every backend: a committed outbox row wakes an idle relay at once
(a NOTIFY from the trigger of migration 0003 on PostgreSQL, inotify on SQLite's files), and an
idle wait without a commit does not return early."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from service.adapters import outbox_wakeup
from service.adapters.outbox_wakeup import wakeup_for
from tests.integration.test_relay import messages, stage

# Long enough that a wait ending before it can only have been woken by the commit.
RECHECK_S = 60.0


async def test_a_commit_wakes_an_idle_wait(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_wakeup, "IDLE_RECHECK", RECHECK_S)
    wakeup = wakeup_for(engine)
    stop = asyncio.Event()
    try:
        await asyncio.wait_for(wakeup.wait(stop), 10)  # sets up the signal: returns at once
        idle = asyncio.create_task(wakeup.wait(stop))
        await asyncio.sleep(0.5)
        assert not idle.done(), "an idle wait returned without a commit"
        for _ in range(3):  # woken by each commit
            await stage(engine, tmp_path, messages("some-topic", 2))
            await asyncio.wait_for(idle, 10)
            idle = asyncio.create_task(wakeup.wait(stop))
        idle.cancel()
        stopping = asyncio.create_task(wakeup.wait(stop))
        stop.set()
        await asyncio.wait_for(stopping, 10)
    finally:
        await wakeup.close()
