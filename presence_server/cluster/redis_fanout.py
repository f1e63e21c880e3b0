"""Fan-out across instances: one Redis pub/sub channel per user.

An instance subscribes to ``{prefix}u:{user id}`` for each user with a
connection on it, and publishes an event for user X to X's channel only; no
instance receives (or filters) traffic for users it does not serve.

The publishing instance also hands the event to its own connections of
those users directly, and skips its own copies coming back from Redis: so
same-instance delivery costs no Redis round trip and keeps working while
Redis is down.

Pub/sub is lossy: an event published while Redis (or this instance's link to
it) is down never arrives elsewhere. What matters is made good afterwards:

* Durable events (messages, relation changes, revocations, account
  deletion, expiry notices) are in the database before they are published,
  and events this instance failed to publish are kept (bounded) and
  published again once Redis is back.
* Presence is re-registered (``redis_registry``) and every connection gets
  a fresh snapshot and the messages it is missing (``Hub.resync_all``).

Wire format of a published event: a compact JSON header, a newline, then the
frame bytes exactly as the connections will send them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any

import msgspec

from ..metrics import AnyMetrics, NullMetrics
from .fanout import Event, Subscriber
from .redis_link import COMMAND_TIMEOUT_SECONDS, REDIS_ERRORS, RedisLink

log = logging.getLogger(__name__)

BACKLOG_EVENTS = 10_000
"""Durable events kept for re-publishing after an outage; older ones are dropped
(their recipients still get messages on replay and relations on their next snapshot)."""
SUBSCRIBE_CHUNK = 500


class _Header(msgspec.Struct, omit_defaults=True):
    o: str
    """Origin process (``RedisLink.process``: unique even when a restart reuses the
    instance id): it delivered locally already and skips its own copy."""
    t: float
    """``time.time()`` at publish, for the fan-out latency histogram."""
    has_frame: bool = True
    s: int | None = None
    u: int | None = None
    f: bool | None = None
    v: int = 0
    r: list[str] = []
    ra: bool = False
    ad: bool = False


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Header)


def encode_event(event: Event, origin: str, now: float) -> bytes:
    header = _Header(
        o=origin,
        t=now,
        has_frame=event.frame is not None,
        s=event.seq,
        u=event.subject,
        f=event.friend,
        v=event.version,
        r=sorted(event.revoke),
        ra=event.revoke_all,
        ad=event.account_deleted,
    )
    return _encoder.encode(header) + b"\n" + (event.frame or b"")


def decode_event(payload: bytes) -> tuple[Event, str, float]:
    head, _, frame = payload.partition(b"\n")
    header = _decoder.decode(head)
    event = Event(
        frame=frame if header.has_frame else None,
        seq=header.s,
        subject=header.u,
        friend=header.f,
        version=header.v,
        revoke=frozenset(header.r),
        revoke_all=header.ra,
        account_deleted=header.ad,
    )
    return event, header.o, header.t


def _durable(event: Event) -> bool:
    """Everything but presence deltas, which re-registration makes good instead."""
    return not (event.subject is not None and event.friend is None)


class RedisFanout:
    def __init__(self, link: RedisLink, metrics: AnyMetrics | None = None) -> None:
        self.link = link
        self.metrics = metrics or NullMetrics()
        self._local: dict[int, set[Subscriber]] = {}
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._confirmations: dict[bytes, collections.deque[asyncio.Future[None]]] = {}
        """Per channel, one future per SUBSCRIBE sent and not yet confirmed (in order)."""
        self._backlog: collections.deque[tuple[tuple[int, ...], Event]] = collections.deque(
            maxlen=BACKLOG_EVENTS
        )
        self._dropped = 0
        link.on_up(self._on_up)
        link.on_down(self._on_down)

    def channel(self, user_id: int) -> bytes:
        return self.link.key("u", user_id).encode()

    @property
    def local_users(self) -> int:
        return len(self._local)

    # ------------------------------------------------------------ subscriptions

    async def subscribe(self, user_id: int, subscriber: Subscriber) -> None:
        subs = self._local.setdefault(user_id, set())
        first = not subs
        subs.add(subscriber)
        if not self.link.up or self._pubsub is None:
            return
        if first:
            await self._subscribe([user_id])
            return
        # Another device of this user subscribed a moment ago: wait for the
        # same confirmation, so this one too reads state only afterwards.
        pending = self._confirmations.get(self.channel(user_id))
        if pending:
            try:
                async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                    await asyncio.shield(pending[-1])
            except TimeoutError as exc:
                self.link.mark_down(exc)

    async def unsubscribe(self, user_id: int, subscriber: Subscriber) -> None:
        subs = self._local.get(user_id)
        if subs is None:
            return
        subs.discard(subscriber)
        if subs:
            return
        del self._local[user_id]
        if self.link.up and self._pubsub is not None:
            try:
                await self._pubsub.unsubscribe(self.channel(user_id))
            except REDIS_ERRORS as exc:
                self.link.mark_down(exc)

    async def _subscribe(self, user_ids: list[int]) -> None:
        """Subscribe and wait until Redis confirmed: events published after this
        returns reach us (the caller reads state only then)."""
        pubsub = self._pubsub
        loop = asyncio.get_running_loop()
        waits: list[asyncio.Future[None]] = []
        channels = [self.channel(uid) for uid in user_ids]
        for channel in channels:
            future: asyncio.Future[None] = loop.create_future()
            self._confirmations.setdefault(channel, collections.deque()).append(future)
            waits.append(future)
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                await pubsub.subscribe(*channels)
                await asyncio.gather(*(asyncio.shield(w) for w in waits))
        except REDIS_ERRORS as exc:
            self.link.mark_down(exc)  # clears every pending confirmation

    # ------------------------------------------------------------ publishing

    async def publish(self, user_ids: Iterable[int], event: Event) -> None:
        ids = tuple(set(user_ids))
        if not ids:
            return
        start = time.time()
        delivered = 0
        for user_id in ids:
            for subscriber in list(self._local.get(user_id, ())):
                self._hand(subscriber, event, user_id)
                delivered += 1
        if delivered:
            self.metrics.deliveries.labels("local").inc(delivered)
            self.metrics.fanout_latency.labels("local").observe(max(time.time() - start, 0.0))
        if not self.link.up:
            self._keep(ids, event)
            return
        try:
            await self._publish_remote(ids, event, start)
        except REDIS_ERRORS as exc:
            self.link.mark_down(exc)
            self._keep(ids, event)

    async def _publish_remote(self, ids: tuple[int, ...], event: Event, now: float) -> None:
        payload = encode_event(event, self.link.process, now)
        async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
            if len(ids) == 1:
                await self.link.client.publish(self.channel(ids[0]), payload)
                return
            async with self.link.client.pipeline(transaction=False) as pipe:
                for user_id in ids:
                    pipe.publish(self.channel(user_id), payload)
                await pipe.execute()

    def _keep(self, ids: tuple[int, ...], event: Event) -> None:
        if not _durable(event):
            return
        if len(self._backlog) == self._backlog.maxlen:
            self._dropped += 1
        self._backlog.append((ids, event))

    @staticmethod
    def _hand(subscriber: Subscriber, event: Event, user_id: int) -> None:
        try:
            subscriber.deliver(event)
        except Exception:
            log.exception("delivering an event to user %s failed", user_id)

    # ------------------------------------------------------------ receiving

    async def _listen(self, pubsub: Any) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is None:
                    continue
                kind = message.get("type")
                if kind == b"subscribe" or kind == "subscribe":
                    self._confirmed(message["channel"])
                    continue
                if kind not in (b"message", "message"):
                    continue
                self._received(message["channel"], message["data"])
        except asyncio.CancelledError:
            raise
        except REDIS_ERRORS as exc:
            self.link.mark_down(exc)
        except Exception:
            log.exception("redis listener failed")
            self.link.mark_down("listener failed")

    def _confirmed(self, channel: bytes) -> None:
        pending = self._confirmations.get(channel)
        if not pending:
            return
        future = pending.popleft()
        if not pending:
            del self._confirmations[channel]
        if not future.done():
            future.set_result(None)

    def _received(self, channel: bytes, payload: bytes) -> None:
        try:
            event, origin, sent_at = decode_event(payload)
            user_id = int(channel.rsplit(b":", 1)[1])
        except (msgspec.DecodeError, ValueError, IndexError):
            log.warning("ignoring an undecodable event on %r", channel)
            return
        if origin == self.link.process:
            return
        subscribers = self._local.get(user_id)
        if not subscribers:
            return
        self.metrics.fanout_latency.labels("redis").observe(max(time.time() - sent_at, 0.0))
        for subscriber in list(subscribers):
            self._hand(subscriber, event, user_id)
            self.metrics.deliveries.labels("redis").inc()

    # ------------------------------------------------------------ outages

    def _on_down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None and listener is not asyncio.current_task():
            listener.cancel()
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            asyncio.get_running_loop().create_task(self._discard(pubsub))
        # Release whoever waits for a confirmation: with Redis gone there is
        # nothing to wait for, and the re-sync after it returns repairs the rest.
        for futures in self._confirmations.values():
            for future in futures:
                if not future.done():
                    future.set_result(None)
        self._confirmations.clear()

    @staticmethod
    async def _discard(pubsub: Any) -> None:
        with contextlib.suppress(*REDIS_ERRORS, asyncio.CancelledError):
            async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                await pubsub.aclose()

    async def _on_up(self) -> None:
        """A new pub/sub connection with every local user's channel, then the backlog."""
        self._on_down()
        pubsub = self.link.client.pubsub()
        self._pubsub = pubsub
        # A subscription must exist before the listener reads from the connection.
        async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
            await pubsub.subscribe(self.link.key("control"))
        self._listener = asyncio.get_running_loop().create_task(
            self._listen(pubsub), name="redis-listener"
        )
        users = list(self._local)
        for start in range(0, len(users), SUBSCRIBE_CHUNK):
            await self._subscribe(users[start : start + SUBSCRIBE_CHUNK])
            if not self.link.up:
                return
        if self._dropped:
            log.warning(
                "%d events published during the outage were dropped (backlog full); "
                "their recipients catch up on their next snapshot or replay",
                self._dropped,
            )
            self._dropped = 0
        while self._backlog and self.link.up:
            ids, event = self._backlog[0]
            await self._publish_remote(ids, event, time.time())
            self._backlog.popleft()

    async def close(self) -> None:
        self._on_down()
        self._local.clear()
        self._backlog.clear()
