"""The outermost layer: the request id and hardening headers on every response (`nosniff`;
`no-store` on the API's), and a problem for any crash.

A pure ASGI middleware, so that it also sees the responses of Starlette's routing errors and
sits outside everything that can raise.
"""

from __future__ import annotations

import re
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.entrypoints.gateway.outcomes import BASE_PATH
from service.entrypoints.gateway.problems import Code, ProblemError, problem_response
from service.logs import get_logger

__all__ = ["REQUEST_ID", "RequestIdMiddleware", "request_id_of"]

log = get_logger(__name__)

REQUEST_ID = "X-Request-ID"
# Printable ASCII, no surrounding spaces: it goes into Kafka headers and log lines as is.
_VALID = re.compile(r"[\x21-\x7e]([\x20-\x7e]{0,198}[\x21-\x7e])?")


def request_id_of(value: str | None) -> str:
    """The caller's request id if usable, else a new one."""
    if value is not None and _VALID.fullmatch(value):
        return value
    return str(uuid.uuid4())


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = dict(scope["headers"]).get(REQUEST_ID.lower().encode())
        request_id = request_id_of(raw.decode("latin-1") if raw is not None else None)
        scope.setdefault("state", {})["request_id"] = request_id
        api = str(scope["path"]).startswith(BASE_PATH)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID] = request_id
                headers["X-Content-Type-Options"] = "nosniff"
                if api:  # trunks (and errors about them) are the tenant's: never cached
                    headers["Cache-Control"] = "no-store"
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except ClientDisconnect:  # the client left mid-request: nobody to answer, no fault
                log.info("request.client_gone", method=scope["method"], path=scope["path"])
            except Exception:
                # Never a password here: request bodies are not logged, only the traceback.
                log.exception("request.crashed", method=scope["method"], path=scope["path"])
                if started:
                    raise
                error = ProblemError(Code.INTERNAL_ERROR, "an unexpected error occurred")
                await problem_response(error)(scope, receive, send_with_id)
