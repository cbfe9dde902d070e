"""The OpenAPI document against the live stack, as an outside client checks it (issue 8):
`schemathesis run <gateway>/openapi.json --checks all`, bounded in time, must find nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.stack import Stack

# Bounded for a 2-core CI box: one worker (schemathesis' threads race in hypothesis' caches),
# few examples per operation, and a time budget for the whole run (stateful phase included).
BUDGET_S = 60
LIMITS = ("--workers", "1", "--max-examples", "20", "--max-time", str(BUDGET_S))


@pytest.mark.xfail(
    strict=True,
    reason="known, not stateable in JSON Schema: a reused Idempotency-Key (422), a cursor the API "
    "did not give out (422); and schemathesis' coverage phase sends an empty If-Match although "
    "the document's pattern refuses it",
)
def test_schemathesis_finds_nothing(stack: Stack, tmp_path: Path) -> None:
    schemathesis = Path(sys.executable).with_name("schemathesis")
    run = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{stack.base_url}/openapi.json",
            "--header",
            f"Authorization: Bearer {stack.token('schemathesis')}",
            "--checks",
            "all",
            *LIMITS,
            "--seed",
            "8",
            "--report-dir",
            str(tmp_path),
        ],
        cwd=tmp_path,  # no schemathesis.toml of anyone's: the defaults an outside client has
        capture_output=True,
        text=True,
        timeout=BUDGET_S * 3,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
