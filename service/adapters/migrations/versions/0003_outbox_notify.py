"""outbox_notify: on PostgreSQL, an insert into the outbox notifies the relay at commit

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The channel is service/adapters/outbox_wakeup.CHANNEL; a migration keeps its own copy (frozen).
_CHANNEL = "sip_trunks_outbox"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: the relay watches the database's files instead
    op.execute(
        f"""
        CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{_CHANNEL}', '');
            RETURN NULL;
        END $$
        """
    )
    # Once per INSERT statement (a batch's rows are one statement), delivered at commit.
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER outbox_notify ON outbox")
    op.execute("DROP FUNCTION outbox_notify()")
