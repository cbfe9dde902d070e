"""Dev-only secrets: generated once into the data folder (mode 0600) and reused.

Production sets the real ones in the environment (ENCRYPTION_KEY, AUTH_JWT_SECRET); a fresh
checkout still runs without any set-up, and nothing secret is ever committed (data/ is ignored).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["dev_secret"]


def dev_secret(data_dir: Path, name: str, generate: Callable[[], bytes]) -> bytes:
    path = data_dir / name
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(generate())
    # link() is atomic and refuses to overwrite: two processes starting together agree on one.
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes().strip()
