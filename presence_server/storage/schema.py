"""The server's tables, as SQLAlchemy Core metadata.

Only portable column types and constraints are used, so the same schema (and
the same Alembic migrations) runs on SQLite and PostgreSQL. Timestamps are
integer Unix seconds, like on the wire.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""A 64-bit key; on SQLite an INTEGER PRIMARY KEY is what makes a rowid alias."""

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("login", sa.String(39), nullable=False),
    sa.Column("login_lower", sa.String(39), nullable=False, index=True),
    sa.Column("name", sa.String(255)),
    sa.Column("avatar_url", sa.String(1000)),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("last_seen", sa.BigInteger),
    sa.Column("status", sa.String(16), nullable=False, server_default="online"),
    sa.Column("status_until", sa.BigInteger),
    sa.Column("next_seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("acked_seq", sa.BigInteger, nullable=False, server_default="0"),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("device", sa.String(64), nullable=False, server_default=""),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("last_used_at", sa.BigInteger, nullable=False, index=True),
    sa.Column("revoked_at", sa.BigInteger),
)

friendships = sa.Table(
    "friendships",
    metadata,
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("friend_id", sa.BigInteger, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("since", sa.BigInteger, nullable=False),
)
"""Stored in both directions, so "friends of X" is one indexed lookup."""

friend_requests = sa.Table(
    "friend_requests",
    metadata,
    sa.Column("from_id", sa.BigInteger, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("to_id", sa.BigInteger, sa.ForeignKey("users.id"), primary_key=True, index=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

blocks = sa.Table(
    "blocks",
    metadata,
    sa.Column("blocker_id", sa.BigInteger, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("blocked_id", sa.BigInteger, sa.ForeignKey("users.id"), primary_key=True, index=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("sender_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("recipient_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("client_msg_id", sa.String(64), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("sent_at", sa.BigInteger, nullable=False, index=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("expired_at", sa.BigInteger, index=True),
    sa.UniqueConstraint("sender_id", "client_msg_id", name="uq_messages_sender_client_msg"),
    sa.UniqueConstraint("recipient_id", "seq", name="uq_messages_recipient_seq"),
    sqlite_autoincrement=True,
)
"""``expired_at`` marks a tombstone: an undelivered message deleted for age
(text cleared), kept until its sender acknowledges the ``message_expired``.

Ids are never handed out twice: a recipient that has seen one must never get
it for another message. On PostgreSQL the id comes from a sequence; on SQLite
``AUTOINCREMENT`` keeps the highest id ever used in ``sqlite_sequence``
(without it, SQLite gives the highest *existing* id + 1, so deleting the top
row — account deletion, the retention purge — reused its id)."""

id_counters = sa.Table(
    "id_counters",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)
"""The last id handed out per kind (``dev_user``): it only grows, so an id is
never given again after its row is deleted. Rows are allocated rarely (a new
dev login), so one counter row is no bottleneck."""

friend_request_times = sa.Table(
    "friend_request_times",
    metadata,
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("at_ms", sa.BigInteger, nullable=False, index=True),
    sa.Index("ix_friend_request_times_user_id", "user_id", "at_ms"),
)
"""When each user sent their recent ``friend_request``s (Unix milliseconds):
the hourly limit counts these rows, so it holds across instances."""
