"""Friend relations: requests, mutual consent, removal and blocking.

Each operation is one write transaction that checks its preconditions and
returns the ``RelationUpdate`` notices it causes; a failed check raises
``CommandError`` and changes nothing.

Blocking is never revealed to the blocked person. What they can observe is
always something a non-block could also have caused: a friendship ending
looks like a removal, their request vanishing looks like a decline, and a
request they send later is answered ``ok`` and shown to them as pending
while the blocker never sees it (it surfaces if the blocker unblocks them).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from presence_protocol import ErrorCode, Relation

from ..storage.database import advisory_lock
from ..storage.schema import blocks, friend_requests, friendships, users
from ..storage.store import (
    USER_COLUMNS,
    CommandError,
    Store,
    UserRow,
    fetch_all,
    fetch_user,
    prepare,
    user_row,
    user_row_at,
)


@dataclasses.dataclass(frozen=True, slots=True)
class Notice:
    """``to`` must be told that its relation to ``about`` is now ``relation``."""

    to: int
    about: UserRow
    relation: Relation


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    notices: tuple[Notice, ...] = ()
    formed: tuple[int, int] | None = None
    """A friendship between these two users was just created."""
    ended: tuple[int, int] | None = None
    """A friendship between these two users just ended."""


@dataclasses.dataclass(frozen=True, slots=True)
class Relations:
    """What the snapshot lists for one user."""

    friends: list[UserRow]
    incoming: list[UserRow]
    outgoing: list[UserRow]
    blocked: list[UserRow]


def _error(code: ErrorCode, message: str) -> CommandError:
    return CommandError(code.value, message)


async def _exists(conn: AsyncConnection, query: sa.Select[tuple[int]]) -> bool:
    return (await conn.execute(query.limit(1))).first() is not None


async def _friends(conn: AsyncConnection, a: int, b: int) -> bool:
    return await _exists(
        conn,
        sa.select(friendships.c.user_id).where(
            friendships.c.user_id == a, friendships.c.friend_id == b
        ),
    )


async def _requested(conn: AsyncConnection, src: int, dst: int) -> bool:
    return await _exists(
        conn,
        sa.select(friend_requests.c.from_id).where(
            friend_requests.c.from_id == src, friend_requests.c.to_id == dst
        ),
    )


async def _blocks(conn: AsyncConnection, blocker: int, blocked: int) -> bool:
    return await _exists(
        conn,
        sa.select(blocks.c.blocker_id).where(
            blocks.c.blocker_id == blocker, blocks.c.blocked_id == blocked
        ),
    )


async def _count(conn: AsyncConnection, user_id: int) -> int:
    """Friends plus outgoing requests: what ``MAX_FRIENDS`` bounds."""
    friends = (
        await conn.execute(sa.select(sa.func.count()).where(friendships.c.user_id == user_id))
    ).scalar_one()
    outgoing = (
        await conn.execute(sa.select(sa.func.count()).where(friend_requests.c.from_id == user_id))
    ).scalar_one()
    return int(friends) + int(outgoing)


async def _check_limit(conn: AsyncConnection, user_id: int, max_friends: int) -> None:
    if await _count(conn, user_id) >= max_friends:
        raise _error(
            ErrorCode.FRIEND_LIMIT,
            f"friends plus pending requests are limited to {max_friends}",
        )


async def _user(conn: AsyncConnection, user_id: int) -> UserRow:
    row = await fetch_user(conn, user_id)
    if row is None:
        raise _error(ErrorCode.UNKNOWN_USER, f"no user with id {user_id}")
    return row


async def _by_login(conn: AsyncConnection, login: str) -> UserRow | None:
    """Logins are labels that can move between accounts; the freshest holder wins."""
    row = (
        await conn.execute(
            sa.select(*USER_COLUMNS)
            .where(users.c.login_lower == login.lower())
            .order_by(users.c.updated_at.desc(), users.c.id)
            .limit(1)
        )
    ).first()
    return user_row(row) if row else None


async def _befriend(conn: AsyncConnection, a: int, b: int, now: int) -> None:
    await conn.execute(
        sa.delete(friend_requests).where(
            sa.or_(
                sa.and_(friend_requests.c.from_id == a, friend_requests.c.to_id == b),
                sa.and_(friend_requests.c.from_id == b, friend_requests.c.to_id == a),
            )
        )
    )
    await conn.execute(
        sa.insert(friendships),
        [
            {"user_id": a, "friend_id": b, "since": now},
            {"user_id": b, "friend_id": a, "since": now},
        ],
    )


async def _unfriend(conn: AsyncConnection, a: int, b: int) -> None:
    await conn.execute(
        sa.delete(friendships).where(
            sa.or_(
                sa.and_(friendships.c.user_id == a, friendships.c.friend_id == b),
                sa.and_(friendships.c.user_id == b, friendships.c.friend_id == a),
            )
        )
    )


async def _delete_request(conn: AsyncConnection, src: int, dst: int) -> None:
    await conn.execute(
        sa.delete(friend_requests).where(
            friend_requests.c.from_id == src, friend_requests.c.to_id == dst
        )
    )


def _formed(me: UserRow, other: UserRow) -> Outcome:
    return Outcome(
        notices=(Notice(me.id, other, Relation.FRIEND), Notice(other.id, me, Relation.FRIEND)),
        formed=(me.id, other.id),
    )


async def find_login(store: Store, login: str) -> UserRow | None:
    async with store.read() as conn:
        return await _by_login(conn, login)


async def request(store: Store, me: int, other_id: int, now: int, max_friends: int) -> Outcome:
    """Ask someone to be friends; an existing request from them is accepted instead.

    Sending a request to someone you blocked unblocks them: the request says
    what the person wants now.
    """
    async with store.write() as conn:
        await advisory_lock(conn, me, other_id)
        mine = await _user(conn, me)
        other = await _user(conn, other_id)
        if other.id == me:
            raise _error(ErrorCode.SELF_REQUEST, "you cannot befriend yourself")
        if await _friends(conn, me, other.id):
            raise _error(ErrorCode.ALREADY_FRIENDS, f"you and {other.login} are already friends")
        if await _requested(conn, me, other.id):
            raise _error(ErrorCode.REQUEST_EXISTS, f"your request to {other.login} is pending")
        if await _blocks(conn, me, other.id):
            await conn.execute(
                sa.delete(blocks).where(blocks.c.blocker_id == me, blocks.c.blocked_id == other.id)
            )
        await _check_limit(conn, me, max_friends)
        if await _requested(conn, other.id, me):
            await _befriend(conn, me, other.id, now)
            return _formed(mine, other)
        await conn.execute(
            sa.insert(friend_requests).values(from_id=me, to_id=other.id, created_at=now)
        )
        notices = [Notice(me, other, Relation.OUTGOING)]
        if not await _blocks(conn, other.id, me):
            notices.append(Notice(other.id, mine, Relation.INCOMING))
        return Outcome(notices=tuple(notices))


async def accept(store: Store, me: int, other_id: int, now: int, max_friends: int) -> Outcome:
    async with store.write() as conn:
        await advisory_lock(conn, me, other_id)
        mine = await _user(conn, me)
        if not await _requested(conn, other_id, me) or await _blocks(conn, me, other_id):
            raise _error(ErrorCode.NO_REQUEST, "there is no request from this user to accept")
        other = await _user(conn, other_id)
        await _check_limit(conn, me, max_friends)
        await _befriend(conn, me, other_id, now)
        return _formed(mine, other)


async def decline(store: Store, me: int, other_id: int) -> Outcome:
    async with store.write() as conn:
        await advisory_lock(conn, me, other_id)
        mine = await _user(conn, me)
        if not await _requested(conn, other_id, me) or await _blocks(conn, me, other_id):
            raise _error(ErrorCode.NO_REQUEST, "there is no request from this user to decline")
        other = await _user(conn, other_id)
        await _delete_request(conn, other_id, me)
        return Outcome(
            notices=(Notice(me, other, Relation.NONE), Notice(other_id, mine, Relation.NONE))
        )


async def cancel(store: Store, me: int, other_id: int) -> Outcome:
    async with store.write() as conn:
        await advisory_lock(conn, me, other_id)
        mine = await _user(conn, me)
        if not await _requested(conn, me, other_id):
            raise _error(ErrorCode.NO_REQUEST, "you have no pending request to this user")
        other = await _user(conn, other_id)
        await _delete_request(conn, me, other_id)
        notices = [Notice(me, other, Relation.NONE)]
        if not await _blocks(conn, other_id, me):
            notices.append(Notice(other_id, mine, Relation.NONE))
        return Outcome(notices=tuple(notices))


async def remove(store: Store, me: int, other_id: int) -> Outcome:
    async with store.write() as conn:
        await advisory_lock(conn, me, other_id)
        mine = await _user(conn, me)
        if not await _friends(conn, me, other_id):
            raise _error(ErrorCode.NOT_FRIENDS, "this user is not your friend")
        other = await _user(conn, other_id)
        await _unfriend(conn, me, other_id)
        return Outcome(
            notices=(Notice(me, other, Relation.NONE), Notice(other_id, mine, Relation.NONE)),
            ended=(me, other_id),
        )


async def block(store: Store, me: int, other_id: int, now: int) -> Outcome:
    """Block: ends any friendship and request both ways. Blocking twice is a no-op."""
    async with store.write() as conn:
        await advisory_lock(conn, me, other_id)
        mine = await _user(conn, me)
        if other_id == me:
            raise _error(ErrorCode.SELF_REQUEST, "you cannot block yourself")
        other = await _user(conn, other_id)
        if await _blocks(conn, me, other_id):
            return Outcome()
        were_friends = await _friends(conn, me, other_id)
        they_see = (
            were_friends
            or await _requested(conn, me, other_id)
            or await _requested(conn, other_id, me)
        )
        await _unfriend(conn, me, other_id)
        await _delete_request(conn, me, other_id)
        await _delete_request(conn, other_id, me)
        await conn.execute(
            sa.insert(blocks).values(blocker_id=me, blocked_id=other_id, created_at=now)
        )
        notices = [Notice(me, other, Relation.BLOCKED)]
        if they_see:
            notices.append(Notice(other_id, mine, Relation.NONE))
        return Outcome(notices=tuple(notices), ended=(me, other_id) if were_friends else None)


async def unblock(store: Store, me: int, other_id: int) -> Outcome:
    """Unblock; a request they sent while blocked becomes visible as incoming."""
    async with store.write() as conn:
        await advisory_lock(conn, me, other_id)
        other = await _user(conn, other_id)
        if not await _blocks(conn, me, other_id):
            return Outcome()
        await conn.execute(
            sa.delete(blocks).where(blocks.c.blocker_id == me, blocks.c.blocked_id == other_id)
        )
        pending = await _requested(conn, other_id, me)
        return Outcome(
            notices=(Notice(me, other, Relation.INCOMING if pending else Relation.NONE),)
        )


async def relations(store: Store, me: int) -> Relations:
    return await store.run_read(lambda conn: read_relations(conn, me))


def _relations_query() -> sa.CompoundSelect[Any]:
    """Everyone a snapshot lists, tagged by list, in one statement (built once)."""
    me: sa.BindParameter[int] = sa.bindparam("me", type_=sa.BigInteger)
    blocked_by_me = sa.select(blocks.c.blocked_id).where(blocks.c.blocker_id == me)
    lists = (
        sa.select(friendships.c.friend_id).where(friendships.c.user_id == me),
        sa.select(friend_requests.c.from_id).where(
            friend_requests.c.to_id == me,
            friend_requests.c.from_id.not_in(blocked_by_me),
        ),
        sa.select(friend_requests.c.to_id).where(friend_requests.c.from_id == me),
        blocked_by_me,
    )
    return sa.union_all(
        *(
            sa.select(
                sa.literal_column(str(kind), sa.Integer).label("list_kind"), *USER_COLUMNS
            ).where(users.c.id.in_(ids))
            for kind, ids in enumerate(lists)
        )
    )


_RELATIONS = prepare(_relations_query())
"""Friends (0), incoming (1) and outgoing (2) requests, blocked (3)."""


def read_relations(conn: sa.Connection, me: int) -> Relations:
    """What the snapshot lists for ``me``, in one statement (a login reads it under a crowd)."""
    found: tuple[list[UserRow], ...] = ([], [], [], [])
    for row in fetch_all(conn, _RELATIONS, {"me": me}):
        found[row[0]].append(user_row_at(row, 1))
    # Sorted here, not in SQL: PostgreSQL collations would order hyphens
    # differently from SQLite, and clients should not care which database a
    # server runs on.
    for rows in found:
        rows.sort(key=lambda u: (u.login.lower(), u.id))
    return Relations(friends=found[0], incoming=found[1], outgoing=found[2], blocked=found[3])
