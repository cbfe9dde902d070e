"""Settings: every knob of the service, read from the environment (12-factor)."""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import SplitResult, urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sip_trunk_contracts import Topics
from sip_trunk_contracts.sealing import KEY_BYTES, base64_bytes, key_bytes

__all__ = ["MIN_HS256_SECRET_BYTES", "Settings", "TrustedProducer"]

MIN_HS256_SECRET_BYTES = 32


class TrustedProducer(BaseModel):
    """A producer whose signed commands act for `tenants` (`*`: any) under `sources`, which no
    one else may use (adapters/command_signatures.py)."""

    model_config = {"frozen": True, "populate_by_name": True}

    public_key: str = Field(alias="publicKey", description="Ed25519, base64")
    sources: list[str] = Field(min_length=1)
    tenants: list[str] = Field(min_length=1)

    @field_validator("public_key")
    @classmethod
    def _ed25519_key(cls, value: str) -> str:
        if not _is_32_bytes_base64(value):
            raise ValueError("an Ed25519 public key is 32 bytes (base64)")
        return value


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

    # Passwords on Kafka (CONTRACT §4.2), adapters/password_seal.py
    # The worker's X25519 private keys (base64), comma-separated, newest first: a command sealed
    # for any of them opens (key rotation). Default: a dev key generated once in data_dir.
    password_seal_private_key: SecretStr | None = None
    # What the gateway and the CLI seal with (base64); default: the newest private key's.
    password_seal_public_key: str | None = None
    # A plaintext password in a command is validation_failed unless this is true.
    accept_plaintext_passwords: bool = False

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
    # LiveKit calls of a batch in flight at once (one per trunk: a trunk's commands keep order).
    livekit_concurrency: int = Field(default=16, ge=1, le=256)
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

    # Gateway (REST API)
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=8080, ge=1, le=65535)
    gateway_reply_timeout_s: float = Field(default=10.0, gt=0, description="then 504")
    gateway_publish_timeout_s: float = Field(default=3.0, gt=0, description="then 503")
    # Once the headers are in, the whole body must arrive within this, or 408.
    gateway_body_timeout_s: float = Field(default=10.0, gt=0)
    # /docs, /redoc and /openapi.json: on in dev (dev/stack.sh), off unless asked for.
    gateway_api_docs: bool = False
    # HS256 secret of the API's bearer tokens; default: a dev secret generated once in data_dir,
    # unless an identity provider's key is set (gateway/auth.py states which tokens pass).
    auth_jwt_secret: SecretStr | None = None
    # An identity provider's RS256/ES256 keys: its JWKS (https; http only on the loopback) or a
    # PEM public key file, not both.
    auth_jwks_url: str | None = None
    auth_public_key_file: Path | None = None
    # The JWKS is kept this long; a token naming a kid it lacks has it refetched, at most once
    # per cooldown; a token whose key does not come within the timeout is refused.
    auth_jwks_lifespan_s: float = Field(default=300.0, gt=0)
    auth_jwks_cooldown_s: float = Field(default=30.0, ge=0)
    auth_jwks_timeout_s: float = Field(default=3.0, gt=0)
    # When set, every token must carry this `iss`, and name this audience in `aud`.
    auth_issuer: str | None = Field(default=None, min_length=1)
    auth_audience: str | None = Field(default=None, min_length=1)
    # The claims naming the caller's tenant (a string) and scopes (space-separated, or a list).
    auth_tenant_claim: str = Field(default="tenant", min_length=1)
    auth_scope_claim: str = Field(default="scope", min_length=1)
    # Clock skew allowed in `exp`, `nbf` and `iat` (an IdP's clock may run ahead of ours).
    auth_leeway_s: float = Field(default=0.0, ge=0, le=300)

    # Producers' signatures (adapters/command_signatures.py): who may act for which tenant.
    # The gateway's and CLI's Ed25519 key (base64 seed); default: a dev key in data_dir.
    command_signing_key: SecretStr | None = None
    # JSON list of {"publicKey", "sources", "tenants"}; default: the dev key, /gateway and /cli.
    trusted_producers: list[TrustedProducer] | None = None
    require_signed_commands: bool = False

    # Logs
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap_servers(cls, value: str) -> str:
        return ",".join(_bootstrap_entries(value))

    @field_validator("password_seal_private_key")
    @classmethod
    def _x25519_private_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            for n, entry in enumerate(value.get_secret_value().split(","), 1):
                try:
                    key_bytes(entry)
                except ValueError as exc:  # names the entry, never its value
                    raise ValueError(f"PASSWORD_SEAL_PRIVATE_KEY, key {n}: {exc}") from None
        return value

    @field_validator("password_seal_public_key")
    @classmethod
    def _x25519_public_key(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                key_bytes(value)
            except ValueError as exc:
                raise ValueError(f"PASSWORD_SEAL_PUBLIC_KEY: {exc}") from None
        return value

    @field_validator("command_signing_key")
    @classmethod
    def _ed25519_seed(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _is_32_bytes_base64(value.get_secret_value()):
            raise ValueError("COMMAND_SIGNING_KEY must be an Ed25519 seed: 32 bytes, base64")
        return value

    @field_validator("auth_jwt_secret")
    @classmethod
    def _hs256_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # RFC 7518 §3.2: an HS256 key at least as long as the hash (256 bits); a shorter one can
        # be guessed offline from any token.
        if value is not None and len(value.get_secret_value().encode()) < MIN_HS256_SECRET_BYTES:
            raise ValueError(
                f"AUTH_JWT_SECRET must have at least {MIN_HS256_SECRET_BYTES} bytes "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return value

    @field_validator("auth_jwks_url")
    @classmethod
    def _jwks_url(cls, value: str | None) -> str | None:
        url = urlsplit(value or "")
        if value is None or (url.hostname and (url.scheme == "https" or _loopback(url))):
            return value
        # Keys fetched over plain http could be swapped on the way.
        raise ValueError("AUTH_JWKS_URL must be an https URL (http only to the loopback)")

    @model_validator(mode="after")
    def _token_keys(self) -> Settings:
        if self.auth_jwks_url is not None and self.auth_public_key_file is not None:
            raise ValueError("set AUTH_JWKS_URL or AUTH_PUBLIC_KEY_FILE, not both")
        idp = self.auth_jwks_url is not None or self.auth_public_key_file is not None
        if (self.auth_issuer or self.auth_audience) and not (idp or self.auth_jwt_secret):
            # Not the dev secret, which whoever reads DATA_DIR can mint tokens with.
            raise ValueError(
                "AUTH_ISSUER or AUTH_AUDIENCE is set but no key to check tokens with: "
                "set AUTH_JWKS_URL, AUTH_PUBLIC_KEY_FILE or AUTH_JWT_SECRET"
            )
        return self

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
        if self.kafka_sasl_mechanism == "PLAIN" and protocol == "SASL_PLAINTEXT":
            # PLAIN sends the password as it is: on a connection without TLS, to any listener.
            raise ValueError(
                "KAFKA_SASL_MECHANISM=PLAIN sends the password in the clear: use it with "
                "KAFKA_SECURITY_PROTOCOL=SASL_SSL, or a SCRAM mechanism"
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


def _is_32_bytes_base64(text: str) -> bool:
    """`text` is base64 of 32 bytes: an Ed25519 key or seed (KEY_BYTES, as an X25519 key)."""
    try:
        return len(base64_bytes(text)) == KEY_BYTES
    except ValueError:
        return False


def _loopback(url: SplitResult) -> bool:
    if url.scheme != "http" or url.hostname is None:
        return False
    if url.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(url.hostname).is_loopback
    except ValueError:
        return False


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
