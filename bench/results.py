"""What every bench step shares: the facts of the run (cores, Python, the code measured) and
writing its results as JSON under .dev/ (read back by `bench.summary`)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["ROOT", "code_state", "percentiles", "run_facts", "save"]

ROOT = Path(__file__).resolve().parent.parent


def code_state() -> str:
    """The commit measured, and whether the service's code differed from it (work in progress)."""
    git = shutil.which("git") or "git"

    def output(*args: str) -> str:
        done = subprocess.run([git, *args], cwd=ROOT, capture_output=True, text=True)  # noqa: S603
        return done.stdout

    dirty = output("status", "--porcelain", "service", "contracts").strip()
    return output("rev-parse", "--short", "HEAD").strip() + (
        " + uncommitted service changes" if dirty else ""
    )


def percentiles(samples_s: list[float]) -> dict[str, float]:
    """n, p50, p90, p99 and max of timings given in seconds, in milliseconds."""
    ms = sorted(s * 1000 for s in samples_s)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"n": len(ms), "p50": q[49], "p90": q[89], "p99": q[98], "max": ms[-1]}


def run_facts() -> dict[str, Any]:
    return {
        "cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "code": code_state(),
    }


def save(path: Path, result: dict[str, Any]) -> None:
    """`result` with the run's facts under "machine" (a step's own facts there win)."""
    result = {**result, "machine": run_facts() | result.get("machine", {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
