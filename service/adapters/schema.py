"""The database schema (SQLAlchemy Core): one definition for SQLite and PostgreSQL.

Alembic migrations in `migrations/` create it; tests check the two agree.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)

__all__ = ["metadata", "outbox", "outbox_parked", "processed_commands", "sip_trunks"]

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
_BigId = BigInteger().with_variant(Integer(), "sqlite")

sip_trunks = Table(
    "sip_trunks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(255), nullable=True),
    Column("name", String(100), nullable=False),
    Column("gateways", JSON, nullable=False),
    Column("username", String(64), nullable=True),
    Column("password_encrypted", Text, nullable=True),
    Column("advanced", JSON, nullable=False),
    Column("is_system", Boolean, nullable=False),
    Column("provider_id", String(128), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
    Index("ix_sip_trunks_tenant_created", "tenant_id", "created_at"),
)

# Transactional outbox: rows written with the state change, published in `id` order by the relay.
outbox = Table(
    "outbox",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("topic", String(255), nullable=False),
    Column("key", String(255), nullable=False),
    Column("headers", JSON, nullable=False),
    Column("payload", LargeBinary, nullable=True),  # None: a tombstone
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Index(
        "ix_outbox_unsent",
        "id",
        sqlite_where=text("sent_at IS NULL"),
        postgresql_where=text("sent_at IS NULL"),
    ),
)

# Outbox rows the relay could not publish because their topic is gone and is not one of this
# deployment's (e.g. written before KAFKA_TOPIC_PREFIX changed): kept, with why, for an operator.
outbox_parked = Table(
    "outbox_parked",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=False),  # the row's id in the outbox
    Column("topic", String(255), nullable=False),
    Column("key", String(255), nullable=False),
    Column("headers", JSON, nullable=False),
    Column("payload", LargeBinary, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("parked_at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False),
)

# One row per applied command (source + id): a redelivery re-publishes the stored outcome.
processed_commands = Table(
    "processed_commands",
    metadata,
    Column("source", String(255), primary_key=True),
    Column("command_id", String(255), primary_key=True),
    Column("command_type", String(100), nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("outcome", JSON, nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False),
)
