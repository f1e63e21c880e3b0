"""An account too big for one frame: every item arrives, no frame exceeds the limit.

Incoming friend requests and blocks are not bounded by ``max_friends``, and a
user record with a long GitHub name and avatar URL takes kilobytes, so a
snapshot or the first export page could exceed ``max_server_frame_bytes``
(1 MiB): the server closed the connection with 1011 after the snapshot, and
answered the export with ``internal_error``, so such a user could neither
stay connected nor take their data away. Now the snapshot comes in parts and
export pages are cut by size (docs/protocol.md §1, §5).

The relations are written straight into the database (as many accounts as it
takes to pass 1 MiB would take minutes to sign up one by one); what is
checked is what a client sized as the protocol says receives.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from presence_protocol import (
    AccountExport,
    ErrorCode,
    ExportAccount,
    FriendRequest,
    MessageSent,
    Relation,
    RelationUpdate,
    SendMessage,
    Snapshot,
    SnapshotPart,
    encode,
    limits,
)
from presence_protocol.paging import join_export
from presence_server import ServerLimits
from presence_server.domain.account import parse_cursor
from presence_server.storage.database import normalize_url
from presence_server.storage.schema import blocks, friend_requests, friendships, messages, users
from presence_server.storage.store import CommandError
from tests.support.servers import Database, StartServer

from .client import Client, befriend, login_dev

LIMIT = limits.MAX_SERVER_FRAME_BYTES
WIDE_NAME = "語" * 255
"""The longest name the users table holds, three bytes a code point."""
LONG_AVATAR = "https://avatars.example/u/" + "9" * 974
"""The longest avatar URL the users table holds (1000 characters)."""
FIRST_ID = 10**12
WORST_TEXT = "\x01" * limits.MAX_MESSAGE_CHARS
"""A message whose every code point JSON-escapes to six bytes."""


async def seed(
    database: Database,
    me: int,
    *,
    friends: int = 0,
    incoming: int = 0,
    blocked: int = 0,
    received: int = 0,
) -> dict[str, set[int]]:
    """Wide users related to ``me`` (and ``received`` messages from the first
    friend, already acknowledged); returns the ids per relation."""
    now = 1_700_000_000
    ids = {
        "friends": set(range(FIRST_ID, FIRST_ID + friends)),
        "incoming": set(range(FIRST_ID + friends, FIRST_ID + friends + incoming)),
        "blocked": set(
            range(FIRST_ID + friends + incoming, FIRST_ID + friends + incoming + blocked)
        ),
    }
    everyone = sorted(set().union(*ids.values()))
    engine = create_async_engine(normalize_url(database.url))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(users),
                [
                    {
                        "id": uid,
                        "kind": "github",
                        "login": f"wide{uid - FIRST_ID}",
                        "login_lower": f"wide{uid - FIRST_ID}",
                        "name": WIDE_NAME,
                        "avatar_url": LONG_AVATAR,
                        "created_at": now,
                        "updated_at": now,
                        "last_seen": now,
                    }
                    for uid in everyone
                ],
            )
            pairs = [(me, f) for f in ids["friends"]] + [(f, me) for f in ids["friends"]]
            if pairs:
                await conn.execute(
                    sa.insert(friendships),
                    [{"user_id": a, "friend_id": b, "since": now} for a, b in pairs],
                )
            if ids["incoming"]:
                await conn.execute(
                    sa.insert(friend_requests),
                    [{"from_id": u, "to_id": me, "created_at": now} for u in ids["incoming"]],
                )
            if ids["blocked"]:
                await conn.execute(
                    sa.insert(blocks),
                    [
                        {"blocker_id": me, "blocked_id": u, "created_at": now}
                        for u in ids["blocked"]
                    ],
                )
            if received:
                sender = min(ids["friends"])
                await conn.execute(
                    sa.insert(messages),
                    [
                        {
                            "sender_id": sender,
                            "recipient_id": me,
                            "client_msg_id": f"seed{n}",
                            "text": WORST_TEXT,
                            "sent_at": now + n,
                            "seq": n,
                        }
                        for n in range(1, received + 1)
                    ],
                )
                await conn.execute(
                    sa.update(users)
                    .where(users.c.id == me)
                    .values(next_seq=received, acked_seq=received)
                )
    finally:
        await engine.dispose()
    return ids


async def test_a_snapshot_over_a_mebibyte_arrives_whole_in_frames_within_the_limit(
    start: StartServer, database: Database
) -> None:
    server = await start()
    first = await login_dev(server.url, "alice")
    # Friends alone pass 1 MiB, well within MAX_FRIENDS; requests and blocks add to it.
    ids = await seed(database, first.me, friends=600, incoming=100, blocked=60)
    await first.close()

    alice = await login_dev(server.url, "alice", max_size=LIMIT)  # sized as §1 says
    snapshot = alice.snapshot
    assert snapshot is not None
    assert {f.user.id for f in snapshot.friends} == ids["friends"]
    assert len(encode(Snapshot(me=snapshot.me, friends=snapshot.friends))) > LIMIT
    assert {u.id for u in snapshot.incoming} == ids["incoming"]
    assert {u.id for u in snapshot.blocked} == ids["blocked"]
    assert all(u.name == WIDE_NAME and u.avatar_url == LONG_AVATAR for u in snapshot.incoming)
    sizes = [len(frame.encode() if isinstance(frame, str) else frame) for frame in alice.raw]
    assert sum(sizes) > LIMIT  # it could not have been one frame
    assert max(sizes) <= LIMIT
    # The parts came back to back, and the connection carries on: a live delta follows.
    kinds = [f'"type":"{t}"' for t in ("snapshot", "snapshot_part")]
    parts = [n for n, frame in enumerate(alice.raw) if any(k in str(frame) for k in kinds)]
    assert len(parts) > 1 and parts == list(range(parts[0], parts[0] + len(parts)))
    bob = await login_dev(server.url, "bob")
    await bob.ok(FriendRequest(login="alice"))
    assert (await alice.expect(RelationUpdate)).relation == Relation.INCOMING
    assert alice.ws.close_code is None
    assert not alice.take(Snapshot) and not alice.take(SnapshotPart)
    await bob.close()
    await alice.close()


async def test_an_export_over_a_mebibyte_pages_by_size_and_misses_nothing(
    start: StartServer, database: Database
) -> None:
    server = await start()
    first = await login_dev(server.url, "alice")
    ids = await seed(database, first.me, friends=40, incoming=600, blocked=60, received=250)
    await first.close()

    alice = await login_dev(server.url, "alice", max_size=LIMIT)
    seen = len(alice.raw)
    pages: list[AccountExport] = []
    after: str | None = None
    while True:
        page = await alice.request(ExportAccount(after=after))
        assert isinstance(page, AccountExport), page
        pages.append(page)
        if page.next is None:
            break
        after = page.next
    account, exported = join_export(pages)
    assert account is not None
    assert [r.user.id for r in account.friends] == sorted(ids["friends"])
    assert [r.user.id for r in account.incoming] == sorted(ids["incoming"])
    assert [r.user.id for r in account.blocked] == sorted(ids["blocked"])
    assert len(account.sessions) == 2 and sum(s.current for s in account.sessions) == 1
    assert [m.seq for m in exported] == list(range(1, 251))  # each once, oldest first
    assert all(m.text == WORST_TEXT for m in exported)
    sizes = [len(frame) for frame in alice.raw[seen:]]
    assert sum(sizes) > LIMIT and max(sizes) <= LIMIT
    assert pages[1].account is None and pages[1].account_more is not None  # lists went on
    await alice.close()


async def test_export_pages_fit_a_small_announced_limit_too(start: StartServer) -> None:
    """Cut to what this server announces, whatever that is: here the smallest
    limit a server may announce (16 KiB), so 25 of the widest messages take
    many pages."""
    small = limits.MIN_SERVER_FRAME_BYTES
    shrunk = ServerLimits(commands_per_minute=100_000, max_server_frame_bytes=small)
    server = await start(limits=shrunk)
    alice = await login_dev(server.url, "alice")
    others: list[Client] = []
    for name in ("bob", "carol", "dave", "erin", "frank", "grace"):
        other = await login_dev(server.url, name)
        await other.ok(FriendRequest(login="alice"))
        others.append(other)
    bob = await login_dev(server.url, "bob2")
    await befriend(alice, bob)
    for n in range(25):
        sent = await bob.request(SendMessage(to=alice.me, text=WORST_TEXT, client_msg_id=f"m{n}"))
        assert isinstance(sent, MessageSent)
    await alice.barrier()
    seen = len(alice.raw)
    pages: list[AccountExport] = []
    after: str | None = None
    while True:
        page = await alice.request(ExportAccount(after=after))
        assert isinstance(page, AccountExport), page
        pages.append(page)
        if page.next is None:
            break
        after = page.next
    account, exported = join_export(pages)
    assert account is not None
    assert {r.user.login for r in account.incoming} == {o.user.login for o in others if o.user}
    assert len(exported) == 25 and len(pages) >= 5
    assert max(len(frame) for frame in alice.raw[seen:]) <= small
    for client in (*others, bob, alice):
        await client.close()


@pytest.mark.parametrize("cursor", ["0", "1187", "9" * 18, "f", "f12", "i4503599627370777", "o1",
                                    "b77", "s", "s9f2c4e0b1a7d3e55"])  # fmt: skip
def test_every_next_the_server_makes_reads_back_as_itself(cursor: str) -> None:
    parsed = parse_cursor(cursor)
    assert not parsed.first
    assert parsed.text() == ("0" if cursor == "0" else cursor)


@pytest.mark.parametrize(
    "bad", ["", "abc", "-1", "1" * 19, "x1", "F1", "f-1", "f" + "1" * 19, "sXYZ", "\u0663", "i 1"]
)
def test_a_cursor_of_neither_shape_is_invalid_message(bad: str) -> None:
    with pytest.raises(CommandError) as err:
        parse_cursor(bad)
    assert err.value.code == ErrorCode.INVALID_MESSAGE.value
