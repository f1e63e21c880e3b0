"""Account export (everything the server holds about me) and account deletion."""

from __future__ import annotations

from pathlib import Path

from presence_protocol import (
    AccountExport,
    Ack,
    Auth,
    Block,
    CloseCode,
    DeleteAccount,
    Direction,
    Error,
    ErrorCode,
    ExportAccount,
    FriendRequest,
    Hello,
    Message,
    MessageSent,
    Relation,
    RelationUpdate,
    SendMessage,
    Snapshot,
    encode,
)
from presence_server import ServerLimits
from presence_server.domain.account import MESSAGES_PER_PAGE
from tests.server.client import Client, befriend, login_dev
from tests.support.servers import StartServer

from .conftest import rows

NO_RATE_LIMIT = ServerLimits(commands_per_minute=100_000)


async def export_all(client: Client) -> list[AccountExport]:
    pages: list[AccountExport] = []
    after: str | None = None
    while True:
        page = await client.request(ExportAccount(after=after))
        assert isinstance(page, AccountExport), page
        pages.append(page)
        if page.next is None:
            return pages
        after = page.next


async def test_export_holds_everything_about_me_and_nothing_secret(
    start: StartServer, db_path: Path
) -> None:
    server = await start(limits=NO_RATE_LIMIT)
    alice = await login_dev(server.url, "alice", "laptop")
    desktop = await login_dev(server.url, "alice", "desktop")
    bob = await login_dev(server.url, "bob")
    carol = await login_dev(server.url, "carol")
    dave = await login_dev(server.url, "dave")
    erin = await login_dev(server.url, "erin")
    mallory = await login_dev(server.url, "mallory")
    await befriend(alice, bob)
    await alice.ok(FriendRequest(login="carol"))  # outgoing
    await dave.ok(FriendRequest(login="alice"))  # incoming
    await alice.ok(Block(user_id=mallory.me))
    await mallory.ok(FriendRequest(login="alice"))  # hidden from alice, still about her
    await erin.ok(Block(user_id=alice.me))  # erin's secret: never in alice's export
    sent = MESSAGES_PER_PAGE + 20
    for i in range(sent):
        await alice.request(SendMessage(to=bob.me, text=f"a{i}", client_msg_id=f"a{i}"))
    for i in range(30):
        await bob.request(SendMessage(to=alice.me, text=f"b{i}", client_msg_id=f"b{i}"))
    await alice.barrier()
    await alice.send(Ack(seq=10))

    pages = await export_all(alice)
    assert len(pages) == 2
    assert all(len(encode(p)) < 400_000 for p in pages)
    account = pages[0].account
    assert account is not None and all(p.account is None for p in pages[1:])
    assert (account.user.id, account.user.login, account.kind) == (alice.me, "alice", "dev")
    assert [r.user.login for r in account.friends] == ["bob"]
    assert [r.user.login for r in account.outgoing] == ["carol"]
    assert [r.user.login for r in account.incoming] == ["dave", "mallory"]
    assert [r.user.login for r in account.blocked] == ["mallory"]
    assert {s.device for s in account.sessions} == {"laptop", "desktop"}
    assert [s.current for s in account.sessions if s.device == "laptop"] == [True]
    assert account.acked_seq == 10

    messages = [m for p in pages for m in p.messages]
    assert len({m.message_id for m in messages}) == len(messages) == sent + 30
    mine = [m for m in messages if m.direction is Direction.SENT]
    theirs = [m for m in messages if m.direction is Direction.RECEIVED]
    assert [m.text for m in mine] == [f"a{i}" for i in range(sent)]
    assert {m.peer for m in mine} == {m.peer for m in theirs} == {bob.me}
    assert [m.delivered for m in theirs] == [True] * 10 + [False] * 20

    # No token and no token hash is in the export; erin's block is not either.
    text = b"".join(encode(p) for p in pages).decode()
    hashes = [r[0] for r in rows(db_path, "SELECT token_hash FROM sessions")]
    for secret in [alice.session, desktop.session, *hashes]:
        assert secret and secret not in text
    assert "erin" not in text
    for client in (alice, desktop, bob, carol, dave, erin, mallory):
        await client.close()


async def test_export_page_cursor_is_validated(start: StartServer) -> None:
    server = await start()
    alice = await login_dev(server.url, "alice")
    for bad in ("abc", "-1", "1" * 19):
        error = await alice.error(ExportAccount(after=bad))
        assert error.code == ErrorCode.INVALID_MESSAGE
    await alice.close()


async def test_delete_needs_my_login_and_then_removes_everything(
    start: StartServer, db_path: Path
) -> None:
    server = await start()
    alice = await login_dev(server.url, "alice", "laptop")
    desktop = await login_dev(server.url, "alice", "desktop")
    bob = await login_dev(server.url, "bob")
    carol = await login_dev(server.url, "carol")
    erin = await login_dev(server.url, "erin")
    mallory = await login_dev(server.url, "mallory")
    await befriend(alice, bob)
    await carol.ok(FriendRequest(login="alice"))
    await alice.ok(Block(user_id=mallory.me))
    await erin.ok(Block(user_id=alice.me))
    reply = await alice.request(SendMessage(to=bob.me, text="bye", client_msg_id="x"))
    assert isinstance(reply, MessageSent)
    await bob.request(SendMessage(to=alice.me, text="wait", client_msg_id="y"))
    me = alice.me

    wrong = await alice.error(DeleteAccount(confirm_login="bob"))
    assert wrong.code == ErrorCode.CONFIRM_MISMATCH
    assert rows(db_path, "SELECT login FROM users WHERE id = ?", me) == [("alice",)]

    await alice.ok(DeleteAccount(confirm_login="ALICE"))
    assert await alice.closed() == CloseCode.ACCOUNT_DELETED
    assert await desktop.closed() == CloseCode.ACCOUNT_DELETED
    # Everyone who could see a relation with alice sees it end; mallory never knew.
    for other in (bob, carol, erin):
        gone = await other.expect(RelationUpdate, relation=Relation.NONE)
        assert gone.user.id == me
        await other.barrier()
    await mallory.barrier()
    assert mallory.take(RelationUpdate) == []

    # Not a row anywhere mentions her id, and her sessions are gone.
    for table, columns in {
        "users": ["id"],
        "sessions": ["user_id"],
        "friendships": ["user_id", "friend_id"],
        "friend_requests": ["from_id", "to_id"],
        "blocks": ["blocker_id", "blocked_id"],
        "messages": ["sender_id", "recipient_id"],
    }.items():
        for column in columns:
            assert rows(db_path, f"SELECT count(*) FROM {table} WHERE {column} = ?", me) == [(0,)]
    stale = await Client.open(server.url)
    await stale.expect(Hello)
    refused = await stale.request(Auth(session=alice.session or ""))
    assert isinstance(refused, Error) and refused.code == ErrorCode.AUTH_FAILED
    await stale.close()

    # Signing in again is a new, empty account; bob's list no longer has her.
    fresh = await login_dev(server.url, "alice")
    assert fresh.snapshot is not None
    assert (fresh.snapshot.friends, fresh.snapshot.incoming, fresh.snapshot.blocked) == ([], [], [])
    await fresh.barrier()
    assert fresh.take(Message) == []
    bob_again = await login_dev(server.url, "bob", "second")
    snapshot = bob_again.snapshot
    assert isinstance(snapshot, Snapshot) and snapshot.friends == []
    for client in (bob, carol, erin, mallory, fresh, bob_again):
        await client.close()
