"""The five operations of `/api/v1/sip-trunks` and the two probes.

Each operation checks its request in this order: auth (401/403), then the body (415/413/400),
then headers (400), then the path id (422); then the worker decides. The checks run in the
operation itself, its parameters only declaring the headers and the path for FastAPI and the
document (as plain strings, which FastAPI cannot refuse first): each FastAPI dependency costs
about 15 µs of CPU a request. A list keeps auth as a dependency, to come before FastAPI checks
its query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.routing import APIRoute
from sip_trunk_contracts import CommandEnvelope, TrunkDeleted, TrunkRejected
from sip_trunk_contracts.limits import MAX_DEPTH, MAX_IDEMPOTENCY_KEY_LENGTH

from service.adapters.command_bus import BrokerUnavailable, Outcome
from service.entrypoints.gateway.auth import Authenticator, Caller, authorize
from service.entrypoints.gateway.backend import Backend
from service.entrypoints.gateway.commands import create_command, delete_command, update_command
from service.entrypoints.gateway.inputs import (
    IF_MATCH_SCHEMA,
    JSON,
    MERGE_PATCH_JSON,
    parse_idempotency_key,
    parse_if_match,
    parse_trunk_id,
    read_json_object,
)
from service.entrypoints.gateway.openapi import CREATE_BODY, PATCH_BODY, documented
from service.entrypoints.gateway.outcomes import (
    BASE_PATH,
    json_response,
    outcome_response,
    trunk_response,
)
from service.entrypoints.gateway.pagination import (
    CURSOR_SCHEMA,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    decode_cursor,
    next_link,
)
from service.entrypoints.gateway.problems import Code, ProblemError
from service.entrypoints.gateway.tokens import READ_SCOPE, WRITE_SCOPE
from service.logs import get_logger

__all__ = ["AppContext", "allowed_methods", "probes", "trunks"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class AppContext:
    """What the routes use, kept in `app.state.context`."""

    backend: Backend
    authenticator: Authenticator
    reply_timeout_s: float
    body_timeout_s: float
    seal_key: bytes  # the worker's public key: passwords are sealed with it (CONTRACT §4.2)


def _context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


async def _authorized(request: Request, scope: str) -> Caller:
    """The caller, if its token grants `scope`: 401 or 403 otherwise."""
    caller = await _context(request).authenticator.caller(request.headers.get("authorization"))
    authorize(caller, scope)
    return caller


async def _reader(request: Request) -> Caller:
    return await _authorized(request, READ_SCOPE)


async def _create_body(request: Request) -> dict[str, Any]:
    return await read_json_object(request, timeout_s=_context(request).body_timeout_s)


async def _patch_body(request: Request) -> dict[str, Any]:
    # The command carries the patch inside `changes`: one level deeper than the body.
    return await read_json_object(
        request,
        (JSON, MERGE_PATCH_JSON),
        timeout_s=_context(request).body_timeout_s,
        max_depth=MAX_DEPTH - 1,
    )


# The parameters as FastAPI reads and documents them: plain strings, which it cannot refuse.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="a retry with the same key and body returns the first outcome; "
        "the same key with another body is 422 idempotency_key_reused",
        json_schema_extra={"minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH},
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='the version the change expects, as its ETag ("3"), or *; '
        "a stale version is 412",
        json_schema_extra=IF_MATCH_SCHEMA,  # its `anyOf` replaces FastAPI's string | null
    ),
]
TrunkId = Annotated[str, Path(alias="id", json_schema_extra={"format": "uuid"})]
# Documentation only: the request id middleware reads the header.
RequestId = Annotated[
    str | None,
    Header(
        alias="X-Request-ID",
        description="becomes the command's correlation id; echoed on every response "
        "(a new one when absent or not 1-200 printable ASCII characters)",
    ),
]

trunks = APIRouter(prefix=BASE_PATH, tags=["sip-trunks"])
probes = APIRouter(tags=["probes"])


async def _execute(request: Request, command: CommandEnvelope) -> Response:
    context = _context(request)
    try:
        outcome = await context.backend.request(command, timeout_s=context.reply_timeout_s)
    except BrokerUnavailable:
        raise ProblemError(
            Code.BROKER_UNAVAILABLE, "the message broker did not take the command; retry later"
        ) from None
    except TimeoutError:
        raise _timeout(command) from None
    if outcome.headers.causation_id not in (None, command.command_id) or not _answers(
        outcome, command
    ):
        # Another command's outcome, or another producer reused this command id for another
        # trunk or tenant: never hand it (maybe another tenant's trunk) to this caller.
        log.warning("outcome.foreign", command_id=command.command_id)
        raise _timeout(command)
    return outcome_response(outcome)


def _answers(outcome: Outcome, command: CommandEnvelope) -> bool:
    """The event is about this command's trunk and tenant."""
    event = outcome.event
    trunk_id = event.trunkId if isinstance(event, TrunkDeleted | TrunkRejected) else event.trunk.id
    return str(trunk_id) == command.trunk_id and event.tenantId == command.tenant_id


def _timeout(command: CommandEnvelope) -> ProblemError:
    return ProblemError(
        Code.TIMEOUT,
        f"no outcome of command {command.command_id} in time; it may still be applied. "
        "Retrying with the same Idempotency-Key is safe.",
        command_id=command.command_id,
    )


@trunks.get("", **documented("listSipTrunks", READ_SCOPE))
async def list_trunks(
    caller: Annotated[Caller, Depends(_reader)],  # a dependency: before the query is checked
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(
            description="from the `Link` of the last page; one the API did not give out is "
            "422 validation_failed",
            json_schema_extra=CURSOR_SCHEMA,
        ),
    ] = None,
    _request_id: RequestId = None,
) -> Response:
    """The caller's tenant's trunks and the system trunks, oldest first."""
    after = decode_cursor(cursor) if cursor is not None else None
    # One more than asked: a next page is announced only when there is one.
    records = _context(request).backend.reads.page(caller.tenant, after=after, limit=limit + 1)
    response = json_response(b"[" + b",".join(record.json for record in records[:limit]) + b"]")
    if len(records) > limit:
        response.headers["Link"] = next_link(BASE_PATH, limit, records[limit - 1].order_key)
    return response


@trunks.post("", status_code=201, **documented("createSipTrunk", WRITE_SCOPE, CREATE_BODY))
async def create_trunk(
    request: Request, _request_id: RequestId = None, key: IdempotencyKey = None
) -> Response:
    caller = await _authorized(request, WRITE_SCOPE)
    fields = await _create_body(request)
    context = _context(request)
    command = create_command(
        caller.tenant,
        fields,
        parse_idempotency_key(key),
        request.state.request_id,
        seal_key=context.seal_key,
    )
    return await _execute(request, command)


@trunks.get("/{id}", **documented("getSipTrunk", READ_SCOPE))
async def get_trunk(request: Request, path_id: TrunkId, _request_id: RequestId = None) -> Response:
    caller = await _authorized(request, READ_SCOPE)
    trunk_id = parse_trunk_id(path_id)
    record = _context(request).backend.reads.get(str(trunk_id))
    if record is None or not record.visible_to(caller.tenant):
        # Another tenant's trunk is not found either: its existence is not revealed.
        raise ProblemError(Code.NOT_FOUND, f"no trunk {trunk_id}")
    return trunk_response(record.json, record.version)


@trunks.patch("/{id}", **documented("updateSipTrunk", WRITE_SCOPE, PATCH_BODY))
async def update_trunk(
    request: Request,
    path_id: TrunkId,
    _request_id: RequestId = None,
    if_match: IfMatch = None,
    key: IdempotencyKey = None,
) -> Response:
    caller = await _authorized(request, WRITE_SCOPE)
    changes = await _patch_body(request)
    version, idempotency_key = parse_if_match(if_match), parse_idempotency_key(key)
    command = update_command(
        caller.tenant,
        parse_trunk_id(path_id),
        changes,
        version,
        idempotency_key,
        request.state.request_id,
        seal_key=_context(request).seal_key,
    )
    return await _execute(request, command)


@trunks.delete("/{id}", status_code=204, **documented("deleteSipTrunk", WRITE_SCOPE))
async def delete_trunk(
    request: Request,
    path_id: TrunkId,
    _request_id: RequestId = None,
    if_match: IfMatch = None,
    key: IdempotencyKey = None,
) -> Response:
    caller = await _authorized(request, WRITE_SCOPE)
    version, idempotency_key = parse_if_match(if_match), parse_idempotency_key(key)
    command = delete_command(
        caller.tenant, parse_trunk_id(path_id), version, idempotency_key, request.state.request_id
    )
    return await _execute(request, command)


@probes.get("/healthz", **documented("healthz"))
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@probes.get("/readyz", **documented("readyz"))
async def readyz(request: Request) -> dict[str, str]:
    try:
        ready = await _context(request).backend.ready()
    except Exception:  # a probe answers, whatever the backend does
        log.exception("readiness.failed")
        ready = False
    if not ready:
        raise ProblemError(Code.BROKER_UNAVAILABLE, "not connected to Kafka or not caught up")
    return {"status": "ok"}


def allowed_methods(path: str) -> list[str]:
    """The methods of a path, for the `Allow` header of a 405."""
    methods: set[str] = set()
    for route in (*trunks.routes, *probes.routes):
        if isinstance(route, APIRoute) and route.path_regex.match(path):
            methods |= route.methods or set()
    return sorted(methods)
