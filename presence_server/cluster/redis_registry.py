"""The presence registry shared by all instances, in Redis.

Layout (``{p}`` is the key prefix, default ``presence:``):

* ``{p}dev:{user}`` — hash, one field per connected device,
  ``{epoch}|{connection id}`` → the device's state (JSON), plus ``~v``, the
  user's presence version (Redis ``TIME`` in microseconds, at least one more
  than the last). The merge rules are ``presence.merge``, applied here in
  Python to what the scripts return; the scripts make each change atomic.
* ``{p}users:{epoch}`` — set of users with a device under that epoch.
* ``{p}epochs`` — set of epochs that may still own devices.
* ``{p}hb:{epoch}`` — the heartbeat key ``RedisLink`` refreshes (TTL).

**Crashed or partitioned instances.** Every instance runs a sweeper every
TTL/4; the one that wins ``{p}sweep-lock`` (``SET NX PX``) looks for epochs
whose heartbeat key has expired, removes their devices user by user (a
script that re-checks the heartbeat, so a live epoch is never touched), and
hands the resulting changes to the hub, which stamps last seen and tells
friends. A device of a dead instance therefore disappears between 2/3·TTL and
TTL after the crash plus at most one sweep interval: with the default TTL of
20 s, friends see the user offline within 25 s.

**Redis down.** The instance always keeps its own devices in memory. While
Redis is unreachable, changes are applied to that copy only (friends on this
instance are told; merges cannot see devices elsewhere). When Redis returns,
``reregister`` moves this instance's devices from its old epochs to the new
one in one script per user and reports what changed for friends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import msgspec

from presence_protocol import Activity, Status

from ..domain.presence import OFFLINE, DeviceState, merge
from ..metrics import AnyMetrics, NullMetrics
from .redis_link import COMMAND_TIMEOUT_SECONDS, REDIS_ERRORS, RedisLink
from .registry import Change, Observed

log = logging.getLogger(__name__)

VERSION_FIELD = b"~v"
PIPELINE_CHUNK = 200

_BUMP = """
local function bump(key)
  local t = redis.call('TIME')
  local v = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = tonumber(redis.call('HGET', key, '~v') or '0')
  if v <= last then v = last + 1 end
  redis.call('HSET', key, '~v', string.format('%.0f', v))
  return v
end
local function starts(s, prefix) return string.sub(s, 1, #prefix) == prefix end
"""

PUT = (
    _BUMP
    + """
-- KEYS: devices hash, epoch users set. ARGV: field, state, user id
local before = redis.call('HGETALL', KEYS[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return {before, bump(KEYS[1])}
"""
)

REMOVE = (
    _BUMP
    + """
-- KEYS: devices hash, epoch users set. ARGV: field, epoch prefix, user id
local before = redis.call('HGETALL', KEYS[1])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return {before, 0} end
local v = bump(KEYS[1])
local fields = redis.call('HKEYS', KEYS[1])
local mine = 0
for _, f in ipairs(fields) do if starts(f, ARGV[2]) then mine = mine + 1 end end
if mine == 0 then redis.call('SREM', KEYS[2], ARGV[3]) end
if #fields <= 1 then redis.call('DEL', KEYS[1]) end
return {before, v}
"""
)

MOVE = (
    _BUMP
    + """
-- KEYS: devices hash, new epoch users set.
-- ARGV: instance prefix, user id, then field, state pairs under the new epoch
local before = redis.call('HGETALL', KEYS[1])
for i = 1, #before, 2 do
  if starts(before[i], ARGV[1]) then redis.call('HDEL', KEYS[1], before[i]) end
end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if #ARGV >= 3 then redis.call('SADD', KEYS[2], ARGV[2]) end
local v = bump(KEYS[1])
if redis.call('HLEN', KEYS[1]) <= 1 then redis.call('DEL', KEYS[1]) end
return {before, v}
"""
)

SWEEP = (
    _BUMP
    + """
-- KEYS: devices hash, heartbeat key of the dead epoch. ARGV: epoch prefix
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
local before = redis.call('HGETALL', KEYS[1])
local removed = 0
for i = 1, #before, 2 do
  if starts(before[i], ARGV[1]) then
    redis.call('HDEL', KEYS[1], before[i])
    removed = removed + 1
  end
end
if removed == 0 then return {before, 0} end
local v = bump(KEYS[1])
if redis.call('HLEN', KEYS[1]) <= 1 then redis.call('DEL', KEYS[1]) end
return {before, v}
"""
)


class _Stored(msgspec.Struct, array_like=True):
    status: Status
    activity: Activity | None
    until: int | None
    status_stamp: int
    activity_stamp: int


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Stored)


def encode_state(state: DeviceState) -> bytes:
    return _encoder.encode(
        _Stored(state.status, state.activity, state.until, state.status_stamp, state.activity_stamp)
    )


def decode_state(raw: bytes) -> DeviceState | None:
    try:
        s = _decoder.decode(raw)
    except msgspec.DecodeError:
        return None
    return DeviceState(s.status, s.activity, s.until, s.status_stamp, s.activity_stamp)


def parse_devices(flat: list[bytes]) -> dict[bytes, DeviceState]:
    """HGETALL's flat field/value list, without the version field."""
    devices: dict[bytes, DeviceState] = {}
    for i in range(0, len(flat) - 1, 2):
        field = flat[i]
        if field == VERSION_FIELD:
            continue
        state = decode_state(flat[i + 1])
        if state is not None:
            devices[field] = state
    return devices


def parse_version(flat: list[bytes]) -> int:
    for i in range(0, len(flat) - 1, 2):
        if flat[i] == VERSION_FIELD:
            try:
                return int(flat[i + 1])
            except ValueError:
                return 0
    return 0


ChangesHandler = Callable[[Mapping[int, Change]], Awaitable[None]]


class RedisRegistry:
    def __init__(self, link: RedisLink, metrics: AnyMetrics | None = None) -> None:
        self.link = link
        self.metrics = metrics or NullMetrics()
        self.local: dict[int, dict[str, DeviceState]] = {}
        """This instance's devices: the truth for them, Redis or not."""
        self._local_versions: dict[int, int] = {}
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        client = link.client
        self._put = client.register_script(PUT)
        self._remove = client.register_script(REMOVE)
        self._move = client.register_script(MOVE)
        self._sweep = client.register_script(SWEEP)
        self.on_changes: ChangesHandler | None = None
        """Set by the hub: publishes changes found by the sweeper and re-registration."""
        self._sweeper: asyncio.Task[None] | None = None
        self.swept = asyncio.Event()
        """Set after each sweep pass that removed something (tests wait on it)."""
        link.on_up(self.reregister)

    # ------------------------------------------------------------ keys

    def _devices_key(self, user_id: int) -> str:
        return self.link.key("dev", user_id)

    def _users_key(self, epoch: str) -> str:
        return self.link.key("users", epoch)

    def _field(self, device: str) -> bytes:
        return f"{self.link.epoch}|{device}".encode()

    def _lock(self, user_id: int) -> asyncio.Lock:
        lock = self._locks.get(user_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[user_id] = lock
        return lock

    def _local_change(self, user_id: int, before: list[DeviceState]) -> Change:
        """A change computed from this instance's devices only (Redis down)."""
        after = list(self.local.get(user_id, {}).values())
        version = max(time.time_ns() // 1000, self._local_versions.get(user_id, 0) + 1)
        self._local_versions[user_id] = version
        if user_id not in self.local:
            self._local_versions.pop(user_id, None)
        return Change(merge(before), merge(after), version)

    # ------------------------------------------------------------ registry protocol

    async def put(self, user_id: int, device: str, state: DeviceState) -> Change:
        async with self._lock(user_id):
            mine = self.local.setdefault(user_id, {})
            before_local = list(mine.values())
            mine[device] = state
            if self.link.up:
                field = self._field(device)
                try:
                    async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                        flat, version = await self._put(
                            keys=[self._devices_key(user_id), self._users_key(self.link.epoch)],
                            args=[field, encode_state(state), user_id],
                        )
                except REDIS_ERRORS as exc:
                    self.link.mark_down(exc)
                else:
                    devices = parse_devices(flat)
                    before = merge(devices.values())
                    devices[field] = state
                    return Change(before, merge(devices.values()), int(version))
            return self._local_change(user_id, before_local)

    async def remove(self, user_id: int, device: str) -> Change:
        async with self._lock(user_id):
            mine = self.local.get(user_id)
            if mine is None or device not in mine:
                return Change(OFFLINE, OFFLINE)
            before_local = list(mine.values())
            del mine[device]
            if not mine:
                del self.local[user_id]
            if self.link.up:
                field = self._field(device)
                try:
                    async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                        flat, version = await self._remove(
                            keys=[self._devices_key(user_id), self._users_key(self.link.epoch)],
                            args=[field, f"{self.link.epoch}|", user_id],
                        )
                except REDIS_ERRORS as exc:
                    self.link.mark_down(exc)
                else:
                    devices = parse_devices(flat)
                    before = merge(devices.values())
                    devices.pop(field, None)
                    return Change(before, merge(devices.values()), int(version))
            return self._local_change(user_id, before_local)

    async def seen(self, user_ids: Iterable[int]) -> dict[int, Observed]:
        ids = list(dict.fromkeys(user_ids))
        if self.link.up:
            try:
                return await self._seen_shared(ids)
            except REDIS_ERRORS as exc:
                self.link.mark_down(exc)
        result: dict[int, Observed] = {}
        for uid in ids:
            mine = self.local.get(uid)
            result[uid] = (
                Observed(merge(mine.values()), self._local_versions.get(uid, 0))
                if mine
                else Observed()
            )
        return result

    async def _seen_shared(self, ids: list[int]) -> dict[int, Observed]:
        result: dict[int, Observed] = {}
        async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
            for start in range(0, len(ids), PIPELINE_CHUNK):
                chunk = ids[start : start + PIPELINE_CHUNK]
                async with self.link.client.pipeline(transaction=False) as pipe:
                    for uid in chunk:
                        pipe.hgetall(self._devices_key(uid))
                    replies = await pipe.execute()
                for uid, mapping in zip(chunk, replies, strict=True):
                    flat: list[bytes] = []
                    for field, value in mapping.items():
                        flat += [field, value]
                    devices = parse_devices(flat)
                    result[uid] = (
                        Observed(merge(devices.values()), parse_version(flat))
                        if devices
                        else Observed()
                    )
        return result

    async def device_count(self, user_id: int) -> int:
        if self.link.up:
            try:
                async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                    fields = await self.link.client.hkeys(self._devices_key(user_id))
                return sum(1 for f in fields if f != VERSION_FIELD)
            except REDIS_ERRORS as exc:
                self.link.mark_down(exc)
        return len(self.local.get(user_id, ()))

    async def connected(self) -> list[int]:
        return list(self.local)

    # ------------------------------------------------------------ recovery

    async def reregister(self) -> None:
        """Move this instance's devices to the current epoch; publish what changed."""
        link = self.link
        instance_prefix = f"{link.instance}."
        changes: dict[int, Change] = {}
        users = list(self.local)
        for start in range(0, len(users), PIPELINE_CHUNK):
            chunk = users[start : start + PIPELINE_CHUNK]
            locks = [self._lock(uid) for uid in chunk]
            async with contextlib.AsyncExitStack() as stack:
                for lock in locks:
                    await stack.enter_async_context(lock)
                fields: dict[int, dict[bytes, DeviceState]] = {}
                async with link.client.pipeline(transaction=False) as pipe:
                    for uid in chunk:
                        mine = {self._field(d): s for d, s in self.local.get(uid, {}).items()}
                        fields[uid] = mine
                        args: list[Any] = [instance_prefix, uid]
                        for field, state in mine.items():
                            args += [field, encode_state(state)]
                        await self._move(
                            keys=[self._devices_key(uid), self._users_key(link.epoch)],
                            args=args,
                            client=pipe,
                        )
                    async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS * 4):
                        replies = await pipe.execute()
            for uid, (flat, version) in zip(chunk, replies, strict=True):
                devices = parse_devices(flat)
                before = merge(devices.values())
                kept = {
                    f: s for f, s in devices.items() if not f.decode().startswith(instance_prefix)
                }
                kept.update(fields[uid])
                changes[uid] = Change(before, merge(kept.values()), int(version))
        # Our own past epochs: nothing of them is left in the device hashes.
        for old in list(link.old_epochs):
            async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                await link.client.delete(self._users_key(old), link.heartbeat_key(old))
                await link.client.srem(link.epochs_key, old)
            link.old_epochs.remove(old)
        changed = {uid: c for uid, c in changes.items() if c.changed}
        if changed:
            log.info(
                "redis: re-registered %d users, %d presence changes published",
                len(users),
                len(changed),
                extra={"event": "presence_reregistered", "users": len(users)},
            )
        if changed and self.on_changes is not None:
            await self.on_changes(changed)

    # ------------------------------------------------------------ sweeping dead instances

    @property
    def sweep_interval(self) -> float:
        return max(self.link.ttl / 4, 0.1)

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(
            self._sweep_loop(), name="presence-sweeper"
        )

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            if not self.link.up:
                continue
            try:
                await self.sweep_once()
            except REDIS_ERRORS as exc:
                self.link.mark_down(exc)
            except Exception:
                log.exception("presence sweep failed; trying again next interval")

    async def sweep_once(self) -> int:
        """Remove the devices of expired epochs (if this instance holds the lock)."""
        link = self.link
        client = link.client
        async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
            won = await client.set(
                link.key("sweep-lock"),
                link.epoch.encode(),
                nx=True,
                px=max(int(self.sweep_interval * 2000), 200),
            )
        if not won:
            return 0
        removed = 0
        async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
            epochs = [e.decode() for e in await client.smembers(link.epochs_key)]
        for epoch in epochs:
            if epoch.startswith(f"{link.instance}."):
                continue  # ours: re-registration cleans them
            async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                alive = await client.exists(link.heartbeat_key(epoch))
            if alive:
                continue
            removed += await self._sweep_epoch(epoch)
        if removed:
            self.swept.set()
        return removed

    async def _sweep_epoch(self, epoch: str) -> int:
        link = self.link
        client = link.client
        async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
            users = [int(u) for u in await client.smembers(self._users_key(epoch))]
        prefix = f"{epoch}|"
        changes: dict[int, Change] = {}
        removed = 0
        for start in range(0, len(users), PIPELINE_CHUNK):
            chunk = users[start : start + PIPELINE_CHUNK]
            async with client.pipeline(transaction=False) as pipe:
                for uid in chunk:
                    await self._sweep(
                        keys=[self._devices_key(uid), link.heartbeat_key(epoch)],
                        args=[prefix],
                        client=pipe,
                    )
                async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS * 4):
                    replies = await pipe.execute()
            for uid, reply in zip(chunk, replies, strict=True):
                if reply is None:
                    return removed  # the epoch's heartbeat is back: not dead after all
                flat, version = reply
                devices = parse_devices(flat)
                gone = [f for f in devices if f.startswith(prefix.encode())]
                if not gone:
                    continue
                removed += len(gone)
                before = merge(devices.values())
                for field in gone:
                    del devices[field]
                changes[uid] = Change(before, merge(devices.values()), int(version))
        async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
            await client.delete(self._users_key(epoch))
            await client.srem(link.epochs_key, epoch)
        self.metrics.devices_swept.inc(removed)
        log.info(
            "presence: instance epoch %s stopped refreshing its heartbeat; "
            "removed %d devices of %d users",
            epoch,
            removed,
            len(users),
            extra={"event": "presence_swept", "epoch": epoch, "devices": removed},
        )
        changed = {uid: c for uid, c in changes.items() if c.changed}
        if changed and self.on_changes is not None:
            await self.on_changes(changed)
        return removed

    async def close(self) -> None:
        task, self._sweeper = self._sweeper, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not self.link.up:
            return
        with contextlib.suppress(*REDIS_ERRORS):
            async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                await self.link.client.delete(self._users_key(self.link.epoch))
