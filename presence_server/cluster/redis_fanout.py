"""Fan-out across instances: one Redis pub/sub message per event per destination instance.

Every process subscribes to one channel of its own, ``{prefix}i:{process}``
(``RedisLink.process``: unique per process, even when a restart reuses the
instance id). To publish an event for users X, Y, Z, an instance runs one
script (``ROUTE``) in Redis that reads which processes hold devices of X, Y
and Z from the presence registry (``redis_registry`` keeps
``{prefix}at:{user}``, the processes holding a field of the user's device
hash, in step with it) and publishes **one** message to
each of those processes, naming the recipients it holds. The receiving
instance decodes the message once and hands the same event to each local
recipient's connections. Nothing is published for recipients that are
offline, and no instance receives (or filters) events for users it does not
serve. The receiving instance reads its subscription in bulk: every push
buffered per wake-up, straight through redis-py's hiredis reader, not one
``get_message`` call per message (``_listen``).

Why routing through the registry is enough: a connection takes its device
slot in the registry (``reserve``: a field under this process's epoch, and
this process in ``{prefix}at:{user}``, in one script) before it subscribes
here and before it reads any state; so once it reads, every event routed
after that finds this process and reaches it. An
instance that cannot write to the registry (Redis down) is re-registered
and re-synced when Redis returns, as for any outage.

An event's ``ROUTE`` is queued in the link's ``RedisBatch`` the moment it
is published, with every other write of this instance (registry scripts
included): one connection, written in queue order, so an instance's events
reach Redis, and therefore every other instance, in the order they were
published, and a burst costs one write (writes are pipelined: none waits
for the round trip of the one before). A durable event's
publisher waits for its reply; a presence delta's does not (its reply is
checked in a callback; a failure is an outage like any other). With sharded
pub/sub (``--redis-pubsub``) the routes come back to be published on the
shards, so there one flusher task sends the queue in order instead.

The publishing instance also hands the event to its own connections of
those users directly, and the script never publishes to the publishing
process: same-instance delivery costs no Redis round trip and keeps working
while Redis is down.

Pub/sub is lossy: an event published while Redis (or this instance's link to
it) is down never arrives elsewhere. What matters is made good afterwards:

* Durable events (messages, relation changes, revocations, account
  deletion, expiry notices) are in the database before they are published,
  and events this instance failed to publish are kept (bounded) and
  published again once Redis is back.
* Presence is re-registered (``redis_registry``) and every connection gets
  a fresh snapshot and the messages it is missing (``Hub.resync_all``).

Wire format of a published message: the recipients on that instance as
decimal ids separated by commas, a newline, a compact JSON header, a
newline, then the frame bytes exactly as the connections will send them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

import hiredis
import msgspec
from redis._parsers.hiredis import NOT_ENOUGH_DATA
from redis.exceptions import ResponseError

from ..metrics import AnyMetrics, NullMetrics
from .fanout import Event, LocalSubscribers, Subscriber
from .redis_batch import READ_BYTES, Template, hiredis_parts, replies_of
from .redis_link import COMMAND_TIMEOUT_SECONDS, REDIS_ERRORS, RedisLink
from .redis_shards import ShardedPubSub

log = logging.getLogger(__name__)

BACKLOG_EVENTS = 10_000
"""Durable events kept for re-publishing after an outage; older ones are dropped
(their recipients still get messages on replay and relations on their next snapshot)."""
BATCH_EVENTS = 256
"""Events sent in one pipeline at most; a longer queue is sent in several."""

ROUTE = """
-- ARGV: publishing process, channel prefix ({p}i:; empty: return the routes
--       instead of publishing), header and frame, holders prefix ({p}at:),
--       the recipients' ids joined by commas.
-- Publishes one message per process holding a device of a recipient (never
-- to the publishing process, which delivered already). Returns the count.
-- The holders keys (redis_registry) are named here rather than passed as
-- KEYS: a call with 50 keys and 50 ids cost the publishing instance ~70 us
-- of Python to encode, one string costs nothing; the registry's Redis is
-- never a cluster. One MGET reads them all (a call per recipient cost Redis
-- ~0.6 us each, offline or not).
local uids, keys = {}, {}
for uid in string.gmatch(ARGV[5], '%d+') do
  uids[#uids + 1] = uid
  keys[#keys + 1] = ARGV[4] .. uid
end
local groups, order = {}, {}
for start = 1, #keys, 500 do
  local stop = math.min(start + 499, #keys)
  local values = redis.call('MGET', unpack(keys, start, stop))
  for i = 1, stop - start + 1 do
    local held = values[i]
    if held then
      local uid = uids[start + i - 1]
      for process in string.gmatch(held, '[^\\n]+') do
        if process ~= ARGV[1] then
          local group = groups[process]
          if group == nil then
            group = {}
            groups[process] = group
            order[#order + 1] = process
          end
          group[#group + 1] = uid
        end
      end
    end
  end
end
if ARGV[2] == '' then
  -- Sharded pub/sub lives elsewhere: return process, ids pairs to publish there.
  local routes = {}
  for _, process in ipairs(order) do
    routes[#routes + 1] = process
    routes[#routes + 1] = table.concat(groups[process], ',')
  end
  return routes
end
for _, process in ipairs(order) do
  redis.call('PUBLISH', ARGV[2] .. process, table.concat(groups[process], ',') .. '\\n' .. ARGV[3])
end
return #order
"""


class _Header(msgspec.Struct, omit_defaults=True, gc=False):  # no cycles: see ``Event``
    o: str
    """Origin process: it delivered locally already and skips its own copy."""
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


_NO_SESSIONS: frozenset[str] = frozenset()
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Header)


def encode_event(event: Event, origin: str, now: float) -> bytes:
    """The header and frame of a published message (what ``ROUTE`` puts after the ids)."""
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


def encode_message(recipients: Iterable[int], event: Event, origin: str, now: float) -> bytes:
    """A whole message as one process receives it (the script builds the same bytes)."""
    ids = ",".join(str(uid) for uid in recipients).encode()
    return ids + b"\n" + encode_event(event, origin, now)


def decode_message(payload: bytes) -> tuple[list[int], Event, str, float]:
    """Recipients, event, origin and send time; raises ValueError or
    ``msgspec.DecodeError`` on anything malformed."""
    ids, _, rest = payload.partition(b"\n")
    recipients = list(map(int, ids.split(b",")))
    head, sep, frame = rest.partition(b"\n")
    if not sep:
        raise ValueError("no header")
    header = _decoder.decode(head)
    event = Event(
        frame=frame if header.has_frame else None,
        seq=header.s,
        subject=header.u,
        friend=header.f,
        version=header.v,
        revoke=frozenset(header.r) if header.r else _NO_SESSIONS,
        revoke_all=header.ra,
        account_deleted=header.ad,
    )
    return recipients, event, header.o, header.t


def _pushes(pubsub: Any) -> tuple[hiredis.Reader, asyncio.StreamReader] | None:
    """The subscription connection's hiredis reader and socket stream, or None
    when redis-py reads it some other way (then ``get_message`` it is).
    Pushes redis-py read while confirming the subscription are still in the
    reader (``redis_batch.hiredis_parts``)."""
    return hiredis_parts(getattr(pubsub, "connection", None))


def _ids(ids: Iterable[int]) -> bytes:
    """Recipients as ``ROUTE`` reads them: decimal ids separated by commas."""
    return ",".join(map(str, ids)).encode()


def _check(outcome: Any) -> None:
    """Raise the failure in a ``RedisBatch.submit`` outcome of one ``ROUTE``
    (the write's error, or the script's error reply, e.g. ``NOSCRIPT``)."""
    for reply in replies_of(outcome):
        if isinstance(reply, ResponseError):
            raise reply


def _durable(event: Event) -> bool:
    """Everything but presence deltas, which re-registration makes good instead."""
    return not (event.subject is not None and event.friend is None)


_Pending = tuple[tuple[int, ...], Event, float, "asyncio.Future[None] | None"]
"""Recipients, event, publish time, and the publisher's future (None: nobody waits)."""


class RedisFanout:
    def __init__(
        self,
        link: RedisLink,
        metrics: AnyMetrics | None = None,
        *,
        shards: ShardedPubSub | None = None,
    ) -> None:
        self.link = link
        self.shards = shards
        """Sharded pub/sub elsewhere (``--redis-pubsub``); None: plain pub/sub on the link."""
        self.metrics = metrics or NullMetrics()
        # The labelled children, looked up once: ``labels()`` per event was a
        # dozen calls (a tuple, a lock, a dict) on the path of every delta.
        self._local_deliveries = self.metrics.deliveries.labels("local")
        self._local_latency = self.metrics.fanout_latency.labels("local")
        self._redis_deliveries = self.metrics.deliveries.labels("redis")
        self._redis_latency = self.metrics.fanout_latency.labels("redis")
        self._local = LocalSubscribers()
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._outbox: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._backlog: collections.deque[tuple[tuple[int, ...], Event]] = collections.deque(
            maxlen=BACKLOG_EVENTS
        )
        self._dropped = 0
        self._closed = False
        self._route_sha = hashlib.sha1(ROUTE.encode()).hexdigest()
        self._route = Template(
            b"EVALSHA",
            self._route_sha,
            0,
            link.process,
            b"" if shards is not None else self.channel_of(""),
            None,
            link.key("at", ""),
            None,
        )
        """``ROUTE`` packed but for the payload and the recipients' ids."""
        link.on_up(self._on_up)
        link.on_down(self._on_down)

    @property
    def channel(self) -> bytes:
        """This process's channel: every event for its users arrives here."""
        return self.channel_of(self.link.process)

    def channel_of(self, process: str) -> bytes:
        return self.link.key("i", process).encode()

    @property
    def local_users(self) -> int:
        return len(self._local)

    # ------------------------------------------------------------ subscriptions

    async def subscribe(self, user_id: int, subscriber: Subscriber) -> None:
        """Local only: the device's registry field routes its events here (see above)."""
        self._local.add(user_id, subscriber)

    async def unsubscribe(self, user_id: int, subscriber: Subscriber) -> None:
        self._local.discard(user_id, subscriber)

    # ------------------------------------------------------------ publishing

    async def publish(self, user_ids: Iterable[int], event: Event) -> None:
        ids = tuple(set(user_ids))
        if not ids:
            return
        start = time.time()
        delivered = self._local.deliver(ids, event)
        if delivered:
            self._local_deliveries.inc(delivered)
            self._local_latency.observe(max(time.time() - start, 0.0))
        if self._closed:
            return
        if not self.link.up:
            self._keep(ids, event)
            return
        durable = _durable(event)
        if self.shards is None:
            # Plain pub/sub: the event's ROUTE goes straight into the link's
            # batch, in publish order with every other write of this
            # instance (one queue, one connection: ``redis_batch``).
            route = self._route(encode_event(event, self.link.process, start), _ids(ids))
            if not durable:
                # A presence delta: nobody waits for Redis to have it. The
                # hub holds the user's lock for the delta, and the round trip
                # under it was a suspension, a future and a task hop per
                # update for a value that re-registration makes good anyway
                # if it is lost; a failure is reported when the reply comes.
                self.link.batch.send([route], self._route_failed)
                return
            routed = self.link.batch.submit([route])
            # Returns once the event is in Redis (or kept for after the
            # outage): callers of durable events may rely on it having left
            # this instance. No shield: a cancelled caller cancels only its
            # own future; the event is written all the same.
            try:
                _check(await routed)
            except REDIS_ERRORS as exc:
                self.link.mark_down(exc)
                self._keep(ids, event)
            return
        loop = asyncio.get_running_loop()
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush(), name="redis-publisher")
        if not durable:
            self._outbox.append((ids, event, start, None))  # as above: nobody waits
            return
        future: asyncio.Future[None] = loop.create_future()
        self._outbox.append((ids, event, start, future))
        await future

    def _route_failed(self, error: BaseException) -> None:
        """A presence delta's ROUTE failed (the write, or the script's error
        reply such as ``NOSCRIPT``): an outage, as for any other write."""
        if not self._closed:
            self.link.mark_down(error)

    async def _flush(self) -> None:
        """Send the queue in pipelines, oldest first, until it is empty.

        A task of its own, so a publisher that is cancelled while waiting
        cannot cut a pipeline short, and so events leave in publish order.
        """
        try:
            while self._outbox:
                batch = self._outbox[:BATCH_EVENTS]
                del self._outbox[:BATCH_EVENTS]
                try:
                    if not self.link.up:
                        raise ConnectionError("redis is down")
                    await self._send([(ids, event, now) for ids, event, now, _ in batch])
                except REDIS_ERRORS as exc:
                    self.link.mark_down(exc)
                    for ids, event, _, _ in batch:
                        self._keep(ids, event)
                finally:
                    for *_, future in batch:
                        if future is not None and not future.done():
                            future.set_result(None)
        finally:
            if self._flusher is asyncio.current_task():
                self._flusher = None
            for *_, future in self._outbox:  # only if cancelled: do not strand publishers
                if future is not None and not future.done():
                    future.set_result(None)

    async def _send(self, batch: Sequence[tuple[tuple[int, ...], Event, float]]) -> None:
        """One pipeline, one ``ROUTE`` script per event (then, with sharded
        pub/sub, one pipeline of ``SPUBLISH`` per shard)."""
        link = self.link
        shards = self.shards
        payloads = [encode_event(event, link.process, now) for _, event, now in batch]
        route = self._route
        # EVALSHA straight away: the script was loaded when the link came up
        # (a Redis that lost it answers NOSCRIPT, which counts as an outage and
        # loads it again), so no SCRIPT EXISTS per write. Through the link's
        # batch: the registry's writes of the moment share the round trip.
        # The arguments that never change are packed once (``_route``).
        replies = await link.batch.execute(
            [
                route(payload, _ids(ids))
                for (ids, _, _), payload in zip(batch, payloads, strict=True)
            ]
        )
        for reply in replies:
            if isinstance(reply, ResponseError):
                raise reply
        if shards is None:
            return
        messages: list[tuple[bytes, bytes]] = []
        for routes, payload in zip(replies, payloads, strict=True):
            for i in range(0, len(routes) - 1, 2):
                messages.append(
                    (self.channel_of(routes[i].decode()), routes[i + 1] + b"\n" + payload)
                )
        if messages:
            await shards.publish(messages)

    def _keep(self, ids: tuple[int, ...], event: Event) -> None:
        if not _durable(event):
            return
        if len(self._backlog) == self._backlog.maxlen:
            self._dropped += 1
        self._backlog.append((ids, event))

    # ------------------------------------------------------------ receiving

    async def _listen(self, pubsub: Any) -> None:
        """Hand every message pushed on the subscription to its local recipients.

        With hiredis (redis-py's parser of choice, and a dependency here) the
        subscription's socket is read straight into its hiredis reader, and
        every complete push is handled before the next read: one wake-up per
        read of up to ``READ_BYTES``, however many messages it holds. Through
        ``get_message`` each message cost ~12 us of redis-py's per-call
        machinery (a retry wrapper, a push handler that builds a log line,
        a dict per message) before any of ours (docs/decisions.md, "The
        receiving side reads its pushes in bulk").
        """
        try:
            pushes = _pushes(pubsub)
            if pushes is None:
                await self._listen_per_message(pubsub)
                return
            reader, stream = pushes
            received = self._received
            while True:
                delivered = 0
                reply = reader.gets()
                while reply is not NOT_ENOUGH_DATA:
                    if type(reply) is list and reply[0] == b"message":
                        delivered += received(reply[2])  # the common case, inline
                    elif not self._push(reply):
                        return
                    reply = reader.gets()
                if delivered:
                    # Once per read, not per message: a counter's lock per
                    # event was a cluster-only cost on every delta.
                    self._redis_deliveries.inc(delivered)
                data = await stream.read(READ_BYTES)
                if not data:
                    raise ConnectionError("redis closed the subscription connection")
                reader.feed(data)
        except asyncio.CancelledError:
            raise
        except REDIS_ERRORS as exc:
            self.link.mark_down(exc)
        except Exception:
            log.exception("redis listener failed")
            self.link.mark_down("listener failed")

    async def _listen_per_message(self, pubsub: Any) -> None:
        """Without hiredis's reader at hand: one ``get_message`` per push."""
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None:
                continue
            if not self._push([message.get("type"), message.get("channel"), message["data"]]):
                return

    def _push(self, reply: Any) -> bool:
        """One push from the subscription; False when the subscription is gone."""
        if isinstance(reply, Exception):
            raise reply
        kind = reply[0]
        if isinstance(kind, str):
            kind = kind.encode()
        if kind in (b"message", b"smessage"):
            delivered = self._received(reply[2])
            if delivered:
                self._redis_deliveries.inc(delivered)
        elif kind == b"sunsubscribe":
            # The channel's slot moved to another node (resharding,
            # failover): recover as from an outage, on the new owner.
            self.link.mark_down("the sharded pub/sub channel moved")
            return False
        return True

    def _received(self, payload: bytes) -> int:
        """Deliver one published message; how many connections got it
        (the caller counts them)."""
        try:
            recipients, event, origin, sent_at = decode_message(payload)
        except (msgspec.DecodeError, ValueError):
            log.warning("ignoring an undecodable event on %r", self.channel)
            return 0
        if origin == self.link.process:
            return 0
        self._redis_latency.observe(max(time.time() - sent_at, 0.0))
        return self._local.deliver(recipients, event)

    # ------------------------------------------------------------ outages

    def _on_down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None and listener is not asyncio.current_task():
            listener.cancel()
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            asyncio.get_running_loop().create_task(self._discard(pubsub))

    @staticmethod
    async def _discard(pubsub: Any) -> None:
        with contextlib.suppress(*REDIS_ERRORS, asyncio.CancelledError):
            async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                await pubsub.aclose()

    async def _on_up(self) -> None:
        """A new pub/sub connection on this process's channel, then the backlog."""
        self._on_down()
        async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
            await self.link.client.script_load(ROUTE)
        # Wait for Redis to confirm each subscription: events routed here from
        # now on arrive (the re-registration and re-sync that follow rely on it).
        if self.shards is not None:
            await self.shards.open()
            pubsub = self._pubsub = await self.shards.subscribe(self.channel)
        else:
            pubsub = self._pubsub = self.link.client.pubsub()
            async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                await pubsub.subscribe(self.channel)
                while True:
                    reply = await pubsub.get_message(timeout=COMMAND_TIMEOUT_SECONDS)
                    if reply is not None and reply.get("type") in (b"subscribe", "subscribe"):
                        break
        self._listener = asyncio.get_running_loop().create_task(
            self._listen(pubsub), name="redis-listener"
        )
        if self._dropped:
            log.warning(
                "%d events published during the outage were dropped (backlog full); "
                "their recipients catch up on their next snapshot or replay",
                self._dropped,
            )
            self._dropped = 0
        while self._backlog and self.link.up:
            batch = [self._backlog[i] for i in range(min(BATCH_EVENTS, len(self._backlog)))]
            now = time.time()
            await self._send([(ids, event, now) for ids, event in batch])
            for _ in batch:
                self._backlog.popleft()

    async def close(self) -> None:
        self._closed = True
        flusher = self._flusher
        if self.link.up:
            # Presence deltas do not wait for Redis: the last ones (a drain's
            # "offline" for friends elsewhere) may still be queued. Let them
            # be written, as long as one write may take: the flusher's queue,
            # then the batch's (a PING answered means all before it was).
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, *REDIS_ERRORS):
                async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                    if flusher is not None:
                        await asyncio.shield(flusher)
                    await self.link.batch.call("PING")
        self._on_down()
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        # A flusher cancelled before it first ran never reaches its own
        # clean-up: release whoever still waits.
        outbox, self._outbox = self._outbox, []
        for *_, future in outbox:
            if future is not None and not future.done():
                future.set_result(None)
        self._local.clear()
        self._backlog.clear()
        if self.shards is not None:
            await self.shards.close()
