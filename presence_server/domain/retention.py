"""What the server keeps, and for how long.

The server is a relay, not an archive. A periodic sweep enforces
``RetentionPolicy``. Every instance runs one on its own schedule; on
PostgreSQL they take turns: a sweep first tries the advisory lock
``RETENTION_LOCK`` and, if another instance holds it, skips that round (the
other is doing the same work). Two sweeps at once would otherwise cross:
each records its own connected sessions as used, then deletes idle sessions,
the other's among them, and the database aborts one as a deadlock. Taking
turns also means each expired message is reported by exactly one instance
(the ``expired_at IS NULL`` guard keeps sweeps one after another from
repeating it). SQLite has a single server process and needs no lock.

* A message its recipient acknowledged is deleted ``delivered_messages``
  after it was sent: the recipient's devices hold it now.
* A message never acknowledged is deleted ``undelivered_messages`` after it
  was sent. Its text is cleared at once; the row stays as a tombstone only so
  that the sender can be told (``message_expired``, live and after each
  login) and so a resend of its ``client_msg_id`` is still recognised. The
  tombstone goes when the sender acknowledges the notice (``ack_expired``), or
  after another ``undelivered_messages`` period if they never come back.
* A session unused for ``idle_sessions`` stops working at once (checked at
  sign-in) and is deleted by the sweep, as are revoked sessions. Sessions with
  a live connection on this instance count as used at every sweep.
* Last seen is a single timestamp per user, overwritten, never a history.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from presence_protocol import MessageExpired

from ..storage.database import RETENTION_LOCK, advisory_lock
from ..storage.schema import friend_request_times, messages, sessions, users
from ..storage.store import Store, fetch_all, prepare

if TYPE_CHECKING:
    from ..config import RetentionPolicy

log = logging.getLogger(__name__)

CHUNK = 500
"""Ids per statement, far below every database's bound-parameter limit."""

MAX_NOTICES_PER_LOGIN = 500


@dataclasses.dataclass(frozen=True, slots=True)
class Expired:
    """An undelivered message that was just deleted; its sender must be told."""

    message_id: int
    sender_id: int
    recipient_id: int
    client_msg_id: str
    sent_at: int
    expired_at: int

    def notice(self) -> MessageExpired:
        return MessageExpired(
            message_id=str(self.message_id),
            client_msg_id=self.client_msg_id,
            to=self.recipient_id,
            sent_at=self.sent_at,
            expired_at=self.expired_at,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class SweepResult:
    delivered_deleted: int = 0
    expired: tuple[Expired, ...] = ()
    tombstones_deleted: int = 0
    sessions_deleted: int = 0


def _acked_seq_of_recipient() -> sa.ScalarSelect[int]:
    return (
        sa.select(users.c.acked_seq).where(users.c.id == messages.c.recipient_id).scalar_subquery()
    )


async def _touch(
    conn: AsyncConnection, session_ids: list[str], now: int, *, skip_locked: bool = False
) -> None:
    """Record sessions as used. ``skip_locked`` (PostgreSQL) passes over rows
    another transaction holds instead of waiting, so a touch beside another
    instance's sweep never waits on it and cannot deadlock with it."""
    for start in range(0, len(session_ids), CHUNK):
        chunk = sessions.c.id.in_(session_ids[start : start + CHUNK])
        if skip_locked:
            chunk = sessions.c.id.in_(
                sa.select(sessions.c.id).where(chunk).with_for_update(skip_locked=True)
            )
        await conn.execute(sa.update(sessions).where(chunk).values(last_used_at=now))


async def sweep(
    store: Store, policy: RetentionPolicy, now: int, live_sessions: frozenset[str] = frozenset()
) -> SweepResult | None:
    """Apply the policy once, as of ``now``, in one transaction; None if another
    instance's sweep holds the turn."""
    async with store.write() as conn:
        if await advisory_lock(conn, RETENTION_LOCK, wait=False):
            await _touch(conn, sorted(live_sessions), now)
            return await _purge(conn, policy, now)
        # Not our turn, but our connected sessions still count as used (the
        # other instance cannot know them). A row its sweep is deleting right
        # now is left to it: it was idle before this round.
        await _touch(conn, sorted(live_sessions), now, skip_locked=True)
    return None


async def _purge(conn: AsyncConnection, policy: RetentionPolicy, now: int) -> SweepResult:
    sessions_deleted = (
        await conn.execute(
            sa.delete(sessions).where(
                sa.or_(
                    sessions.c.revoked_at.is_not(None),
                    sessions.c.last_used_at < now - policy.idle_sessions,
                )
            )
        )
    ).rowcount
    delivered = (
        await conn.execute(
            sa.delete(messages).where(
                messages.c.expired_at.is_(None),
                messages.c.sent_at < now - policy.delivered_messages,
                messages.c.seq <= _acked_seq_of_recipient(),
            )
        )
    ).rowcount
    expired_rows = await conn.execute(
        sa.update(messages)
        .where(
            messages.c.expired_at.is_(None),
            messages.c.sent_at < now - policy.undelivered_messages,
            messages.c.seq > _acked_seq_of_recipient(),
        )
        .values(expired_at=now, text="")
        .returning(
            messages.c.id,
            messages.c.sender_id,
            messages.c.recipient_id,
            messages.c.client_msg_id,
            messages.c.sent_at,
        )
    )
    expired = tuple(
        Expired(r.id, r.sender_id, r.recipient_id, r.client_msg_id, r.sent_at, now)
        for r in expired_rows
    )
    tombstones = (
        await conn.execute(
            sa.delete(messages).where(messages.c.expired_at < now - policy.undelivered_messages)
        )
    ).rowcount
    # Friend-request times only matter for an hour (the rate limit's window).
    await conn.execute(
        sa.delete(friend_request_times).where(friend_request_times.c.at_ms < (now - 3600) * 1000)
    )
    return SweepResult(
        delivered_deleted=delivered,
        expired=expired,
        tombstones_deleted=tombstones,
        sessions_deleted=sessions_deleted,
    )


_PENDING_NOTICES = prepare(
    sa.select(
        messages.c.id,
        messages.c.sender_id,
        messages.c.recipient_id,
        messages.c.client_msg_id,
        messages.c.sent_at,
        messages.c.expired_at,
    )
    .where(messages.c.sender_id == sa.bindparam("sender_id"), messages.c.expired_at.is_not(None))
    .order_by(messages.c.id)
    .limit(sa.bindparam("limit", type_=sa.Integer))
)
"""Built once: every login reads it."""


def read_pending_notices(conn: sa.Connection, sender_id: int, limit: int) -> list[MessageExpired]:
    """Expiry notices the sender has not acknowledged yet, oldest first (read at login)."""
    rows = fetch_all(conn, _PENDING_NOTICES, {"sender_id": sender_id, "limit": limit})
    return [Expired(*r).notice() for r in rows]


async def forget_notices(store: Store, sender_id: int, message_ids: list[int]) -> None:
    """The sender acknowledged these notices; durable like every write a user makes."""

    async def forget() -> None:
        async with store.write() as conn:
            await conn.execute(
                sa.delete(messages).where(
                    messages.c.sender_id == sender_id,
                    messages.c.id.in_(message_ids),
                    messages.c.expired_at.is_not(None),
                )
            )

    await store.finish(forget())
