"""Ways to wait on signals, and peers (a real client on a real server).

Tests wait for events (a signal carrying what they expect, or a state that a
signal announced), never for a fixed time.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from presence_desktop.core.api import ConnectionEvents, ConnectionInfo, Link
from presence_desktop.core.backoff import backoff_delays
from presence_desktop.core.credentials import MemoryCredentials
from presence_desktop.core.events import Signal
from presence_desktop.core.state import PresenceState
from presence_desktop.net.client import PresenceClient

T = TypeVar("T")
TIMEOUT = 15.0


def fast_backoff() -> Iterator[float]:
    return backoff_delays(base=0.05, cap=0.2)


async def until(
    check: Callable[[], T | bool | None],
    *signals: Signal[Any],
    within: float = TIMEOUT,
) -> T | bool:
    """Wait until ``check()`` is truthy, re-evaluating it whenever a signal fires."""
    value = check()
    if value:
        return value
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T | bool] = loop.create_future()

    def evaluate(_: object) -> None:
        if done.done():
            return
        try:
            result = check()
        except Exception as exc:
            done.set_exception(exc)
            return
        if result:
            done.set_result(result)

    for signal in signals:
        signal.connect(evaluate)
    try:
        return await asyncio.wait_for(done, within)
    finally:
        for signal in signals:
            signal.disconnect(evaluate)


async def next_emit(signal: Signal[T], within: float = TIMEOUT) -> T:
    loop = asyncio.get_running_loop()
    got: asyncio.Future[T] = loop.create_future()

    def slot(value: T) -> None:
        if not got.done():
            got.set_result(value)

    signal.connect(slot)
    try:
        return await asyncio.wait_for(got, within)
    finally:
        signal.disconnect(slot)


class Peer:
    """One desktop's client and what it sees."""

    _names = itertools.count()

    def __init__(
        self,
        url: str,
        login: str | None,
        *,
        credentials: MemoryCredentials | None = None,
        **kwargs: Any,
    ) -> None:
        self.state = PresenceState()
        self.connection = ConnectionEvents()
        self.credentials = credentials or MemoryCredentials()
        self.links: list[ConnectionInfo] = []
        self.connection.changed.connect(self.links.append)
        kwargs.setdefault("backoff", fast_backoff)
        self.client = PresenceClient(
            url, self.state, self.connection, self.credentials, dev_login=login, **kwargs
        )
        self.errors: list[Any] = []
        self.client.errors.connect(self.errors.append)

    async def online(self) -> None:
        self.client.start()
        await self.wait_link(Link.ONLINE)

    async def wait_link(self, link: Link, within: float = TIMEOUT) -> ConnectionInfo:
        info = await until(
            lambda: self.connection.current if self.connection.current.link is link else None,
            self.connection.changed,
            within=within,
        )
        assert isinstance(info, ConnectionInfo)
        return info

    async def wait_signed_out_by_server(self) -> ConnectionInfo:
        """SIGNED_OUT with the server's reason (a terminal close), not the initial state."""
        info = await until(
            lambda: (
                self.connection.current
                if self.connection.current.link is Link.SIGNED_OUT and self.connection.current.title
                else None
            ),
            self.connection.changed,
        )
        assert isinstance(info, ConnectionInfo)
        return info

    @property
    def me(self) -> int:
        assert self.state.me is not None
        return self.state.me.id
