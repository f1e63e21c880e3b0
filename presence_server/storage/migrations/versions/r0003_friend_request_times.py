"""Friend-request times: the hourly limit holds per user across instances.

One row per ``friend_request`` a user sent within the last hour (older rows
are pruned as the user sends more, and by the retention sweep). No foreign
key: the rows are only counted, and account deletion removes them too.

Revision ID: 0003
Revises: 0002
Create Date: 2025-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "friend_request_times",
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_friend_request_times_user_id", "friend_request_times", ["user_id", "at_ms"])
    op.create_index("ix_friend_request_times_at_ms", "friend_request_times", ["at_ms"])


def downgrade() -> None:
    op.drop_index("ix_friend_request_times_at_ms", table_name="friend_request_times")
    op.drop_index("ix_friend_request_times_user_id", table_name="friend_request_times")
    op.drop_table("friend_request_times")
