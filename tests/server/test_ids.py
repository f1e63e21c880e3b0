"""Message and user ids are never handed out twice: not after the row with the
highest id is deleted (account deletion, the retention purge), and not after a
restart. A recipient that has seen an id must never get it for another message
(issue 14, point 1; issue 15, point 5)."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import create_async_engine

from presence_protocol import Ack, CloseCode, DeleteAccount, Message, MessageSent, SendMessage
from presence_server import RetentionPolicy, RunningServer
from presence_server.storage.database import _alembic_config, normalize_url
from presence_server.storage.store import DEV_ID_BASE
from tests.support.servers import Database, StartServer

from .client import Client, befriend, login_dev

POLICY = RetentionPolicy(
    delivered_messages=100, undelivered_messages=1000, idle_sessions=50_000, sweep_interval=3600
)


def later(server: RunningServer, monkeypatch: pytest.MonkeyPatch, offset: int) -> None:
    """From now on the server believes ``offset`` seconds have passed."""
    base = int(time.time())
    monkeypatch.setattr(server.hub, "now", lambda: base + offset)


async def send(client: Client, to: int, text: str, cmid: str) -> int:
    reply = await client.request(SendMessage(to=to, text=text, client_msg_id=cmid))
    assert isinstance(reply, MessageSent), reply
    return int(reply.message_id)


async def delete_account(client: Client) -> None:
    assert client.user is not None
    await client.ok(DeleteAccount(confirm_login=client.user.login))
    assert await client.closed() == CloseCode.ACCOUNT_DELETED


async def test_message_ids_survive_deletion_purge_and_restart(
    start: StartServer, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await start(retention=POLICY)
    carol = await login_dev(server.url, "carol")
    dave = await login_dev(server.url, "dave")
    erin = await login_dev(server.url, "erin")
    await befriend(dave, carol)
    await befriend(erin, carol)
    ids = [await send(erin, carol.me, "first", "e-1"), await send(dave, carol.me, "top", "d-1")]

    # The row with the highest id goes with dave's account.
    await delete_account(dave)
    ids.append(await send(erin, carol.me, "after the deletion", "e-2"))

    # Carol reads everything; the purge then empties the table.
    received = [await carol.expect(Message) for _ in ids]
    assert [m.message_id for m in received] == [str(i) for i in ids]
    await carol.send(Ack(seq=received[-1].seq))
    await carol.barrier()
    later(server, monkeypatch, 500)
    assert server.sweeper is not None
    await server.sweeper.run_once()
    assert await database.column("SELECT id FROM messages") == []
    ids.append(await send(erin, carol.me, "after the purge", "e-3"))
    last = await carol.expect(Message)
    assert last.message_id == str(ids[-1])
    await carol.send(Ack(seq=last.seq))
    await carol.barrier()
    later(server, monkeypatch, 1000)
    await server.sweeper.run_once()
    assert await database.column("SELECT id FROM messages") == []
    await erin.close()
    await carol.close()

    # And nothing is forgotten across a restart on an empty table.
    await server.stop()
    restarted = await start(retention=POLICY)
    erin = await login_dev(restarted.url, "erin")
    carol = await login_dev(restarted.url, "carol")
    ids.append(await send(erin, carol.me, "after the restart", "e-4"))
    assert ids == sorted(set(ids)), ids  # strictly increasing: none handed out twice
    await erin.close()
    await carol.close()


async def test_user_ids_are_not_reused_after_an_account_is_deleted(
    start: StartServer, database: Database
) -> None:
    server = await start()
    zed = await login_dev(server.url, "zed")
    gone = zed.me
    await delete_account(zed)
    yan = await login_dev(server.url, "yan")
    assert yan.me != gone
    again = await login_dev(server.url, "zed")  # the same login is a new account now
    assert again.me not in (gone, yan.me)
    await server.stop()
    restarted = await start()
    again = await login_dev(restarted.url, "zed")
    await delete_account(again)
    xia = await login_dev(restarted.url, "xia")
    assert xia.me > max(gone, yan.me, again.me)
    await xia.close()


async def test_a_database_from_before_keeps_its_rows_and_stops_reusing_ids(
    start: StartServer, database: Database
) -> None:
    """Migration 0004 on a database at 0003 that already holds users and messages."""
    engine = create_async_engine(normalize_url(database.url))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "0003"))
            for user_id, login in ((DEV_ID_BASE + 1, "amy"), (DEV_ID_BASE + 7, "ben")):
                await conn.execute(
                    sa.text(
                        "INSERT INTO users (id, kind, login, login_lower, created_at, updated_at,"
                        " status, next_seq, acked_seq) VALUES (:id, 'dev', :login, :login, 1, 1,"
                        " 'online', 0, 0)"
                    ),
                    {"id": user_id, "login": login},
                )
            await conn.execute(
                sa.text(
                    "INSERT INTO friendships (user_id, friend_id, since) VALUES"
                    " (:a, :b, 1), (:b, :a, 1)"
                ),
                {"a": DEV_ID_BASE + 1, "b": DEV_ID_BASE + 7},
            )
            for seq in (1, 2):
                await conn.execute(
                    sa.text(
                        "INSERT INTO messages (id, sender_id, recipient_id, client_msg_id, text,"
                        " sent_at, seq) VALUES (:id, :a, :b, :cmid, 'old', :now, :seq)"
                    ),
                    {
                        "id": 40 + seq,
                        "a": DEV_ID_BASE + 1,
                        "b": DEV_ID_BASE + 7,
                        "cmid": f"old-{seq}",
                        "seq": seq,
                        "now": int(time.time()),
                    },
                )
            await conn.execute(sa.text("UPDATE users SET next_seq = 2 WHERE login = 'ben'"))
            if database.backend == "postgresql":
                await conn.execute(sa.text("SELECT setval('messages_id_seq', 42)"))
    finally:
        await engine.dispose()

    server = await start()  # migrates to head
    assert await database.column("SELECT id FROM messages ORDER BY id") == [41, 42]
    amy = await login_dev(server.url, "amy")
    ben = await login_dev(server.url, "ben")
    assert (amy.me, ben.me) == (DEV_ID_BASE + 1, DEV_ID_BASE + 7)
    assert [m.message_id for m in [await ben.expect(Message), await ben.expect(Message)]] == [
        "41",
        "42",
    ]
    await delete_account(ben)  # takes the message with the highest id with it
    assert await database.column("SELECT id FROM messages") == []
    cat = await login_dev(server.url, "cat")
    assert cat.me == DEV_ID_BASE + 8  # above the highest id the old database had
    await befriend(amy, cat)
    assert await send(amy, cat.me, "new", "n-1") == 43
    await amy.close()
    await cat.close()
