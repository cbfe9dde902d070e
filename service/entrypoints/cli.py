"""`sip-trunks`: run the worker or the relay, manage the schema and topics, and talk to the
service from a terminal (send a command and print its outcome, watch a topic)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sip_trunk_contracts import (
    CommandEnvelope,
    CreateSipTrunk,
    DeleteSipTrunk,
    TrunkRejected,
    UpdateSipTrunk,
    seal_fields,
    strict_json,
)

from service import bootstrap
from service.adapters import kafka_clients
from service.adapters.kafka_acls import acl_plan, apply_acls
from service.adapters.kafka_topics import ensure_topics
from service.config import Settings
from service.entrypoints.relay import run_relay
from service.entrypoints.worker import run_worker
from service.logs import configure_logging
from service.service_layer.reconcile import ORPHAN_GRACE_S

__all__ = ["main"]

_COMMANDS = {
    "create": CreateSipTrunk.CE_TYPE,
    "update": UpdateSipTrunk.CE_TYPE,
    "delete": DeleteSipTrunk.CE_TYPE,
}


async def _until_signalled(run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run(stop)


async def _migrate(settings: Settings) -> None:
    print(f"schema up to date: {await bootstrap.migrate_schema(settings)}")


async def _topics(settings: Settings) -> None:
    created = await ensure_topics(settings)
    print(f"created: {', '.join(created)}" if created else "all topics exist")


async def _acls(settings: Settings) -> None:
    plan = acl_plan(settings.topics, settings.kafka_consumer_group)
    await apply_acls(settings, plan)
    print("\n".join(map(str, plan)))


def _command(args: argparse.Namespace, data: dict[str, Any]) -> CommandEnvelope:
    trunk_id: str = args.trunk or str(uuid.uuid4())
    tenant: str = args.tenant
    version: int | None = args.expected_version
    if args.command == "create":
        return CommandEnvelope.create(
            data,
            trunk_id=trunk_id,
            tenant_id=tenant,
            source=bootstrap.CLI_SOURCE,
            command_id=args.id,
        )
    if args.command == "update":
        return CommandEnvelope.update(
            data,
            trunk_id=trunk_id,
            tenant_id=tenant,
            source=bootstrap.CLI_SOURCE,
            expected_version=version,
            command_id=args.id,
        )
    return CommandEnvelope.delete(
        trunk_id=trunk_id,
        tenant_id=tenant,
        source=bootstrap.CLI_SOURCE,
        expected_version=version,
        command_id=args.id,
    )


async def _send(settings: Settings, args: argparse.Namespace) -> int:
    try:
        data = strict_json.loads(args.data) if args.data else {}
    except strict_json.JsonError as exc:
        print(f"--data is not strict JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(data, dict):
        print("--data must be a JSON object", file=sys.stderr)
        return 2
    seal_key = bootstrap.password_seal_key(settings)
    try:
        # The password goes out sealed for the worker (CONTRACT §4.2), never as typed.
        command = _command(args, seal_fields(seal_key, data))
    except ValueError as exc:  # a create body naming trunkId or tenantId (use --trunk, --tenant),
        # or a password that is not a string
        print(f"--data: {exc}", file=sys.stderr)
        return 2
    bus = bootstrap.cli_bus(settings)
    await bus.start()
    try:
        outcome = await bus.request(command, timeout_s=args.timeout)
    except TimeoutError:
        print(
            f"no outcome within {args.timeout}s (is the worker and relay running?)", file=sys.stderr
        )
        return 1
    finally:
        await bus.stop()
    event = outcome.event.model_dump(mode="json")
    print(json.dumps({"type": outcome.headers.type, "id": outcome.headers.id, **event}, indent=2))
    return 2 if isinstance(outcome.event, TrunkRejected) else 0


async def _gateway(settings: Settings) -> int:
    import uvicorn  # the gateway's own dependency: the other commands do not pay for it

    from service.entrypoints.gateway.app import gateway_app
    from service.entrypoints.gateway.idp_keys import AuthConfigError

    try:
        app = gateway_app(settings)
    except AuthConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_config=None,  # our structlog set-up, not uvicorn's
        access_log=False,
        lifespan="on",
    )
    await uvicorn.Server(config).serve()
    return 0


async def _reconcile(settings: Settings, args: argparse.Namespace) -> int:
    if settings.provider != "livekit":
        print(
            "reconcile needs PROVIDER=livekit (and LIVEKIT_URL, _API_KEY, _API_SECRET)",
            file=sys.stderr,
        )
        return 2
    container = await bootstrap.build(settings)
    try:
        report = await container.reconcile(orphan_grace_s=args.orphan_grace)
    finally:
        await container.close()
    print(f"{'action':<18} {'trunk':<36}  {'provider trunk':<16} note")
    for f in report.findings:
        print(f"{f.action:<18} {f.trunk_id:<36}  {f.provider_id:<16} {f.note}")
    counts = ", ".join(f"{n} {action}" for action, n in sorted(report.counts().items()))
    print(f"\n{len(report.findings)} checked: {counts or 'nothing to do'}")
    return 1 if report.counts().get("failed") else 0


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from service.entrypoints.gateway.tokens import (
        READ_SCOPE,
        WRITE_SCOPE,
        ClaimRules,
        jwt_secret,
        mint_token,
    )

    secret = jwt_secret(settings)
    if secret is None:
        print(
            "the gateway takes no HS256 token here: AUTH_JWKS_URL or AUTH_PUBLIC_KEY_FILE is set "
            "and AUTH_JWT_SECRET is not",
            file=sys.stderr,
        )
        return 2
    scopes = [READ_SCOPE] if args.read_only else [READ_SCOPE, WRITE_SCOPE]
    rules = ClaimRules.from_settings(settings)  # the claim names, `iss` and `aud` checked
    token = mint_token(
        secret, tenant=args.tenant, subject=args.sub, scopes=scopes, ttl_s=args.ttl, rules=rules
    )
    print(token)
    return 0


async def _watch(settings: Settings, args: argparse.Namespace) -> None:
    topic = getattr(settings.topics, args.topic)
    consumer = kafka_clients.consumer(
        settings,
        topic,
        auto_offset_reset="earliest" if args.from_beginning else "latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        async for record in consumer:
            headers = {k: v.decode(errors="replace") if v else v for k, v in record.headers}
            value = record.value.decode(errors="replace") if record.value is not None else None
            print(
                json.dumps(
                    {
                        "key": (record.key or b"").decode(errors="replace"),
                        "headers": headers,
                        "value": value,
                    }
                ),
                flush=True,
            )
    finally:
        await consumer.stop()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sip-trunks", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("worker", help="consume commands (migrates, creates topics, system trunks)")
    sub.add_parser("relay", help="publish the outbox to Kafka")
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("topics", help="create the Kafka topics if missing")
    sub.add_parser("acls", help="grant each principal its Kafka ACLs (as a super user)")
    send = sub.add_parser("send", help="publish a command and print its outcome event")
    send.add_argument("command", choices=sorted(_COMMANDS))
    send.add_argument("--tenant", default="tenant-dev", help="acting tenant")
    send.add_argument("--trunk", help="trunk id (default: a new one)")
    send.add_argument("--data", help="JSON: create body, or update merge patch")
    send.add_argument("--expected-version", type=int)
    send.add_argument("--id", help="command id (ce_id); resend one to see the duplicate answer")
    send.add_argument("--timeout", type=float, default=15.0)
    sub.add_parser("gateway", help="serve the REST API (GATEWAY_HOST:GATEWAY_PORT)")
    rec = sub.add_parser("reconcile", help="repair drift and orphans between LiveKit and us")
    rec.add_argument(
        "--orphan-grace",
        type=float,
        default=ORPHAN_GRACE_S,
        help="seconds before an orphan is deleted",
    )
    token = sub.add_parser("token", help="print a dev bearer token for the REST API")
    token.add_argument("--tenant", default="tenant-dev")
    token.add_argument("--sub", default="developer", help="the `sub` claim")
    token.add_argument("--ttl", type=int, default=12 * 3600, help="seconds until it expires")
    token.add_argument("--read-only", action="store_true", help="only sip-trunks:read")
    watch = sub.add_parser("watch", help="print a topic's messages as JSON lines")
    watch.add_argument("topic", choices=["events", "state", "commands", "dlt"])
    watch.add_argument("--from-beginning", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    if args.cmd == "token":  # no event loop, no logging set-up: just the token on stdout
        return _token(settings, args)
    configure_logging(settings.log_level, settings.log_format)
    runners: dict[str, Callable[[], Coroutine[Any, Any, int | None]]] = {
        "worker": lambda: _until_signalled(lambda stop: run_worker(settings, stop)),
        "relay": lambda: _until_signalled(lambda stop: run_relay(settings, stop)),
        "gateway": lambda: _gateway(settings),
        "reconcile": lambda: _reconcile(settings, args),
        "migrate": lambda: _migrate(settings),
        "topics": lambda: _topics(settings),
        "acls": lambda: _acls(settings),
        "send": lambda: _send(settings, args),
        "watch": lambda: _watch(settings, args),
    }
    try:
        result = asyncio.run(runners[args.cmd]())
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
