"""Account export and account deletion.

Export answers "what does this server hold about me": my user row, the
relations I can see plus the requests hidden from me by my own blocks, my
sessions (never their tokens, which the server does not have) and every
stored message I sent or received. Who blocked me is the blocker's data and
stays out, as everywhere else. Messages come in pages, so every frame stays
far below ``MAX_SERVER_FRAME_BYTES``.

Deletion removes the user row and everything that points at it in one
transaction, then tells everyone who could see a relation with me that it
is gone (``relation`` ``none``), and closes every connection of mine, on
every instance, with 4503 through the fan-out.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from presence_protocol import (
    AccountData,
    AccountExport,
    Direction,
    ErrorCode,
    ExportedMessage,
    ExportedRelation,
    SessionInfo,
)

from ..storage.database import advisory_lock
from ..storage.schema import (
    blocks,
    friend_request_times,
    friend_requests,
    friendships,
    messages,
    sessions,
    users,
)
from ..storage.store import USER_COLUMNS, CommandError, Store, UserRow, fetch_user, user_row

MESSAGES_PER_PAGE = 100
"""100 messages of at most 500 code points (up to 6 bytes each once JSON-escaped)
stay under 320 KB, a third of ``MAX_SERVER_FRAME_BYTES``."""


# ---------------------------------------------------------------- export


async def _related(conn: AsyncConnection, ids: sa.Select[Any]) -> list[ExportedRelation]:
    sub = ids.subquery()
    rows = await conn.execute(
        sa.select(*USER_COLUMNS, sub.c.since)
        .join(sub, users.c.id == sub.c.other)
        .order_by(users.c.login_lower, users.c.id)
    )
    return [ExportedRelation(user=user_row(r).wire(), since=r.since) for r in rows]


async def account_data(conn: AsyncConnection, me: UserRow, session_id: str | None) -> AccountData:
    created = (
        await conn.execute(sa.select(users.c.kind, users.c.created_at).where(users.c.id == me.id))
    ).one()
    friends = await _related(
        conn,
        sa.select(friendships.c.friend_id.label("other"), friendships.c.since.label("since")).where(
            friendships.c.user_id == me.id
        ),
    )
    incoming = await _related(
        conn,
        sa.select(
            friend_requests.c.from_id.label("other"), friend_requests.c.created_at.label("since")
        ).where(friend_requests.c.to_id == me.id),
    )
    outgoing = await _related(
        conn,
        sa.select(
            friend_requests.c.to_id.label("other"), friend_requests.c.created_at.label("since")
        ).where(friend_requests.c.from_id == me.id),
    )
    blocked = await _related(
        conn,
        sa.select(blocks.c.blocked_id.label("other"), blocks.c.created_at.label("since")).where(
            blocks.c.blocker_id == me.id
        ),
    )
    session_rows = await conn.execute(
        sa.select(sessions.c.id, sessions.c.device, sessions.c.created_at, sessions.c.last_used_at)
        .where(sessions.c.user_id == me.id, sessions.c.revoked_at.is_(None))
        .order_by(sessions.c.created_at, sessions.c.id)
    )
    return AccountData(
        user=me.wire(),
        kind=created.kind,
        created_at=created.created_at,
        status=me.status,
        status_until=me.status_until,
        last_seen=me.last_seen,
        acked_seq=me.acked_seq,
        friends=friends,
        incoming=incoming,
        outgoing=outgoing,
        blocked=blocked,
        sessions=[
            SessionInfo(
                id=r.id,
                device=r.device,
                created_at=r.created_at,
                last_used_at=r.last_used_at,
                current=r.id == session_id,
            )
            for r in session_rows
        ],
    )


async def export_page(
    store: Store, user_id: int, session_id: str | None, after: int | None, page: int
) -> AccountExport:
    """The account record (first page only) and up to ``page`` messages after ``after``."""
    async with store.read() as conn:
        me = await fetch_user(conn, user_id)
        if me is None:
            raise CommandError(ErrorCode.UNKNOWN_USER.value, "this account no longer exists")
        account = await account_data(conn, me, session_id) if after is None else None
        acked = sa.select(users.c.acked_seq).where(users.c.id == messages.c.recipient_id)
        rows = list(
            await conn.execute(
                sa.select(messages, acked.scalar_subquery().label("recipient_acked"))
                .where(
                    sa.or_(messages.c.sender_id == user_id, messages.c.recipient_id == user_id),
                    messages.c.id > (after or 0),
                )
                .order_by(messages.c.id)
                .limit(page + 1)
            )
        )
    more = len(rows) > page
    rows = rows[:page]
    exported = [
        ExportedMessage(
            message_id=str(r.id),
            direction=Direction.SENT if r.sender_id == user_id else Direction.RECEIVED,
            peer=r.recipient_id if r.sender_id == user_id else r.sender_id,
            text=r.text,
            sent_at=r.sent_at,
            seq=r.seq,
            delivered=r.expired_at is None and r.seq <= (r.recipient_acked or 0),
            expired_at=r.expired_at,
        )
        for r in rows
    ]
    return AccountExport(
        account=account,
        messages=exported,
        next=exported[-1].message_id if more and exported else None,
    )


# ---------------------------------------------------------------- deletion


@dataclasses.dataclass(frozen=True, slots=True)
class Deleted:
    user: UserRow
    tell: tuple[int, ...]
    """Users who could see a relation with the deleted account."""


async def _ids(conn: AsyncConnection, query: sa.Select[Any]) -> set[int]:
    return {int(uid) for uid in (await conn.execute(query)).scalars()}


async def related_ids(store: Store, me: int) -> set[int]:
    """Everyone with any stored relation to ``me`` (for locking, before deleting)."""
    async with store.read() as conn:
        return (
            await _ids(conn, sa.select(friendships.c.friend_id).where(friendships.c.user_id == me))
            | await _ids(
                conn, sa.select(friend_requests.c.to_id).where(friend_requests.c.from_id == me)
            )
            | await _ids(
                conn, sa.select(friend_requests.c.from_id).where(friend_requests.c.to_id == me)
            )
            | await _ids(conn, sa.select(blocks.c.blocker_id).where(blocks.c.blocked_id == me))
            | await _ids(conn, sa.select(blocks.c.blocked_id).where(blocks.c.blocker_id == me))
        )


async def delete(store: Store, me: int) -> Deleted | None:
    """Delete the user and every row about them; None if already gone."""
    async with store.write() as conn:
        await advisory_lock(conn, me)  # no friend change of mine runs meanwhile elsewhere
        user = await fetch_user(conn, me)
        if user is None:
            return None
        blocked_me = sa.select(blocks.c.blocker_id).where(blocks.c.blocked_id == me)
        # Who sees a relation with me: friends, anyone with a request from me
        # unless they blocked me, anyone I asked... (they see it as outgoing),
        # and whoever blocked me (they see me in their block list).
        tell = (
            await _ids(conn, sa.select(friendships.c.friend_id).where(friendships.c.user_id == me))
            | await _ids(
                conn,
                sa.select(friend_requests.c.to_id).where(
                    friend_requests.c.from_id == me, friend_requests.c.to_id.not_in(blocked_me)
                ),
            )
            | await _ids(
                conn, sa.select(friend_requests.c.from_id).where(friend_requests.c.to_id == me)
            )
            | await _ids(conn, blocked_me)
        )
        await conn.execute(
            sa.delete(friendships).where(
                sa.or_(friendships.c.user_id == me, friendships.c.friend_id == me)
            )
        )
        await conn.execute(
            sa.delete(friend_requests).where(
                sa.or_(friend_requests.c.from_id == me, friend_requests.c.to_id == me)
            )
        )
        await conn.execute(
            sa.delete(blocks).where(sa.or_(blocks.c.blocker_id == me, blocks.c.blocked_id == me))
        )
        await conn.execute(
            sa.delete(messages).where(
                sa.or_(messages.c.sender_id == me, messages.c.recipient_id == me)
            )
        )
        await conn.execute(sa.delete(sessions).where(sessions.c.user_id == me))
        await conn.execute(
            sa.delete(friend_request_times).where(friend_request_times.c.user_id == me)
        )
        await conn.execute(sa.delete(users).where(users.c.id == me))
        return Deleted(user=user, tell=tuple(sorted(tell)))
