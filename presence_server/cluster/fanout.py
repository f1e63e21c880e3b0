"""Delivering events to every connection of a set of users.

Handlers publish to user ids, never to sockets: a frame is encoded once and
the same bytes go to every recipient's devices. ``InProcessFanout`` serves
one process; a Redis pub/sub implementation of ``Fanout`` (a channel per
process, one message per event per destination process)
(``redis_fanout.RedisFanout``) replaces it for many instances without touching
the handlers, which is why events are plain data (a frame, or a request to
close revoked sessions).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Protocol

import msgspec

from ..metrics import AnyMetrics, NullMetrics

log = logging.getLogger(__name__)


class Event(msgspec.Struct, frozen=True, gc=False):
    """What the fan-out hands to each recipient's connections.

    A frozen ``msgspec.Struct`` rather than a frozen dataclass: the dataclass
    set each of its eight fields through ``object.__setattr__``, and an event
    is built for every change published and again for every message another
    instance routes here. Not tracked by the garbage collector (``gc=False``):
    its fields are bytes, numbers and a set of strings, so it can never be
    part of a reference cycle, and untracked it does not count towards the
    young collections.
    """

    frame: bytes | None = None
    """An encoded server message, sent as is."""
    seq: int | None = None
    """For ``message`` frames: its seq, so a connection can skip what replay already sent."""
    revoke: frozenset[str] = frozenset()
    """Session ids whose connections must close with 4502."""
    revoke_all: bool = False
    """Every connection of the user must close with 4502 (sign out everywhere)."""
    account_deleted: bool = False
    """The account is gone: every connection of the user must close with 4503."""
    subject: int | None = None
    """For ``presence`` and ``relation`` frames: the user the frame is about."""
    friend: bool | None = None
    """For ``relation`` frames: whether ``subject`` is now a friend (None: not a relation)."""
    version: int = 0
    """Registry version of the presence a frame carries (0: unordered)."""


class Subscriber(Protocol):
    def deliver(self, event: Event) -> None:
        """Called for each event; must not block (enqueue and return)."""
        ...


class Fanout(Protocol):
    async def subscribe(self, user_id: int, subscriber: Subscriber) -> None: ...

    async def unsubscribe(self, user_id: int, subscriber: Subscriber) -> None: ...

    async def publish(self, user_ids: Iterable[int], event: Event) -> None: ...

    async def close(self) -> None: ...

    @property
    def local_users(self) -> int:
        """Users with at least one subscriber on this instance."""
        ...


class LocalSubscribers:
    """The subscribers of this process, per user: one subscriber, or a set of several.

    Nearly every user has one device connected, and a set holding one
    subscriber costs about 220 bytes per idle connection, as much as most of
    what the presence server keeps per connection beyond a bare websockets
    server (docs/performance.md, "Connections").
    So a user's entry is the subscriber itself, and becomes a set only when a
    second device subscribes (and the subscriber again when one is left).
    ``of`` returns a tuple: delivering may close a connection, which then
    unsubscribes while the caller is still iterating.
    """

    __slots__ = ("_by_user",)

    def __init__(self) -> None:
        self._by_user: dict[int, Subscriber | set[Subscriber]] = {}

    def add(self, user_id: int, subscriber: Subscriber) -> None:
        found = self._by_user.get(user_id)
        if found is None:
            self._by_user[user_id] = subscriber
        elif isinstance(found, set):
            found.add(subscriber)
        elif found is not subscriber:
            self._by_user[user_id] = {found, subscriber}

    def discard(self, user_id: int, subscriber: Subscriber) -> None:
        found = self._by_user.get(user_id)
        if found is subscriber:
            del self._by_user[user_id]
        elif isinstance(found, set):
            found.discard(subscriber)
            if len(found) == 1:
                self._by_user[user_id] = next(iter(found))
            elif not found:
                del self._by_user[user_id]

    def of(self, user_id: int) -> tuple[Subscriber, ...]:
        found = self._by_user.get(user_id)
        if found is None:
            return ()
        if isinstance(found, set):
            return tuple(found)
        return (found,)

    def deliver(self, user_ids: Iterable[int], event: Event) -> int:
        """The same event (its frame encoded once) to each user's subscribers
        here; the count delivered. Published here or received from another
        instance, an event takes this one path. Looked up inline rather than
        through ``of``: a cluster instance looks up every friend of a
        publishing user, most of them served elsewhere."""
        by_user = self._by_user
        delivered = 0
        for user_id in user_ids:
            found = by_user.get(user_id)
            if found is None:
                continue
            # A copy of a set: delivering may close a connection, which then
            # unsubscribes while this loop still runs.
            for subscriber in tuple(found) if isinstance(found, set) else (found,):
                delivered += 1
                try:
                    subscriber.deliver(event)
                except Exception:
                    log.exception("delivering an event to user %s failed", user_id)
        return delivered

    def __len__(self) -> int:
        """Users with at least one subscriber."""
        return len(self._by_user)

    def clear(self) -> None:
        self._by_user.clear()


class InProcessFanout:
    def __init__(self, metrics: AnyMetrics | None = None) -> None:
        self._subscribers = LocalSubscribers()
        self.metrics = metrics or NullMetrics()
        self._deliveries = self.metrics.deliveries.labels("local")  # looked up once
        self._latency = self.metrics.fanout_latency.labels("local")

    async def subscribe(self, user_id: int, subscriber: Subscriber) -> None:
        self._subscribers.add(user_id, subscriber)

    async def unsubscribe(self, user_id: int, subscriber: Subscriber) -> None:
        self._subscribers.discard(user_id, subscriber)

    async def publish(self, user_ids: Iterable[int], event: Event) -> None:
        start = time.time()
        delivered = self._subscribers.deliver(set(user_ids), event)
        if delivered:
            self._deliveries.inc(delivered)
            self._latency.observe(max(time.time() - start, 0.0))

    async def close(self) -> None:
        self._subscribers.clear()

    @property
    def local_users(self) -> int:
        return len(self._subscribers)
