"""Structured logs: JSON in production, readable on a terminal; never a password.

Every line about a command is bound (via contextvars) to its correlation id, command id and
trunk id by the worker; `redact` is the last line of defence against a secret slipping in.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from sip_trunk_contracts import MASKED_PASSWORD

__all__ = ["configure_logging", "get_logger", "redact"]

_SECRET_KEYS = frozenset(
    {
        "password",
        "encryption_key",
        "secret",
        "api_secret",
        "token",
        # Issue 9's secrets, under their settings' and their clients' names.
        "authorization",
        "private_key",
        "signing_key",
        "sasl_plain_password",
        "kafka_sasl_password",
        "password_seal_private_key",
        "command_signing_key",
        "auth_jwt_secret",
    }
)


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask any value logged under a secret-looking key, however deeply nested."""
    for key, value in event.items():
        event[key] = _redacted(key, value)
    return event


def _redacted(key: str, value: Any) -> Any:
    if key.lower() in _SECRET_KEYS and value is not None:
        return MASKED_PASSWORD
    if isinstance(value, Mapping):
        return {k: _redacted(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted("", v) for v in value]
    return value


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    json_output = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries (aiokafka, faststream, alembic) log through stdlib logging: keep them quiet.
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s"
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """The logger of a module: `log.info("event.name", key=value)`, filtered by level."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
