"""What connections share: store, fan-out, presence registry, and the rules
for turning a change into the deltas other connections receive.

Ordering: every change to a user's merged presence, and every relation
change between two users, runs under that user's (both users') lock, from
the registry or database update through the publish. So a friend never
receives a stale presence after a newer one, and an ex-friend never receives
a presence published after the ``relation`` frame that ended the friendship.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Protocol

from presence_protocol import (
    ErrorCode,
    Hello,
    Relation,
    RelationUpdate,
    encode,
)

from ..cluster.fanout import Event, Fanout, InProcessFanout
from ..cluster.locks import Hold, KeyedLocks
from ..cluster.registry import Change, PresenceRegistry
from ..config import ServerConfig, hello_for
from ..domain import presence
from ..domain.friends import Outcome
from ..domain.presence import DeviceState
from ..metrics import AnyMetrics, NullMetrics
from ..storage.store import CommandError, Store
from .timing import Clock, LoopClock


class Peer(Protocol):
    """What the hub needs of a connection it keeps (``session.machine.Session``
    implements it; the hub does not import that module, which imports the hub)."""

    cid: str
    ready: bool
    closing: bool
    finished: bool
    session_id: str | None

    def close(self, code: int, reason: str) -> None: ...

    async def resync(self) -> None: ...

    async def wait_finished(self) -> None: ...

    def detach(self) -> tuple[int, str] | None: ...


log = logging.getLogger(__name__)

HOUR = 3600.0
RESYNC_CONCURRENCY = 16


LEAVE_CHUNK = 500
"""Registry removals a drain issues at once when the registry is remote (``leave_all``)."""


class Hub:
    def __init__(
        self,
        config: ServerConfig,
        store: Store,
        fanout: Fanout,
        registry: PresenceRegistry,
        metrics: AnyMetrics | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or LoopClock()
        """Timers and rate windows of every session here (tests pass a fake one)."""
        self.monotonic = self.clock.monotonic
        """Bound once: every session's rate windows share this one method object."""
        self.limits = config.limits
        self.store = store
        self.fanout = fanout
        self.registry = registry
        self.metrics = metrics or NullMetrics()
        self.metrics.users.set_function(lambda: fanout.local_users)
        self.stopping = False
        self._resync: asyncio.Task[None] | None = None
        self._gone_at_stop: dict[int, Change] = {}
        self._unfinished: set[Peer] | None = None
        self._all_finished: asyncio.Future[None] | None = None
        self._stamps: dict[int, int] = {}
        """Last-seen stamps of this loop turn, written together (``_stamp``)."""
        self._stamped: asyncio.Future[None] | None = None
        self._stamp_tasks: set[asyncio.Task[None]] = set()
        self._locks = KeyedLocks()
        self._friend_ids: dict[int, tuple[int, ...]] = {}
        """Friends of users whose presence may change here, so a presence change
        costs no database read. Dropped when a relation of the user changes
        (``forget_friends``, called on every relation event delivered here, from
        any instance) and when the user goes offline. Tuples, not lists: one
        is kept per online user, and a tuple of ten ids is one block of 120
        bytes where a list built by appending is two of 184."""
        self._friends_epoch = 0
        self.connections: weakref.WeakSet[Peer] = weakref.WeakSet()
        """Authenticated connections of this instance (the retention sweep keeps
        their sessions alive; a drain closes them; a re-sync refreshes them)."""
        self.hello_frame = encode(self._hello())

    def clock_ns(self) -> int:
        """Now, in Unix nanoseconds, from the configured clock."""
        return self.config.clock_ns()

    def now(self) -> int:
        """Now, in whole Unix seconds (as times go on the wire)."""
        return self.clock_ns() // 1_000_000_000

    def _hello(self) -> Hello:
        return hello_for(self.config)

    # ------------------------------------------------------------ locks

    def locked(self, *user_ids: int) -> Hold:
        """Hold the locks of several users, always taken in id order (no deadlock)."""
        return self._locks.hold(*user_ids)

    # ------------------------------------------------------------ presence

    async def set_device(self, user_id: int, device: str, state: DeviceState) -> None:
        async with self.locked(user_id):
            change = await self.registry.put(user_id, device, state)
            await self._presence_changed(user_id, change)

    async def reserve_device(self, user_id: int, device: str) -> bool:
        """Take a device slot for a login (the per-user cap, on every instance)."""
        return await self.registry.reserve(user_id, device, self.config.max_connections_per_user)

    async def drop_device(self, user_id: int, device: str) -> None:
        async with self.locked(user_id):
            change = await self.registry.remove(user_id, device)
            await self._presence_changed(user_id, change)

    async def _presence_changed(self, user_id: int, change: Change) -> None:
        """Tell friends; going from visible to offline (or invisible) stamps last seen."""
        if not change.changed:
            return
        if self.stopping and change.after.offline:
            # Everyone here is being disconnected (and told to reconnect):
            # stamp last seen in one write at the end instead of one per user,
            # and tell friends elsewhere in one batch then.
            self._gone_at_stop[user_id] = change
            return
        last_seen: int | None = None
        if change.after.offline:
            last_seen = self.now()
            await self._stamp(user_id, last_seen)
        friends = self._friend_ids.get(user_id)
        if friends is None:
            epoch = self._friends_epoch
            friends = tuple(await self.store.friend_ids(user_id))
            # A relation event during the read may mean the read is stale: use it once.
            if not change.after.offline and epoch == self._friends_epoch:
                self._friend_ids[user_id] = friends
        if change.after.offline:
            self._friend_ids.pop(user_id, None)
        if friends:
            frame = encode(presence.update(user_id, change.after, last_seen))
            await self.fanout.publish(
                friends, Event(frame=frame, subject=user_id, version=change.version)
            )

    async def _stamp(self, user_id: int, when: int) -> None:
        """Write a user's last seen, together with everyone else's of this loop turn.

        When many clients drop at once (a network cut, a killed load balancer)
        each connection's end reaches here in the same few turns: one statement
        for all of them instead of one per user. The caller waits for the write
        to be done (and durable: ``Store.set_last_seen``) before it tells friends,
        so nothing is announced that a crash could undo, and each user's deltas
        keep their order (the caller holds the user's lock).
        """
        self._stamps[user_id] = when
        done = self._stamped
        if done is None:
            loop = asyncio.get_running_loop()
            done = self._stamped = loop.create_future()
            loop.call_soon(self._write_stamps)
        await asyncio.shield(done)

    def _write_stamps(self) -> None:
        stamps, self._stamps = self._stamps, {}
        done, self._stamped = self._stamped, None
        assert done is not None
        by_time: dict[int, list[int]] = {}
        for uid, when in stamps.items():
            by_time.setdefault(when, []).append(uid)

        async def write() -> None:
            try:
                for when, uids in sorted(by_time.items()):
                    await self.store.set_last_seen(uids, when)
            except asyncio.CancelledError:
                done.cancel()
                raise
            except Exception as exc:
                done.set_exception(exc)  # every waiter gets it
                done.exception()  # retrieved: no "never retrieved" log when none waits
            else:
                done.set_result(None)

        task = asyncio.get_running_loop().create_task(write(), name="last-seen")
        self._stamp_tasks.add(task)
        task.add_done_callback(self._stamp_tasks.discard)

    async def apply_changes(self, changes: Mapping[int, Change]) -> None:
        """Publish many users' presence changes at once (sweeps, re-sync, shutdown).

        One write stamps last seen for everyone who went offline, and one read
        finds all their friends.
        """
        changed = {uid: c for uid, c in changes.items() if c.changed}
        if not changed:
            return
        now = self.now()
        # A swept user was last seen when their instance was last alive, not now.
        stamps = {
            uid: min(now, c.last_seen) if c.last_seen is not None else now
            for uid, c in changed.items()
            if c.after.offline
        }
        for when in sorted(set(stamps.values())):
            await self.store.set_last_seen([u for u, t in stamps.items() if t == when], when)
        if self.stopping and isinstance(self.fanout, InProcessFanout):
            # The friends to tell would all be on this instance, and they are
            # being closed too: no read of everyone's friends for nobody.
            return
        friends = await self.store.friends_of(changed)
        for uid, change in changed.items():
            if not friends.get(uid):
                continue
            last_seen = stamps.get(uid)
            frame = encode(presence.update(uid, change.after, last_seen))
            await self.fanout.publish(
                friends[uid], Event(frame=frame, subject=uid, version=change.version)
            )

    # ------------------------------------------------------------ relations

    async def change_relation(
        self, me: int, other: int, operation: Callable[[], Awaitable[Outcome]]
    ) -> Outcome:
        """Apply a relation change and publish one ``relation`` frame per side."""
        async with self.locked(me, other):
            outcome = await self.store.finish(operation())  # durable: see Store.finish
            self.forget_friends(me, other)
            befriended = [n.about.id for n in outcome.notices if n.relation is Relation.FRIEND]
            seen = await self.registry.seen(befriended) if befriended else {}
            for notice in outcome.notices:
                about = notice.about
                friend = notice.relation is Relation.FRIEND
                update = RelationUpdate(
                    user=about.wire(),
                    relation=notice.relation,
                    presence=presence.presence(seen[about.id].seen, about.last_seen)
                    if friend
                    else None,
                )
                event = Event(
                    frame=encode(update),
                    subject=about.id,
                    friend=friend,
                    version=seen[about.id].version if friend else 0,
                )
                await self.fanout.publish([notice.to], event)
            return outcome

    @property
    def friends_epoch(self) -> int:
        return self._friends_epoch

    def remember_friends(self, user_id: int, friends: Iterable[int], epoch: int) -> None:
        """A login read the user's friends: keep them, unless a relation event came since."""
        if epoch == self._friends_epoch and user_id not in self._friend_ids:
            self._friend_ids[user_id] = tuple(friends)

    def forget_friends(self, *user_ids: int) -> None:
        """The friends of these users may have changed: read them again next time."""
        self._friends_epoch += 1
        for uid in user_ids:
            self._friend_ids.pop(uid, None)

    async def check_friend_request_rate(self, user_id: int) -> None:
        """Friend requests per rolling hour per user, across all their devices.

        Counted in the database, so the limit also holds when the devices sit
        on different instances.
        """
        wait_ms = await self.store.take_friend_request_slot(
            user_id,
            self.limits.friend_requests_per_hour,
            int(HOUR * 1000),
            self.clock_ns() // 1_000_000,
        )
        if wait_ms is not None:
            raise CommandError(
                ErrorCode.RATE_LIMITED.value,
                f"at most {self.limits.friend_requests_per_hour} friend requests per hour",
                retry_after=round(wait_ms / 1000, 3),
            )

    # ------------------------------------------------------------ sessions

    async def revoke(self, user_id: int, session_ids: list[str] | None) -> None:
        """Close the live connections of revoked sessions (all, with None)."""
        if session_ids is None:
            await self.fanout.publish([user_id], Event(revoke_all=True))
        elif session_ids:
            await self.fanout.publish([user_id], Event(revoke=frozenset(session_ids)))

    # ------------------------------------------------------------ re-sync

    async def resync_all(self) -> None:
        """After a Redis outage: a fresh snapshot and missing messages for everyone here.

        Runs in the background (the link must keep its heartbeat going) and
        replaces a re-sync still running from an earlier outage.
        """
        if self._resync is not None:
            self._resync.cancel()
        self._resync = asyncio.get_running_loop().create_task(self._resync_all(), name="resync")

    async def _resync_all(self) -> None:
        connections = [c for c in list(self.connections) if c.ready and not c.closing]
        if not connections:
            return
        started = self.clock.monotonic()
        gate = asyncio.Semaphore(RESYNC_CONCURRENCY)

        async def one(conn: Peer) -> None:
            async with gate:
                try:
                    await conn.resync()
                    self.metrics.resyncs.inc()
                except Exception:
                    log.exception("re-sync of connection %s failed", conn.cid)

        await asyncio.gather(*(one(c) for c in connections))
        log.info(
            "re-synced %d connections in %.2f s",
            len(connections),
            self.clock.monotonic() - started,
            extra={"event": "resynced", "connections": len(connections)},
        )

    # ------------------------------------------------------------ drain

    async def leave_all(self, peers: Iterable[Peer]) -> None:
        """A drain's teardown of every session at once (``RunningServer.stop``).

        Each session leaves fan-out and registry here, in one pass, instead of
        in a background task of its own; those going offline are collected for
        the one last-seen write and the one batch of deltas of ``close()``: no
        offline delta goes to connections that are being closed themselves.
        A session that ends on its own meanwhile is taken out once either way
        (``Session.detach``).
        """
        assert self.stopping
        leaving: list[tuple[int, str]] = []
        for peer in peers:
            self.connections.discard(peer)
            found = peer.detach()
            if found is None:
                continue
            user_id, device = found
            try:
                await self.fanout.unsubscribe(user_id, peer)  # type: ignore[arg-type]
            except Exception:
                log.exception("connection %s: leaving the fan-out at the drain failed", device)
            leaving.append(found)
        if not self.registry.remote:
            for user_id, device in leaving:
                await self._leave(user_id, device)
            return
        # A registry in Redis: a chunk of removals at once, so they share the
        # batch's writes and round trips instead of one round trip each (the
        # registry's per-user lock keeps two devices of one user in order).
        for start in range(0, len(leaving), LEAVE_CHUNK):
            chunk = leaving[start : start + LEAVE_CHUNK]
            await asyncio.gather(*(self._leave(user_id, device) for user_id, device in chunk))

    async def _leave(self, user_id: int, device: str) -> None:
        """One device out of the registry at the drain; going offline is noted
        for ``close()``."""
        try:
            if self._locks.locked(user_id):
                async with self._locks.hold(user_id):  # a change is under way: after it
                    change = await self.registry.remove(user_id, device)
            else:
                change = await self.registry.remove(user_id, device)
            if change.changed and change.after.offline:
                self._gone_at_stop[user_id] = change
        except Exception:
            log.exception("connection %s: leaving at the drain failed", device)

    def finished(self, peer: Peer) -> None:
        """A session's transport is done (``Session.end``): a drain may be waiting."""
        waiting = self._unfinished
        if waiting is None:
            return
        waiting.discard(peer)
        if not waiting and self._all_finished is not None and not self._all_finished.done():
            self._all_finished.set_result(None)

    async def all_finished(self, peers: Iterable[Peer]) -> None:
        """Until every one of ``peers`` has ended: one future for all of them,
        not a waiter task per session (the drain bounds the wait)."""
        self._unfinished = {p for p in peers if not p.finished}
        if not self._unfinished:
            return
        self._all_finished = asyncio.get_running_loop().create_future()
        try:
            await self._all_finished
        finally:
            self._unfinished = None
            self._all_finished = None

    async def close(self) -> None:
        """After all connections closed: persist last seen, tell friends, release resources."""
        gone, self._gone_at_stop = self._gone_at_stop, {}
        try:
            await self.apply_changes(gone)
        except Exception:
            log.exception("recording last seen at shutdown failed")
        if self._resync is not None:
            self._resync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resync
        if self._stamp_tasks:  # last seen of connections that ended on their own
            await asyncio.wait(list(self._stamp_tasks))
        await self.registry.close()
        await self.fanout.close()
        await self.store.close()
