"""Retention: undelivered messages become tombstones until the sender is told.

Adds ``messages.expired_at`` (set when an unacknowledged message is deleted
for age: its text is cleared and the row stays only so the sender can be
told, and so a resend of the same ``client_msg_id`` is still recognised), and
the indexes the periodic purge needs.

Revision ID: 0002
Revises: 0001
Create Date: 2025-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("expired_at", sa.BigInteger))
    op.create_index("ix_messages_sent_at", "messages", ["sent_at"])
    op.create_index("ix_messages_expired_at", "messages", ["expired_at"])
    op.create_index("ix_sessions_last_used_at", "sessions", ["last_used_at"])


def downgrade() -> None:
    op.drop_index("ix_sessions_last_used_at", table_name="sessions")
    op.drop_index("ix_messages_expired_at", table_name="messages")
    op.drop_index("ix_messages_sent_at", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("expired_at")
