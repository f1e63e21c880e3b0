"""A small real-websockets client for server tests.

Frames are read by a background task into a backlog; ``expect`` takes the
first frame of a type (leaving the others for later assertions), so tests
wait on frames, never on time. ``barrier`` proves that nothing else is on its
way: the server answers a connection's commands in order, and a fan-out made
by another client's command is queued before that command's reply, so after
"other client got its reply, then this client got a reply to its own
command", everything addressed to this client has arrived.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from presence_protocol import (
    AnyServerMessage,
    AuthOk,
    ClientMessage,
    Error,
    Hello,
    ListSessions,
    LoginDev,
    PresenceUpdate,
    SeenStatus,
    Sessions,
    Snapshot,
    SnapshotPart,
    User,
    decode_server,
    encode_text,
    limits,
)
from presence_protocol.paging import SnapshotAssembler

T = TypeVar("T")
TIMEOUT = 30.0
"""Hang guard for one reply or frame (milliseconds on a quiet machine). Not a
speed bound: fifty logins at once on a busy two-core machine took over 10 s."""


class Client:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.backlog: list[AnyServerMessage] = []
        self.raw: list[str | bytes] = []
        self._arrived = asyncio.Condition()
        self._ids = itertools.count(1)
        self._reader = asyncio.create_task(self._read())
        self.user: User | None = None
        self.session: str | None = None
        self.session_id: str | None = None
        self.snapshot: Snapshot | None = None

    @classmethod
    async def open(
        cls, url: str, subprotocols: Sequence[str] | None = (limits.SUBPROTOCOL,), **kwargs: Any
    ) -> Client:
        """Connect; ``subprotocols=None`` offers none (like a plain websocket tool)."""
        ws = await connect(
            url,
            subprotocols=None if subprotocols is None else list(subprotocols),  # type: ignore[misc]
            open_timeout=TIMEOUT,
            **kwargs,
        )
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                self.raw.append(data)
                message = decode_server(data)
                async with self._arrived:
                    self.backlog.append(message)
                    self._arrived.notify_all()
        except ConnectionClosed:
            pass
        finally:
            async with self._arrived:
                self._arrived.notify_all()

    @property
    def me(self) -> int:
        assert self.user is not None
        return self.user.id

    def next_id(self) -> int:
        return next(self._ids)

    async def send(self, message: ClientMessage | str | bytes) -> None:
        if isinstance(message, ClientMessage):
            await self.ws.send(encode_text(message))
        else:
            await self.ws.send(message)

    async def expect(self, kind: type[T], *, within: float = TIMEOUT, **fields: Any) -> T:
        """The first frame of ``kind`` matching ``fields``, removed from the backlog.
        ``within`` is a hang guard, not a speed bound."""

        def find() -> T | None:
            for i, message in enumerate(self.backlog):
                if isinstance(message, kind) and all(
                    getattr(message, k) == v for k, v in fields.items()
                ):
                    del self.backlog[i]
                    return message
            return None

        async with asyncio.timeout(within):
            async with self._arrived:
                while True:
                    found = find()
                    if found is not None:
                        return found
                    if self._reader.done():
                        raise AssertionError(
                            f"connection closed ({self.ws.close_code}) before "
                            f"{kind.__name__} {fields}; backlog {self.backlog}"
                        )
                    await self._arrived.wait()

    async def request(self, message: ClientMessage) -> AnyServerMessage:
        """Send a command with a fresh id and return the reply carrying that id."""
        rid = self.next_id()
        message.id = rid
        await self.send(message)
        return await self._reply(rid)

    async def _reply(self, rid: int) -> AnyServerMessage:
        async with asyncio.timeout(TIMEOUT):
            async with self._arrived:
                while True:
                    for i, message in enumerate(self.backlog):
                        if getattr(message, "id", None) == rid and not isinstance(
                            message, Hello | Snapshot
                        ):
                            del self.backlog[i]
                            return message
                    if self._reader.done():
                        raise AssertionError(
                            f"connection closed ({self.ws.close_code}) before reply {rid}"
                        )
                    await self._arrived.wait()

    async def ok(self, message: ClientMessage) -> None:
        reply = await self.request(message)
        assert type(reply).__name__ == "Ok", reply

    async def error(self, message: ClientMessage) -> Error:
        reply = await self.request(message)
        assert isinstance(reply, Error), reply
        return reply

    async def barrier(self) -> None:
        """Wait until everything the server queued for us so far has arrived."""
        reply = await self.request(ListSessions())
        assert isinstance(reply, Sessions), reply

    def take(self, kind: type[T]) -> list[T]:
        """Remove and return every frame of ``kind`` in the backlog."""
        found = [m for m in self.backlog if isinstance(m, kind)]
        self.backlog = [m for m in self.backlog if not isinstance(m, kind)]
        return found

    def seen_status(self, user_id: int) -> SeenStatus | None:
        """What this client was last told about a friend's status: its snapshot and
        the presence updates in its backlog, in order (None: not a friend)."""
        status: SeenStatus | None = None
        frames = ([self.snapshot] if self.snapshot is not None else []) + self.backlog
        for frame in frames:
            if isinstance(frame, Snapshot):
                status = next(
                    (f.presence.status for f in frame.friends if f.user.id == user_id), None
                )
            elif isinstance(frame, PresenceUpdate) and frame.user_id == user_id:
                status = frame.status
        return status

    async def closed(self) -> int | None:
        """Wait for the server to close the connection; returns the close code."""
        async with asyncio.timeout(TIMEOUT):
            await self.ws.wait_closed()
            await self._reader
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()
        await self._reader


async def login_dev(url: str, login: str, device: str = "test", **connect: Any) -> Client:
    """Open, log in with ``login_dev`` and take the snapshot; ``connect`` goes to
    ``websockets.connect`` (e.g. ``ssl=`` or ``additional_headers=``)."""
    client = await Client.open(url, **connect)
    await client.expect(Hello)
    ok = await client.request(LoginDev(login=login, device=device))
    assert isinstance(ok, AuthOk), ok
    client.user = ok.user
    client.session = ok.session
    client.session_id = ok.session_id
    client.snapshot = await take_snapshot(client)
    return client


async def take_snapshot(client: Client) -> Snapshot:
    """The next snapshot, joined from its ``snapshot_part`` frames when it came in parts."""
    assembler = SnapshotAssembler()
    whole = assembler.feed(await client.expect(Snapshot))
    while whole is None:
        whole = assembler.feed(await client.expect(SnapshotPart))
    return whole


async def befriend(a: Client, b: Client) -> None:
    """Make two logged-in clients friends and consume the relation frames."""
    from presence_protocol import FriendAccept, FriendRequest, Relation, RelationUpdate

    assert a.user is not None and b.user is not None
    await a.ok(FriendRequest(login=b.user.login))
    await b.expect(RelationUpdate, relation=Relation.INCOMING)
    await b.ok(FriendAccept(user_id=a.me))
    await a.expect(RelationUpdate, relation=Relation.OUTGOING)
    await a.expect(RelationUpdate, relation=Relation.FRIEND)
    await b.expect(RelationUpdate, relation=Relation.FRIEND)
