"""Initial schema: users, sessions, friendships, requests, blocks, messages.

Revision ID: 0001
Revises:
Create Date: 2025-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("login", sa.String(39), nullable=False),
        sa.Column("login_lower", sa.String(39), nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("avatar_url", sa.String(1000)),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("last_seen", sa.BigInteger),
        sa.Column("status", sa.String(16), nullable=False, server_default="online"),
        sa.Column("status_until", sa.BigInteger),
        sa.Column("next_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("acked_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
    )
    op.create_index("ix_users_login_lower", "users", ["login_lower"])
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("device", sa.String(64), nullable=False, server_default=""),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_used_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_sessions_user_id_users"),
        sa.UniqueConstraint("token_hash", name="uq_sessions_token_hash"),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_table(
        "friendships",
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("friend_id", sa.BigInteger, nullable=False),
        sa.Column("since", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "friend_id", name="pk_friendships"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_friendships_user_id_users"),
        sa.ForeignKeyConstraint(["friend_id"], ["users.id"], name="fk_friendships_friend_id_users"),
    )
    op.create_table(
        "friend_requests",
        sa.Column("from_id", sa.BigInteger, nullable=False),
        sa.Column("to_id", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("from_id", "to_id", name="pk_friend_requests"),
        sa.ForeignKeyConstraint(["from_id"], ["users.id"], name="fk_friend_requests_from_id_users"),
        sa.ForeignKeyConstraint(["to_id"], ["users.id"], name="fk_friend_requests_to_id_users"),
    )
    op.create_index("ix_friend_requests_to_id", "friend_requests", ["to_id"])
    op.create_table(
        "blocks",
        sa.Column("blocker_id", sa.BigInteger, nullable=False),
        sa.Column("blocked_id", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("blocker_id", "blocked_id", name="pk_blocks"),
        sa.ForeignKeyConstraint(["blocker_id"], ["users.id"], name="fk_blocks_blocker_id_users"),
        sa.ForeignKeyConstraint(["blocked_id"], ["users.id"], name="fk_blocks_blocked_id_users"),
    )
    op.create_index("ix_blocks_blocked_id", "blocks", ["blocked_id"])
    op.create_table(
        "messages",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("sender_id", sa.BigInteger, nullable=False),
        sa.Column("recipient_id", sa.BigInteger, nullable=False),
        sa.Column("client_msg_id", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("sent_at", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.ForeignKeyConstraint(["sender_id"], ["users.id"], name="fk_messages_sender_id_users"),
        sa.ForeignKeyConstraint(
            ["recipient_id"], ["users.id"], name="fk_messages_recipient_id_users"
        ),
        sa.UniqueConstraint("sender_id", "client_msg_id", name="uq_messages_sender_client_msg"),
        sa.UniqueConstraint("recipient_id", "seq", name="uq_messages_recipient_seq"),
    )


def downgrade() -> None:
    op.drop_table("messages")
    op.drop_index("ix_blocks_blocked_id", table_name="blocks")
    op.drop_table("blocks")
    op.drop_index("ix_friend_requests_to_id", table_name="friend_requests")
    op.drop_table("friend_requests")
    op.drop_table("friendships")
    op.drop_index("ix_sessions_user_id", table_name="sessions")
    op.drop_table("sessions")
    op.drop_index("ix_users_login_lower", table_name="users")
    op.drop_table("users")
