"""Delivering events to every connection of a set of users.

Handlers publish to user ids, never to sockets: a frame is encoded once and
the same bytes go to every recipient's devices. ``InProcessFanout`` serves
one process; a Redis pub/sub implementation of ``Fanout`` (channel per user)
can replace it without touching the handlers, which is why events are plain
data (a frame, or a request to close revoked sessions).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from typing import Protocol

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
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


class InProcessFanout:
    def __init__(self) -> None:
        self._subscribers: dict[int, set[Subscriber]] = {}

    async def subscribe(self, user_id: int, subscriber: Subscriber) -> None:
        self._subscribers.setdefault(user_id, set()).add(subscriber)

    async def unsubscribe(self, user_id: int, subscriber: Subscriber) -> None:
        subs = self._subscribers.get(user_id)
        if subs is not None:
            subs.discard(subscriber)
            if not subs:
                del self._subscribers[user_id]

    async def publish(self, user_ids: Iterable[int], event: Event) -> None:
        for user_id in set(user_ids):
            for subscriber in list(self._subscribers.get(user_id, ())):
                try:
                    subscriber.deliver(event)
                except Exception:
                    log.exception("delivering an event to user %s failed", user_id)

    async def close(self) -> None:
        self._subscribers.clear()
