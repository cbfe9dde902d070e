"""Dev-only secrets: generated once into the data folder (mode 0600) and reused.

Production sets the real ones in the environment (ENCRYPTION_KEY, AUTH_JWT_SECRET,
PASSWORD_SEAL_PRIVATE_KEY, COMMAND_SIGNING_KEY); a fresh checkout still runs without any set-up,
and nothing secret is ever committed (data/ is ignored).
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from sip_trunk_contracts.sealing import KEY_BYTES, base64_bytes

__all__ = ["dev_key", "dev_secret"]


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


def dev_key(data_dir: Path, name: str) -> bytes:
    """A dev key of 32 random bytes (an X25519 private key, an Ed25519 seed), kept as base64."""

    def generate() -> bytes:
        return base64.b64encode(secrets.token_bytes(KEY_BYTES))

    return base64_bytes(dev_secret(data_dir, name, generate).decode("ascii"))
