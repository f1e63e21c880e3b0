"""One instance's link to Redis: is it up, this instance's heartbeat, recovery.

Redis is shared by every instance for two things: pub/sub (``redis_fanout``)
and the presence registry (``redis_registry``). Both must cope with Redis
going away, so the link is the one place that decides whether Redis is up:

* While up, a supervisor refreshes this process's heartbeat key
  (``{prefix}hb:{epoch}``, expiring after the presence TTL) every TTL/3 and
  records the time of each beat in ``{prefix}beats`` (the last sign of life
  of an epoch, used as ``last_seen`` when it dies). Any Redis command that
  fails marks the link down at once.
* While down, the instance serves its own connections alone (same-instance
  friends keep working) and the supervisor retries every half second to one
  second.
* Each time the link comes up it starts a new **epoch**,
  ``{instance}.{process token}.{n}``. The process token is random per
  process, so a restarted process never continues a dead one's epoch even
  with the same ``--instance-id``: the dead epoch's heartbeat expires and
  any instance sweeps its devices. The previous epoch of this process is
  *retired* first (its heartbeat key says ``retired`` and keeps its TTL), so
  a registration still in flight under it is refused by Redis, while
  sweepers leave it alone until the registry has moved its devices. Then the
  ``on_up`` callbacks run in order: re-subscribe, re-register devices,
  re-sync connections. They must be idempotent: Redis may fail again halfway.
* Coming up again always starts from a fresh set of pool connections: after
  a Redis restart, every pooled connection is dead, and using one would take
  the link down a second time.

Commands are never retried by redis-py here (``retries=0``): a failure must
surface at once so the instance switches to local delivery, instead of
stalling every publish for seconds. There is one recovery path: any failure
calls ``mark_down``; only the supervisor brings the link up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..metrics import AnyMetrics, NullMetrics
from ..storage.database import safe_url
from .redis_batch import RedisBatch

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "presence:"
RETRY_MIN_SECONDS = 0.5
RETRY_MAX_SECONDS = 1.0
"""Reconnect attempts are at most this far apart: Redis back means recovered within it."""
COMMAND_TIMEOUT_SECONDS = 3.0
POOL_CONNECTIONS = 100
"""Redis connections per instance (besides the pub/sub one); more commands wait."""

REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
"""What a Redis call raises when Redis is unreachable or answers too slowly."""

Callback = Callable[[], Awaitable[None]]

LIVE = b"live"
RETIRED = b"retired"
"""Values of a heartbeat key: registrations are accepted only under a live epoch."""

BEAT = """
-- KEYS: heartbeat key, beats hash. ARGV: TTL ms, epoch, now (s)
if not redis.call('SET', KEYS[1], 'live', 'PX', ARGV[1], 'XX') then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
"""


def new_instance_id() -> str:
    """Host name plus a random suffix: readable in Redis, unique per process."""
    host = socket.gethostname().split(".")[0][:32] or "instance"
    return f"{host}-{secrets.token_hex(3)}"


class RedisLink:
    def __init__(
        self,
        url: str,
        *,
        ttl: float,
        prefix: str = DEFAULT_PREFIX,
        instance: str | None = None,
        metrics: AnyMetrics | None = None,
    ) -> None:
        self.url = url
        self.ttl = ttl
        self.prefix = prefix
        self.instance = instance or new_instance_id()
        self.process = f"{self.instance}.{secrets.token_hex(6)}"
        """Unique per process (the instance name may be reused by a restart):
        prefix of its epochs and origin of the events it publishes."""
        self.metrics = metrics or NullMetrics()
        # A burst of presence changes needs more commands in flight than the
        # pool has connections: they wait for one (up to the command timeout)
        # instead of failing with "too many connections", which would take
        # this instance off Redis under load.
        self.client: Any = aioredis.Redis.from_pool(
            aioredis.BlockingConnectionPool.from_url(
                url,
                max_connections=POOL_CONNECTIONS,
                timeout=COMMAND_TIMEOUT_SECONDS,
                socket_connect_timeout=COMMAND_TIMEOUT_SECONDS,
                socket_timeout=COMMAND_TIMEOUT_SECONDS,
                retry=Retry(NoBackoff(), 0),
                decode_responses=False,
            )
        )
        self.batch = RedisBatch(self.client.connection_pool, COMMAND_TIMEOUT_SECONDS)
        """The registry's writes and the fan-out's publishes: one write per burst,
        in order, on a connection of its own (``redis_batch``)."""
        self.up = False
        self.generation = 0
        self.epoch = f"{self.process}.0"
        self.old_epochs: list[str] = []
        """Epochs of this process before the current one (cleaned by the registry)."""
        self.down_since: float | None = time.monotonic()
        """When the current outage began: kept through failed recoveries, so the
        log reports the whole outage, not the time since the last relapse."""
        self.relapses = 0
        """Recoveries that failed halfway during the current outage."""
        self.last_error = "not connected yet"
        self._on_up: list[Callback] = []
        self._on_down: list[Callable[[], None]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.recovered = asyncio.Event()
        """Set each time the link is up and every ``on_up`` callback has run."""
        self._beat_script = self.client.register_script(BEAT)
        self.metrics.redis_up.set(0)

    # ------------------------------------------------------------ naming

    def key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(p) for p in parts)

    def heartbeat_key(self, epoch: str) -> str:
        return self.key("hb", epoch)

    @property
    def epochs_key(self) -> str:
        return self.key("epochs")

    @property
    def beats_key(self) -> str:
        """Hash epoch -> Unix time (s) of its last heartbeat: when it was last alive."""
        return self.key("beats")

    @property
    def process_prefix(self) -> str:
        """Every epoch of this process, and no other process's, starts with this."""
        return f"{self.process}."

    # ------------------------------------------------------------ life cycle

    def on_up(self, callback: Callback) -> None:
        self._on_up.append(callback)

    def on_down(self, callback: Callable[[], None]) -> None:
        self._on_down.append(callback)

    async def start(self) -> None:
        """Try to connect once (not fatal), then keep the link supervised."""
        await self._connect()
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name="redis-link")

    async def close(self) -> None:
        """Stop beating; the epoch's heartbeat goes at once (nothing may register
        under it any more). The epoch itself is left to the registry or a sweeper."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.up:
            with contextlib.suppress(*REDIS_ERRORS):
                async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                    await self.client.delete(self.heartbeat_key(self.epoch))
        self.up = False
        await self.batch.close()
        with contextlib.suppress(*REDIS_ERRORS):
            await self.client.aclose()

    def mark_down(self, error: BaseException | str) -> None:
        """A Redis call failed: serve locally until the supervisor reconnects."""
        reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.last_error = reason or "unreachable"
        if not self.up:
            return
        self.up = False
        self.recovered.clear()
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.warning(
                "redis unreachable (%s); serving this instance's connections only until it returns",
                self.last_error,
                extra={"event": "redis_down", "redis": safe_url(self.url)},
            )
        else:
            # Down again before the recovery finished: the same outage goes on.
            self.relapses += 1
            log.warning(
                "redis failed again while recovering (%s); still serving locally",
                self.last_error,
                extra={"event": "redis_relapse", "redis": safe_url(self.url)},
            )
        self.metrics.redis_up.set(0)
        for callback in self._on_down:
            try:
                callback()
            except Exception:
                log.exception("redis down callback failed")
        self._wake.set()

    async def ping(self) -> bool:
        """For /readyz: Redis answers right now."""
        if not self.up:
            return False
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                await self.client.ping()
        except REDIS_ERRORS as exc:
            self.mark_down(exc)
            return False
        return True

    async def _fresh_connections(self) -> None:
        """Drop every pooled connection: after an outage they may all be dead
        (Redis restarted), and the first command on one would fail."""
        with contextlib.suppress(*REDIS_ERRORS):
            await self.client.connection_pool.disconnect(inuse_connections=True)

    async def _connect(self) -> bool:
        previous = self.epoch
        if self.generation:
            await self._fresh_connections()
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                await self.client.ping()
                epoch = f"{self.process}.{self.generation + 1}"
                async with self.client.pipeline(transaction=True) as pipe:
                    if self.generation:
                        # Refuse late registrations under the old epoch, but keep
                        # its TTL: sweepers leave it to us until it expires.
                        pipe.set(self.heartbeat_key(previous), RETIRED, xx=True, keepttl=True)
                    pipe.set(self.heartbeat_key(epoch), LIVE, px=self._ttl_ms)
                    pipe.sadd(self.epochs_key, epoch)
                    pipe.hset(self.beats_key, epoch, int(time.time()))
                    await pipe.execute()
                self.generation += 1
        except REDIS_ERRORS as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        if self.generation > 1 and previous not in self.old_epochs:
            self.old_epochs.append(previous)
        self.epoch = epoch
        self.up = True
        self.metrics.redis_up.set(1)
        for callback in self._on_up:
            try:
                await callback()
                # Re-registering a large instance takes a while: keep the
                # new epoch alive meanwhile, or others would sweep it.
                async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                    alive = await self._beat(epoch)
                if not alive:
                    self.mark_down("heartbeat expired while re-registering")
                    return False
            except REDIS_ERRORS as exc:
                self.mark_down(exc)
                return False
            except Exception:
                log.exception("re-syncing with redis failed")
            if not self.up:
                return False
        outage = time.monotonic() - self.down_since if self.down_since is not None else 0.0
        relapses, self.relapses = self.relapses, 0
        self.down_since = None
        log.info(
            "redis reachable (%s), epoch %s",
            (
                f"after an outage of {outage:.1f} s"
                + (f", {relapses} failed recoveries" if relapses else "")
                if self.generation > 1
                else "at start"
            ),
            epoch,
            extra={
                "event": "redis_up",
                "redis": safe_url(self.url),
                "epoch": epoch,
                "outage_seconds": round(outage, 3) if self.generation > 1 else 0.0,
            },
        )
        self.recovered.set()
        return True

    @property
    def _ttl_ms(self) -> int:
        return max(int(self.ttl * 1000), 1)

    async def _beat(self, epoch: str) -> bool:
        """Refresh the heartbeat; False if it had expired (the epoch may be swept)."""
        done = await self._beat_script(
            keys=[self.heartbeat_key(epoch), self.beats_key],
            args=[self._ttl_ms, epoch, int(time.time())],
        )
        return bool(done)

    async def _supervise(self) -> None:
        delay = RETRY_MIN_SECONDS
        if not self.up:
            log.warning(
                "redis unreachable at start (%s); serving this instance's connections only "
                "and retrying",
                self.last_error,
                extra={"event": "redis_down", "redis": safe_url(self.url)},
            )
        while True:
            if self.up:
                delay = RETRY_MIN_SECONDS
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.ttl / 3):
                        await self._wake.wait()
                if not self.up:
                    continue
                try:
                    async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                        alive = await self._beat(self.epoch)
                except REDIS_ERRORS as exc:
                    self.mark_down(exc)
                    continue
                if not alive:
                    # This process stalled for longer than the TTL: other
                    # instances may have swept its devices. Start a new epoch
                    # and re-register everything, as after an outage.
                    self.mark_down(f"heartbeat of epoch {self.epoch} expired (stalled > TTL?)")
            else:
                if await self._connect():
                    continue
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
