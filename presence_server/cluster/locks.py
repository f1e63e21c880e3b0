"""One lock per user, made only while it is held: the hub's and the registry's.

Every presence change takes its user's lock twice (the hub's, around the
change and its fan-out; the registry's, around the write). They were
``asyncio.Lock`` objects in a ``WeakValueDictionary``: a lock, a keyed weak
reference and its removal callback made and thrown away per change, a dozen
calls and three allocations on the path of every update. ``KeyedLocks``
keeps a key in a dict only while someone holds it (with the list of who
waits, usually empty), and ``hold`` is a plain async context manager rather
than a generator-based one.

Fairness and cancellation follow ``asyncio.Lock``: waiters get the lock in
the order they asked; a waiter cancelled after it was handed the lock but
before it ran passes the lock on, so a cancellation never strands it.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class KeyedLocks:
    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[int, list[asyncio.Future[None]]] = {}
        """Key -> who waits for it, oldest first, for every key held now."""

    def __len__(self) -> int:
        """Keys held now (0 once everyone let go: nothing is kept per user)."""
        return len(self._held)

    def locked(self, key: int) -> bool:
        return key in self._held

    async def acquire(self, key: int) -> None:
        waiters = self._held.get(key)
        if waiters is None:
            self._held[key] = []
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(key)  # handed over just as we were cancelled: pass it on
            elif future in waiters:
                waiters.remove(future)
            raise

    def release(self, key: int) -> None:
        """Hand the lock to the oldest waiter still waiting, or free the key."""
        waiters = self._held[key]
        while waiters:
            future = waiters.pop(0)
            if not future.done():
                future.set_result(None)
                return
        del self._held[key]

    def hold(self, *keys: int) -> Hold:
        """``async with locks.hold(a, b):`` holds every key, taken in ascending
        order whatever the order given (two callers never wait on each other
        in a cycle), each once."""
        return Hold(self, keys[0] if len(keys) == 1 else sorted(set(keys)))


class Hold:
    __slots__ = ("_keys", "_locks", "_taken")

    def __init__(self, locks: KeyedLocks, keys: int | list[int]) -> None:
        self._locks = locks
        self._keys = keys
        self._taken: list[int] = []

    async def __aenter__(self) -> None:
        keys = self._keys
        if isinstance(keys, int):
            await self._locks.acquire(keys)
            return
        taken = self._taken
        try:
            for key in keys:
                await self._locks.acquire(key)
                taken.append(key)
        except BaseException:
            self._release()
            raise

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(self._keys, int):
            self._locks.release(self._keys)
        else:
            self._release()

    def _release(self) -> None:
        taken, self._taken = self._taken, []
        for key in reversed(taken):
            self._locks.release(key)
