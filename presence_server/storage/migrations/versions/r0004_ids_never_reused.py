"""Ids are never reused: message ids and dev-login user ids only grow.

On SQLite the ``messages`` table is rebuilt with ``AUTOINCREMENT`` (the rows
are copied with their ids, so ``sqlite_sequence`` starts at today's highest
id); PostgreSQL already takes message ids from a sequence. The new
``id_counters`` table keeps the last dev-login user id handed out, starting
at today's highest. Ids used by rows deleted before this migration cannot be
known any more; from here on none is given twice.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DEV_ID_BASE = 2**52
"""As in ``presence_server.store`` (copied: a migration must not change when the code does)."""


def upgrade() -> None:
    counters = op.create_table(
        "id_counters",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_id_counters"),
    )
    bind = op.get_bind()
    highest = bind.execute(
        sa.text("SELECT max(id) FROM users WHERE id > :base"), {"base": DEV_ID_BASE}
    ).scalar()
    op.bulk_insert(counters, [{"name": "dev_user", "value": int(highest or DEV_ID_BASE)}])
    if bind.dialect.name == "sqlite":
        with op.batch_alter_table(
            "messages", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "messages", recreate="always", table_kwargs={"sqlite_autoincrement": False}
        ):
            pass
    op.drop_table("id_counters")
