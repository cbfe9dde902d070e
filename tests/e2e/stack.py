"""A real running stack for end-to-end tests: worker, relay and gateway as separate processes
(`sip-trunks worker|relay|gateway`, as `make run` starts them), on the real broker.

The launcher lives in `service.entrypoints.processes` (the benchmarks use it too); the names are
kept here for the tests that import them from this module."""

from __future__ import annotations

from service.entrypoints.processes import (
    ROLES,
    Stack,
    free_port,
    running_stack,
    start_process,
    stop_process,
    wait_ready,
)

__all__ = [
    "ROLES",
    "Stack",
    "free_port",
    "running_stack",
    "start_process",
    "stop_process",
    "wait_ready",
]
