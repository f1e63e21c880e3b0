"""On every instance: a revoked session and a deleted account are gone at once.

Two real ``presence-server`` processes share PostgreSQL and Redis. Alice has
a device on each; the device on one instance revokes (or deletes the
account), and the device on the other instance must be closed within a
moment with the documented code, its token refused everywhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from presence_protocol import (
    CloseCode,
    DeleteAccount,
    Relation,
    RelationUpdate,
    RevokeSession,
    SignOut,
)
from tests.server.client import Client, befriend, login_dev
from tests.support.processes import ServerProcess, redis_cluster

from . import issued
from .test_sessions import try_token_at

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]
"""Revocation crosses instances by pub/sub (milliseconds); the client's 10 s hang
guard tells it from the hourly session sweep, the only other way it could close."""


@pytest.fixture
async def instances(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[list[ServerProcess]]:
    async with redis_cluster(tmp_path, 2, postgres_url, redis_url, redis_prefix) as servers:
        yield servers


async def signed_in(url: str, login: str, device: str) -> Client:
    client = await login_dev(url, login, device)
    issued.record(client.session)
    return client


async def test_a_session_revoked_on_one_instance_closes_on_the_other(
    instances: list[ServerProcess],
) -> None:
    one, two = instances
    laptop = await signed_in(one.url, "alice", "laptop")
    phone = await signed_in(two.url, "alice", "phone")
    tablet = await signed_in(two.url, "alice", "tablet")
    await laptop.ok(RevokeSession(session_id=phone.session_id or ""))
    assert await phone.closed() == CloseCode.SESSION_REVOKED
    for server in instances:
        assert await try_token_at(server.url, phone.session or "") == CloseCode.AUTH_FAILED
    assert not tablet.ws.close_code  # only that device
    await laptop.ok(SignOut(everywhere=True))
    assert await tablet.closed() == CloseCode.SESSION_REVOKED
    assert await laptop.closed() == CloseCode.SESSION_REVOKED


async def test_an_account_deleted_on_one_instance_is_gone_on_every_instance(
    instances: list[ServerProcess], postgres_url: str
) -> None:
    one, two = instances
    laptop = await signed_in(one.url, "alice", "laptop")
    phone = await signed_in(two.url, "alice", "phone")
    bob = await signed_in(two.url, "bob", "desktop")
    await befriend(laptop, bob)
    me = laptop.me
    await laptop.ok(DeleteAccount(confirm_login="alice"))
    assert await phone.closed() == CloseCode.ACCOUNT_DELETED
    assert await laptop.closed() == CloseCode.ACCOUNT_DELETED
    gone = await bob.expect(RelationUpdate, relation=Relation.NONE)
    assert gone.user.id == me
    for server in instances:
        for token in (laptop.session or "", phone.session or ""):
            assert await try_token_at(server.url, token) == CloseCode.AUTH_FAILED
    conn = await asyncpg.connect(postgres_url)
    try:
        for table, column in (
            ("users", "id"),
            ("sessions", "user_id"),
            ("friendships", "user_id"),
            ("friendships", "friend_id"),
            ("messages", "sender_id"),
        ):
            assert await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1", me) == 0
    finally:
        await conn.close()
    await bob.close()
