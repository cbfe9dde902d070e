"""A real running stack for end-to-end tests: worker, relay and gateway as separate processes
(`sip-trunks worker|relay|gateway`, as `make run` starts them), on the real broker.

The launcher lives in `service.entrypoints.processes` (the benchmarks use it too); the names are
kept here for the tests that import them from this module."""

from __future__ import annotations

from service.entrypoints.processes import ROLES as ROLES
from service.entrypoints.processes import Stack as Stack
from service.entrypoints.processes import free_port as free_port
from service.entrypoints.processes import running_stack as running_stack
from service.entrypoints.processes import start_process as start_process
from service.entrypoints.processes import stop_process as stop_process
from service.entrypoints.processes import wait_ready as wait_ready
