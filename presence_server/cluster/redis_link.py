"""One instance's link to Redis: is it up, this instance's heartbeat, recovery.

Redis is shared by every instance for two things: pub/sub (``redis_fanout``)
and the presence registry (``redis_registry``). Both must cope with Redis
going away, so the link is the one place that decides whether Redis is up:

* While up, a supervisor refreshes this instance's heartbeat key
  (``{prefix}hb:{epoch}``, expiring after the presence TTL) every TTL/3. Any
  Redis command that fails marks the link down at once.
* While down, the instance serves its own connections alone (same-instance
  friends keep working) and the supervisor retries every second or two.
* Each time the link comes up it starts a new **epoch** (``instance.N``):
  device entries written under an older epoch belong to a past life of this
  instance; the registry moves them to the new epoch, and any instance's
  sweeper removes entries of an epoch whose heartbeat expired. Then the
  ``on_up`` callbacks run in order: re-subscribe, re-register devices,
  re-sync connections. They must be idempotent: Redis may fail again halfway.

Commands are never retried by redis-py here (``retries=0``): a failure must
surface at once so the instance switches to local delivery, instead of
stalling every publish for seconds.
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

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "presence:"
RETRY_MIN_SECONDS = 0.5
RETRY_MAX_SECONDS = 2.0
COMMAND_TIMEOUT_SECONDS = 3.0
POOL_CONNECTIONS = 100
"""Redis connections per instance (besides the pub/sub one); more commands wait."""

REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
"""What a Redis call raises when Redis is unreachable or answers too slowly."""

Callback = Callable[[], Awaitable[None]]


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
        self.up = False
        self.generation = 0
        self.epoch = f"{self.instance}.0"
        self.old_epochs: list[str] = []
        """Epochs of this instance before the current one (cleaned by the registry)."""
        self.down_since: float | None = time.monotonic()
        self.last_error = "not connected yet"
        self._on_up: list[Callback] = []
        self._on_down: list[Callable[[], None]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.recovered = asyncio.Event()
        """Set each time the link is up and every ``on_up`` callback has run."""
        self.metrics.redis_up.set(0)

    # ------------------------------------------------------------ naming

    def key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(p) for p in parts)

    def heartbeat_key(self, epoch: str) -> str:
        return self.key("hb", epoch)

    @property
    def epochs_key(self) -> str:
        return self.key("epochs")

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
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.up:
            with contextlib.suppress(*REDIS_ERRORS):
                async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                    await self.client.delete(self.heartbeat_key(self.epoch))
                    await self.client.srem(self.epochs_key, self.epoch)
        self.up = False
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
        self.down_since = time.monotonic()
        self.metrics.redis_up.set(0)
        log.warning(
            "redis unreachable (%s); serving this instance's connections only until it returns",
            self.last_error,
            extra={"event": "redis_down", "redis": safe_url(self.url)},
        )
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

    async def _connect(self) -> bool:
        previous = self.epoch
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                await self.client.ping()
                self.generation += 1
                epoch = f"{self.instance}.{self.generation}"
                await self._beat(epoch, create=True)
                await self.client.sadd(self.epochs_key, epoch)
        except REDIS_ERRORS as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        if previous != epoch and previous not in self.old_epochs:
            self.old_epochs.append(previous)
        self.epoch = epoch
        outage = time.monotonic() - self.down_since if self.down_since is not None else 0.0
        self.up = True
        self.down_since = None
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
        log.info(
            "redis reachable (%s), epoch %s",
            f"after {outage:.1f} s" if self.generation > 1 else "at start",
            epoch,
            extra={"event": "redis_up", "redis": safe_url(self.url), "epoch": epoch},
        )
        self.recovered.set()
        return True

    async def _beat(self, epoch: str, create: bool = False) -> bool:
        """Refresh the heartbeat; False if it had expired (the epoch may be swept)."""
        done = await self.client.set(
            self.heartbeat_key(epoch), b"1", px=max(int(self.ttl * 1000), 1), xx=not create
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
