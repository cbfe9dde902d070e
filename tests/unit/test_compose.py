"""docker-compose.yml and Dockerfile agree with the service's code (no Docker engine needed)."""

from __future__ import annotations

import importlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.config import Settings
from service.entrypoints.cli import _parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
APP_SERVICES = ("worker", "relay")

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}
_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
_SECRET_NAME = re.compile(r"KEY|PASSWORD|SECRET|TOKEN", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]  # type: ignore[no-any-return]


def _default(value: str) -> str:
    """The value compose uses when none of the referenced variables is set in the shell."""

    def replace(match: re.Match[str]) -> str:
        if match["op"] in ("?", ":?"):
            pytest.fail(f"{value!r} makes a variable mandatory: the stack must start without it")
        return match["arg"] if match["op"] in ("-", ":-") else ""

    return _INTERPOLATION.sub(replace, value)


def _environment(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment", {})
    if isinstance(env, list):  # ["KEY=value", "KEY"]
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {key: None if value is None else _default(str(value)) for key, value in env.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return command.split() if isinstance(command, str) else list(command)


def _listeners(value: str) -> dict[str, str]:
    """`NAME://host:port,...` → {NAME: "host:port"}."""
    return dict(item.split("://", 1) for item in value.split(","))  # type: ignore[misc]


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (keyword.upper(), rest.strip())
        for keyword, _, rest in (line.partition(" ") for line in lines)
        if keyword and not keyword.startswith("#")
    ]


def test_stack_has_kafka_worker_and_relay(services: dict[str, Any]) -> None:
    assert {"kafka", "worker", "relay"} <= services.keys()


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_run_their_cli_command_from_the_project_image(
    services: dict[str, Any], name: str
) -> None:
    service = services[name]
    assert _command(service) == [name]
    assert _parser().parse_args(_command(service)).cmd == name
    build = service["build"]
    assert (build if isinstance(build, str) else build.get("context", ".")) == "."
    assert service["restart"] == "unless-stopped"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_environment_is_made_of_settings_fields(services: dict[str, Any], name: str) -> None:
    env = _environment(services[name])
    unknown = {key for key in env if key.lower() not in Settings.model_fields}
    assert not unknown, f"{name} sets variables Settings never reads: {sorted(unknown)}"
    # And the values as compose passes them by default are valid settings.
    Settings(**{key.lower(): value for key, value in env.items() if value is not None})


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_bootstrap_servers_is_the_kafka_service_listener(
    services: dict[str, Any], name: str
) -> None:
    kafka_env = _environment(services["kafka"])
    advertised = _listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"] or "")
    bound = _listeners(kafka_env["KAFKA_LISTENERS"] or "")
    bootstrap = _environment(services[name])["KAFKA_BOOTSTRAP_SERVERS"]
    assert bootstrap in advertised.values()
    listener = next(key for key, value in advertised.items() if value == bootstrap)
    host, _, port = (bootstrap or "").rpartition(":")
    assert host == "kafka"
    assert bound[listener].rpartition(":")[2] == port
    assert listener != kafka_env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_worker_and_relay_share_the_sqlite_file_on_a_named_volume(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    urls = set()
    for name in APP_SERVICES:
        env = _environment(services[name])
        assert env["DATA_DIR"] == "/data"
        settings = Settings(data_dir=Path("/data"), database_url=env["DATABASE_URL"])
        urls.add(settings.resolved_database_url)
        assert "data:/data" in services[name]["volumes"]
    assert urls == {"sqlite+aiosqlite:////data/sip_trunks.sqlite3"}
    assert "data" in compose["volumes"]


def test_encryption_key_is_optional_and_not_committed(services: dict[str, Any]) -> None:
    # Passed through from the shell when set; otherwise the worker makes a dev key in /data.
    assert services["worker"]["environment"]["ENCRYPTION_KEY"] is None


def test_no_literal_secrets_outside_the_dev_postgres_profile(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for key, value in _environment(service).items():
            if not _SECRET_NAME.search(key) or not value:
                continue
            assert (name, key) == ("postgres", "POSTGRES_PASSWORD"), f"{name}: literal {key}"
            assert "dev" in value


def test_kafka_is_a_single_kraft_node_without_auto_topic_creation(
    services: dict[str, Any],
) -> None:
    kafka = services["kafka"]
    env = _environment(kafka)
    assert kafka["image"] == "apache/kafka:4.1.1"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert set((env["KAFKA_PROCESS_ROLES"] or "").split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    test = kafka["healthcheck"]["test"]
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in (
        test if isinstance(test, str) else " ".join(test)
    )


def test_postgres_is_an_opt_in_profile(services: dict[str, Any]) -> None:
    postgres = services["postgres"]
    assert postgres["profiles"] == ["postgres"]
    assert postgres["image"] == "postgres:16"
    for name in APP_SERVICES:
        assert services[name]["depends_on"]["postgres"]["required"] is False


def test_images_are_pinned(services: dict[str, Any]) -> None:
    images = [service["image"] for service in services.values() if "image" in service]
    images += [
        rest.split()[0]
        for keyword, rest in _dockerfile_instructions()
        if keyword == "FROM" and not rest.startswith("--")
    ]
    assert images
    for image in images:
        _, colon, tag = image.rpartition(":")
        assert colon, f"{image} has no tag"
        assert re.fullmatch(r"\w[\w.-]*", tag), f"{image} has no tag"
        assert tag != "latest", f"{image} is not pinned"


def test_dockerfile_entrypoint_is_the_project_script() -> None:
    instructions = _dockerfile_instructions()
    entrypoints = [json.loads(rest) for keyword, rest in instructions if keyword == "ENTRYPOINT"]
    assert entrypoints == [["sip-trunks"]]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["sip-trunks"].partition(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_dockerfile_installs_both_packages_for_a_non_root_user() -> None:
    instructions = _dockerfile_instructions()
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "./contracts ." in runs
    assert "[dev]" not in runs
    assert not re.search(r"(^|\s)(-e|--editable)\s", runs)
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    assert "DATA_DIR=/data" in " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    assert ("VOLUME", '["/data"]') in instructions


def test_dockerignore_lets_in_only_what_the_dockerfile_copies() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    allowed = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    copied = {
        source.rstrip("/")
        for keyword, rest in _dockerfile_instructions()
        if keyword == "COPY" and not rest.startswith("--from")
        for source in rest.split()[:-1]
    }
    assert copied
    assert copied <= allowed | {"contracts"}
    assert {"contracts/pyproject.toml", "contracts/sip_trunk_contracts"} <= allowed
