"""Settings: every knob of the service, read from the environment (12-factor)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sip_trunk_contracts import Topics

__all__ = ["Settings"]


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting must not print the others (a password) back.
    model_config = SettingsConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    # Kafka
    # `host:port[,host:port...]`, as operators write it; clients get `kafka_bootstrap_list`.
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topic_prefix: str = ""
    kafka_partitions: int = Field(default=6, ge=1, description="commands and events topics")
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_consumer_group: str = "sip-trunk-worker"
    # Static group membership (KIP-345): a worker restarted under the same id takes its
    # partitions back at once instead of after the dead member's session timeout. Unique per
    # worker of a group. Unset: `<hostname>-<n>`, n the lowest free on this host (see
    # adapters/kafka_clients.py).
    worker_instance_id: str | None = Field(default=None, min_length=1, max_length=200)
    # How every client of this process connects and whom it authenticates as: one principal
    # per process (the launcher sets KAFKA_SASL_USERNAME/PASSWORD for each; see docs/security.md).
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = Field(default=None, min_length=1)
    kafka_sasl_password: SecretStr | None = None
    # TLS: the CA that signed the brokers' certificates (default: the system's), and a client
    # certificate and key for brokers that ask for one.
    kafka_ssl_ca_file: Path | None = None
    kafka_ssl_cert_file: Path | None = None
    kafka_ssl_key_file: Path | None = None
    # Who the service says it is in `ce_source` of the events it writes.
    service_source: str = "/sip-trunk-service"

    # Storage
    data_dir: Path = Path("data")
    # A URL may hold a password: SecretStr keeps it out of reprs and logs.
    database_url: SecretStr | None = Field(
        default=None, description="SQLAlchemy async URL; default: SQLite file in data_dir"
    )
    # Fernet key for passwords at rest; default: a dev key generated once in data_dir.
    encryption_key: SecretStr | None = None

    # Worker
    worker_batch_size: int = Field(default=200, ge=1, le=5000)
    worker_batch_timeout_ms: int = Field(default=20, ge=0)
    system_trunks_file: Path | None = None
    # The provider trunk kept in step with ours: `livekit`, or `none` (providerId stays null).
    provider: Literal["none", "livekit"] = "none"
    livekit_url: str = "http://127.0.0.1:7880"
    livekit_api_key: str = "devkey"
    livekit_api_secret: SecretStr = SecretStr("secret")  # the dev server's; set it for real
    livekit_timeout_s: float = Field(default=2.0, gt=0, description="per call (hard)")
    livekit_breaker_s: float = Field(default=5.0, ge=0, description="fail fast after an outage")
    livekit_retries: int = Field(default=2, ge=0, description="more tries on outages and 5xx")
    # LiveKit needs a caller number on an outbound trunk: used when advanced.numbers is empty.
    livekit_default_number: str = Field(default="+10000000000", pattern=r"^\+[0-9]{1,15}$")
    # Names this deployment in the metadata of its LiveKit trunks: reconcile touches only those.
    livekit_owner: str = Field(default="sip-trunk-service", min_length=1, max_length=100)
    reconcile_interval_s: float = Field(default=300.0, ge=0, description="0: only on demand")
    # Fault injection for the crash test: exit right after a provider call, before the commit.
    fault_exit_after_provider_call: bool = False

    # Relay
    # Processed-command rows (the memory of effectively-once) are kept this long; keep it well
    # above the commands topic's retention, past which no redelivery can come.
    processed_retention_days: float = Field(default=30.0, gt=0)
    relay_batch_size: int = Field(default=500, ge=1)
    relay_poll_interval_s: float = Field(default=0.02, gt=0)

    # Gateway (REST API)
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=8080, ge=1, le=65535)
    gateway_reply_timeout_s: float = Field(default=10.0, gt=0, description="then 504")
    gateway_publish_timeout_s: float = Field(default=3.0, gt=0, description="then 503")
    # Once the headers are in, the whole body must arrive within this, or 408.
    gateway_body_timeout_s: float = Field(default=10.0, gt=0)
    # /docs, /redoc and /openapi.json: on in dev (dev/stack.sh), off unless asked for.
    gateway_api_docs: bool = False
    # HS256 secret of the API's bearer tokens; default: a dev secret generated once in data_dir.
    auth_jwt_secret: SecretStr | None = None

    # Logs
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap_servers(cls, value: str) -> str:
        return ",".join(_bootstrap_entries(value))

    @model_validator(mode="after")
    def _kafka_security(self) -> Settings:
        protocol = self.kafka_security_protocol
        sasl = protocol.startswith("SASL_")
        credentials = {
            "KAFKA_SASL_USERNAME": self.kafka_sasl_username,
            "KAFKA_SASL_PASSWORD": self.kafka_sasl_password,
        }
        if sasl and (missing := [name for name, value in credentials.items() if not value]):
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs {' and '.join(missing)}")
        if not sasl and (given := [name for name, value in credentials.items() if value]):
            # Credentials that would silently not be used: the process would not be who it thinks.
            raise ValueError(
                f"{' and '.join(given)} set, but KAFKA_SECURITY_PROTOCOL={protocol} does not "
                "authenticate: use SASL_PLAINTEXT or SASL_SSL"
            )
        files = {
            "KAFKA_SSL_CA_FILE": self.kafka_ssl_ca_file,
            "KAFKA_SSL_CERT_FILE": self.kafka_ssl_cert_file,
            "KAFKA_SSL_KEY_FILE": self.kafka_ssl_key_file,
        }
        given_files = {name: path for name, path in files.items() if path is not None}
        if given_files and not protocol.endswith("SSL"):
            raise ValueError(
                f"{' and '.join(given_files)} set, but KAFKA_SECURITY_PROTOCOL={protocol} does "
                "not use TLS: use SSL or SASL_SSL"
            )
        if (self.kafka_ssl_cert_file is None) != (self.kafka_ssl_key_file is None):
            raise ValueError("KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together")
        for name, path in given_files.items():
            if not path.is_file():
                raise ValueError(f"{name}={path}: no such file")
        return self

    @property
    def kafka_bootstrap_list(self) -> list[str]:
        """The bootstrap servers as a list: FastStream takes a comma string for one host."""
        return self.kafka_bootstrap_servers.split(",")  # normalised by the validator

    @cached_property
    def topics(self) -> Topics:
        return Topics.with_prefix(self.kafka_topic_prefix)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{(self.data_dir / 'sip_trunks.sqlite3').resolve()}"


def _bootstrap_entries(value: str) -> list[str]:
    """`host:port` entries of a comma-separated list, blanks around them stripped."""
    entries = [entry.strip() for entry in value.split(",")]
    if not all(entries):
        raise ValueError(f"empty entry in the bootstrap server list {value!r}")
    for entry in entries:
        host, colon, port = entry.rpartition(":")
        if not (colon and host and port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError(f"bootstrap server {entry!r} is not host:port")
        if any(c.isspace() for c in host):
            raise ValueError(f"bootstrap server {entry!r} contains a blank")
    return entries
