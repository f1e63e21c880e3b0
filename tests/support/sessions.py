"""Sessions without sockets: the server's ``Session`` state machine on a real hub.

* ``session_hub(path, clock)`` — a ``Hub`` on a migrated SQLite file, with the
  in-process fan-out and registry and every clock (Unix time, timers, rate
  windows) read from one ``FakeClock``: no port, no socket, no sleeping.
* ``Wire`` — a session's ``Output`` that records frames and the close, and
  can stop "reading" to model a slow client (its unread bytes grow).
* ``Device`` — one session on that hub with its wire: ``await device.send(m)``
  hands a message (or raw text) to the session, waits for everything it
  started, and returns the frames it wrote meanwhile, decoded.
* ``session_hub`` fixture — the above on ``tmp_path`` with a fresh FakeClock
  (``hub.clock``).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from presence_protocol import (
    AnyServerMessage,
    AuthOk,
    ClientMessage,
    LoginDev,
    decode_server,
    encode_text,
)
from presence_server import ServerConfig, ServerLimits
from presence_server.cluster.fanout import InProcessFanout
from presence_server.cluster.registry import InProcessRegistry
from presence_server.session import handlers
from presence_server.session.hub import Hub
from presence_server.session.machine import Session
from presence_server.storage.database import create_engine, migrate
from presence_server.storage.store import Store

from .clock import FakeClock
from .servers import sqlite_url


@contextlib.asynccontextmanager
async def session_hub(
    path: Path, clock: FakeClock, *, limits: ServerLimits | None = None, **config: Any
) -> AsyncIterator[Hub]:
    """A hub on a SQLite file at ``path`` whose every clock is ``clock``."""
    url = sqlite_url(path)
    engine = create_engine(url)
    await migrate(engine)
    options: dict[str, Any] = {"database_url": url, "dev_login": True}
    options.update(config)
    hub = Hub(
        ServerConfig(
            **options,
            limits=limits or ServerLimits(),
            clock_ns=lambda: int(clock.now * 1_000_000_000),
        ),
        Store(engine),
        InProcessFanout(),
        InProcessRegistry(),
        clock=clock,
    )
    try:
        yield hub
    finally:
        await hub.close()


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    async with session_hub(tmp_path / "presence.sqlite3", FakeClock()) as running:
        yield running


@dataclasses.dataclass
class Wire:
    """Records what a session writes; ``reading = False`` lets unread bytes pile up."""

    frames: list[bytes] = dataclasses.field(default_factory=list)
    closed: tuple[int, str] | None = None
    reading: bool = True
    unread: int = 0
    taken: int = 0

    def write(self, frame: bytes) -> int:
        assert self.closed is None, "a frame was written after the close"
        self.frames.append(frame)
        if not self.reading:
            self.unread += len(frame)
        return self.unread

    def close(self, code: int, reason: str) -> None:
        assert self.closed is None, "closed twice"
        self.closed = (code, reason)

    def take(self) -> list[AnyServerMessage]:
        """The frames written since the last ``take``, decoded."""
        new = self.frames[self.taken :]
        self.taken = len(self.frames)
        return [decode_server(frame.decode()) for frame in new]


class Device:
    """One client device: a ``Session`` on ``hub`` writing to a ``Wire``."""

    def __init__(self, hub: Hub) -> None:
        self.wire = Wire()
        self.session = Session(hub, handlers, self.wire)
        self.session.start()

    async def send(self, message: ClientMessage | str | bytes) -> list[AnyServerMessage]:
        """One frame in (a message as a text frame, or raw ``str``/``bytes`` as they
        would arrive); everything the session wrote until it settled, out."""
        data = message if isinstance(message, str | bytes) else encode_text(message)
        await self.session.receive(data)
        await self.session.settle()
        return self.wire.take()

    @property
    def me(self) -> int:
        assert self.session.user is not None
        return self.session.user.id

    async def leave(self) -> None:
        """The client went away (as the transport reports a dropped socket)."""
        await self.session.leave()
        await self.session.settle()
        self.session.end()


async def logged_in(hub: Hub, login: str, device: str = "test") -> tuple[Device, AuthOk]:
    """A device logged in with ``login_dev``; its hello and login frames are taken."""
    dev = Device(hub)
    frames = await dev.send(LoginDev(id=1, login=login, device=device))
    ok = [f for f in frames if isinstance(f, AuthOk)]
    assert len(ok) == 1, frames
    return dev, ok[0]


async def befriend(a: Device, b: Device) -> None:
    """Make two logged-in devices friends; their relation frames are taken."""
    from presence_protocol import FriendAccept, FriendRequest, Ok

    assert b.session.user is not None
    request = await a.send(FriendRequest(id="befriend-1", login=b.session.user.login))
    assert any(isinstance(f, Ok) for f in request), request
    accept = await b.send(FriendAccept(id="befriend-2", user_id=a.me))
    assert any(isinstance(f, Ok) for f in accept), accept
    a.wire.take()
