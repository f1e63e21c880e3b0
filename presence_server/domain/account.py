"""Account export and account deletion.

Export answers "what does this server hold about me": my user row, the
relations I can see plus the requests hidden from me by my own blocks, my
sessions (never their tokens, which the server does not have) and every
stored message I sent or received. Who blocked me is the blocker's data and
stays out, as everywhere else. The export comes in pages cut by encoded
size, so that no frame exceeds ``max_server_frame_bytes`` however many
relations, sessions and messages there are: the account's lists continue on
the next page when they do not fit (``account_more``), and the messages
follow, at most ``MESSAGES_PER_PAGE`` a page.

Deletion removes the user row and everything that points at it in one
transaction, then tells everyone who could see a relation with me that it
is gone (``relation`` ``none``), and closes every connection of mine, on
every instance, with 4503 through the fan-out.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from presence_protocol import (
    AccountData,
    AccountExport,
    AccountLists,
    Direction,
    ErrorCode,
    ExportedMessage,
    ExportedRelation,
    RequestId,
    SessionInfo,
    limits,
)
from presence_protocol.paging import ACCOUNT_LISTS, Budget, item_size

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
"""At most this many messages per page; pages are also cut by encoded size."""
_BATCH = 500
"""Rows read at once while a page fills (a page may take thousands of relations)."""
_MESSAGES = len(ACCOUNT_LISTS)
"""The section after the account's lists: the messages."""
_LETTERS = "fiobs"
"""A cursor's first letter names the account list it continues (ACCOUNT_LISTS order)."""
_CURSOR = re.compile(r"(?:([fiob])([0-9]{0,18})|(s)([0-9a-f]{0,32})|([0-9]{1,18}))")


# ---------------------------------------------------------------- export


@dataclasses.dataclass(frozen=True, slots=True)
class Cursor:
    """Where an export page starts: a section and the key of the last entry sent."""

    section: int = 0
    """An index of ``ACCOUNT_LISTS``, or ``_MESSAGES``."""
    after: int | str | None = None
    """Key of the last entry already sent in that section; None: from its start."""
    first: bool = True
    """The first page: it carries the account record itself."""

    def text(self) -> str:
        """As ``next`` says it: a message id, or a list letter and a key."""
        if self.section == _MESSAGES:
            return str(self.after or 0)
        return _LETTERS[self.section] + ("" if self.after is None else str(self.after))


def parse_cursor(after: str | None) -> Cursor:
    """The cursor ``export_account.after`` names; ``CommandError`` if it is no cursor.

    A ``next`` is a message id (decimal, as before account lists could span
    pages) or a list letter and the key of the last entry sent (a user id; a
    session id for ``s``). Any value of that shape works: it only selects
    among the caller's own data.
    """
    if after is None:
        return Cursor()
    match = _CURSOR.fullmatch(after)
    if match is None:
        raise CommandError(
            ErrorCode.INVALID_MESSAGE.value, "export_account: after must be a page's next"
        )
    relation, user_key, _, session_key, message_id = match.groups()
    if message_id is not None:
        return Cursor(_MESSAGES, int(message_id), first=False)
    if relation is not None:
        return Cursor(_LETTERS.index(relation), int(user_key) if user_key else None, first=False)
    return Cursor(_LETTERS.index("s"), session_key or None, first=False)


_RELATIONS: dict[str, tuple[sa.Table, str, str, str]] = {
    # list: (table, column naming me, column naming the other, column of "since")
    "friends": (friendships, "user_id", "friend_id", "since"),
    "incoming": (friend_requests, "to_id", "from_id", "created_at"),
    "outgoing": (friend_requests, "from_id", "to_id", "created_at"),
    "blocked": (blocks, "blocker_id", "blocked_id", "created_at"),
}


async def _section(
    conn: AsyncConnection, me: int, name: str, after: int | str | None, session_id: str | None
) -> list[tuple[int | str, ExportedRelation | SessionInfo]]:
    """Up to ``_BATCH`` entries of one account list after key ``after``, in key order.

    Keys (user ids; session ids) rather than offsets, so a list that changes
    between two pages neither repeats nor skips an entry that stayed.
    """
    if name == "sessions":
        query = (
            sa.select(
                sessions.c.id, sessions.c.device, sessions.c.created_at, sessions.c.last_used_at
            )
            .where(sessions.c.user_id == me, sessions.c.revoked_at.is_(None))
            .order_by(sessions.c.id)
            .limit(_BATCH)
        )
        if after is not None:
            query = query.where(sessions.c.id > str(after))
        return [
            (
                r.id,
                SessionInfo(
                    id=r.id,
                    device=r.device,
                    created_at=r.created_at,
                    last_used_at=r.last_used_at,
                    current=r.id == session_id,
                ),
            )
            for r in await conn.execute(query)
        ]
    table, mine, other, since = _RELATIONS[name]
    relation = (
        sa.select(*USER_COLUMNS, table.c[since].label("since"))
        .select_from(users.join(table, users.c.id == table.c[other]))
        .where(table.c[mine] == me)
        .order_by(users.c.id)
        .limit(_BATCH)
    )
    if after is not None:
        relation = relation.where(users.c.id > int(after))
    return [
        (r.id, ExportedRelation(user=user_row(r).wire(), since=r.since))
        for r in await conn.execute(relation)
    ]


async def _header(conn: AsyncConnection, me: UserRow) -> AccountData:
    """The account record without its lists (they follow, as far as the page allows)."""
    created = (
        await conn.execute(sa.select(users.c.kind, users.c.created_at).where(users.c.id == me.id))
    ).one()
    return AccountData(
        user=me.wire(),
        kind=created.kind,
        created_at=created.created_at,
        status=me.status,
        status_until=me.status_until,
        last_seen=me.last_seen,
        acked_seq=me.acked_seq,
    )


_LONGEST_NEXT = "s" + "f" * 32
"""A page is sized as if its ``next`` were the longest a cursor can be."""


async def export_page(
    store: Store,
    user_id: int,
    session_id: str | None,
    cursor: Cursor,
    *,
    request_id: RequestId | None = None,
    max_bytes: int = limits.MAX_SERVER_FRAME_BYTES,
    per_page: int = MESSAGES_PER_PAGE,
) -> AccountExport:
    """One page of the export, starting at ``cursor``, encoded in at most ``max_bytes``.

    The account record comes first (first page), its lists as far as they fit
    and continued as ``account_more`` on the next pages, then the messages,
    oldest first, at most ``per_page`` a page. ``request_id`` is the one the
    reply will echo: it counts towards the size.
    """
    page = AccountExport(id=request_id)
    async with store.read() as conn:
        me = await fetch_user(conn, user_id)
        if me is None:
            raise CommandError(ErrorCode.UNKNOWN_USER.value, "this account no longer exists")
        lists: AccountData | AccountLists | None = None
        if cursor.first:
            lists = page.account = await _header(conn, me)
        elif cursor.section < _MESSAGES:
            lists = page.account_more = AccountLists()
        budget = Budget(
            max_bytes,
            msgspec.structs.replace(page, next=_LONGEST_NEXT),
            (*ACCOUNT_LISTS, "messages"),
        )
        section, after = cursor.section, cursor.after
        while section < _MESSAGES:
            name = ACCOUNT_LISTS[section]
            entries = await _section(conn, user_id, name, after, session_id)
            for key, entry in entries:
                if not budget.take(item_size(entry)):
                    return _cut(page, budget, Cursor(section, after, first=False))
                assert lists is not None
                getattr(lists, name).append(entry)
                after = key
            if len(entries) < _BATCH:
                section, after = section + 1, None
        start = int(after or 0)
        acked = sa.select(users.c.acked_seq).where(users.c.id == messages.c.recipient_id)
        rows = list(
            await conn.execute(
                sa.select(messages, acked.scalar_subquery().label("recipient_acked"))
                .where(
                    sa.or_(messages.c.sender_id == user_id, messages.c.recipient_id == user_id),
                    messages.c.id > start,
                )
                .order_by(messages.c.id)
                .limit(per_page + 1)
            )
        )
    for r in rows[:per_page]:
        exported = ExportedMessage(
            message_id=str(r.id),
            direction=Direction.SENT if r.sender_id == user_id else Direction.RECEIVED,
            peer=r.recipient_id if r.sender_id == user_id else r.sender_id,
            text=r.text,
            sent_at=r.sent_at,
            seq=r.seq,
            delivered=r.expired_at is None and r.seq <= (r.recipient_acked or 0),
            expired_at=r.expired_at,
        )
        if not budget.take(item_size(exported)):
            return _cut(page, budget, Cursor(_MESSAGES, start, first=False))
        page.messages.append(exported)
        start = r.id
    if len(rows) > per_page:
        page.next = Cursor(_MESSAGES, start, first=False).text()
    return page


def _cut(page: AccountExport, budget: Budget, resume: Cursor) -> AccountExport:
    """The page is full: it ends here and ``next`` resumes at ``resume``."""
    if budget.items == 0:  # one entry alone exceeds a frame: no page can carry it
        raise CommandError(
            ErrorCode.INTERNAL_ERROR.value, "an export entry exceeds the frame limit"
        )
    page.next = resume.text()
    return page


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
