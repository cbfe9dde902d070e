"""The REST gateway's FastAPI application (CONTRACT §2).

Thin: it checks the shape of a request, turns a write into a command, and maps the outcome event
to HTTP. Every error is an RFC 9457 problem document.

`python -m service.entrypoints.gateway.app --openapi` prints the OpenAPI document
(docs/openapi.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import SecretStr
from sip_trunk_contracts import CommandEnvelope, FieldError
from starlette.exceptions import HTTPException

from service import bootstrap
from service.adapters.command_bus import Outcome
from service.config import Settings
from service.entrypoints.gateway.auth import Authenticator
from service.entrypoints.gateway.backend import Backend, KafkaBackend
from service.entrypoints.gateway.middleware import RequestIdMiddleware
from service.entrypoints.gateway.openapi import install_openapi
from service.entrypoints.gateway.problems import Code, ProblemError, problem_response
from service.entrypoints.gateway.read_model import ReadModel
from service.entrypoints.gateway.routes import AppContext, allowed_methods, probes, trunks
from service.entrypoints.gateway.state_feed import StateFeed
from service.logs import get_logger

__all__ = ["create_app", "gateway_app", "openapi_document"]

log = get_logger(__name__)

_HTTP_CODES = {404: Code.NOT_FOUND, 405: Code.METHOD_NOT_ALLOWED, 413: Code.PAYLOAD_TOO_LARGE}


def gateway_app(settings: Settings) -> FastAPI:
    """The gateway as it runs: its read model, fed by the state topic and by every outcome event
    its command bus (built by `service.bootstrap`) reads."""
    reads = ReadModel()
    topic = settings.topics.state
    bus = bootstrap.gateway_bus(settings, on_event=reads.apply)
    backend = KafkaBackend(reads, bus, StateFeed(settings, topic, reads), topic)
    return create_app(settings, backend)


def create_app(settings: Settings, backend: Backend) -> FastAPI:
    """Raises AuthConfigError for token settings that cannot work (a bad key file)."""
    authenticator = Authenticator.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.info("gateway.token_algorithms", algorithms=authenticator.algorithms)
        await backend.start()
        try:
            yield
        finally:
            await backend.stop()
            authenticator.close()

    app = FastAPI(
        title="SIP Trunks API",
        version="1.0.0",
        description="SIP trunks of a tenant, mirrored into LiveKit. Errors are RFC 9457 "
        "problem documents (`type` is `about:blank`, `code` says what went wrong).",
        lifespan=lifespan,
        # The API's own description is public to whoever the deployment chooses (GATEWAY_API_DOCS).
        openapi_url="/openapi.json" if settings.gateway_api_docs else None,
        docs_url="/docs" if settings.gateway_api_docs else None,
        redoc_url="/redoc" if settings.gateway_api_docs else None,
        exception_handlers={
            ProblemError: _on_problem,
            RequestValidationError: _on_invalid_parameters,
            HTTPException: _on_http_error,
        },
    )
    app.state.context = AppContext(
        backend,
        authenticator,
        settings.gateway_reply_timeout_s,
        settings.gateway_body_timeout_s,
        bootstrap.password_seal_key(settings),
    )
    app.include_router(trunks)
    app.include_router(probes)
    app.add_middleware(RequestIdMiddleware)
    install_openapi(app)
    return app


async def _on_problem(_: Request, exc: ProblemError) -> JSONResponse:
    return problem_response(exc)


async def _on_invalid_parameters(_: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own checks (query parameters): 422 with a pointer `/<parameter>`."""
    errors = [
        FieldError(
            pointer="".join(f"/{part}" for part in error["loc"][1:]), message=str(error["msg"])
        )
        for error in exc.errors()
    ]
    return problem_response(
        ProblemError(Code.VALIDATION_FAILED, "invalid parameters", errors=errors)
    )


async def _on_http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Starlette's routing errors (unknown path, method not allowed) as problems."""
    code = _HTTP_CODES.get(exc.status_code, Code.MALFORMED_REQUEST)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names the methods of the first route on the path only.
        headers["Allow"] = ", ".join(allowed_methods(request.scope["path"]))
    return problem_response(ProblemError(code, str(exc.detail), headers=headers))


class _NoBackend:
    """Stands in for the backend when only the OpenAPI document is wanted."""

    reads = ReadModel()

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def ready(self) -> bool:
        return False

    async def request(self, command: CommandEnvelope, *, timeout_s: float) -> Outcome:
        raise NotImplementedError


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document, built without Kafka or secrets."""
    settings = Settings(auth_jwt_secret=SecretStr("unused" * 8), password_seal_public_key="A" * 43)
    return create_app(settings, _NoBackend()).openapi()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m service.entrypoints.gateway.app")
    parser.add_argument("--openapi", action="store_true", help="print the OpenAPI document")
    args = parser.parse_args(argv)
    if args.openapi:
        sys.stdout.write(json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n")
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
