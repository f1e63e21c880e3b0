"""The presence registry shared by all instances, in Redis.

Layout (``{p}`` is the key prefix, default ``presence:``):

* ``{p}dev:{user}`` — hash, one field per connected device,
  ``{epoch}|{connection id}`` → the device's state (JSON), or ``-`` for a
  device that holds a slot but is still logging in (counted by the device
  cap, invisible to the merge); plus ``~v``, the user's presence version
  (Redis ``TIME`` in microseconds, at least one more than the last). The
  merge rules are ``presence.merge``, applied here in Python to what the
  scripts return; the scripts make each change atomic.
* ``{p}at:{user}`` — the processes (``RedisLink.process``) that hold a field
  of ``{p}dev:{user}``, one per line; every script that changes the hash
  rewrites it in the same step. The fan-out routes events by it
  (``redis_fanout.ROUTE``: one ``MGET`` for all recipients).
* ``{p}users:{epoch}`` — set of users with (or recently with) a device
  under that epoch.
* ``{p}epochs`` — set of epochs that may still own devices.
* ``{p}hb:{epoch}`` — the heartbeat key ``RedisLink`` refreshes (TTL):
  ``live``, or ``retired`` once the process moved on to a newer epoch.
* ``{p}beats`` — hash epoch → Unix time of its last heartbeat.

**The invariant.** Every device field belongs to a live connection of a
live process, or is removed within the documented bound (TTL plus one sweep
interval). It holds by construction:

* An epoch is ``{instance}.{process token}.{n}``: no two processes ever
  share one, so a restart with the same instance id cannot keep a dead
  process's epoch alive.
* A field is only ever written by a script that first checks, atomically,
  that its epoch's heartbeat says ``live``. So a registration cannot land
  under an epoch that is retired or dead, however late it reaches Redis.
* Nothing leaves ``{p}epochs`` before its fields are gone: a sweeper removes
  a dead epoch's fields user by user (each script re-checks the heartbeat),
  then the epoch; re-registration moves every field of this process's older
  epochs (for the users in their sets, not only the users connected now),
  then drops them; a clean stop leaves the epoch for the sweepers unless
  its user set is empty.

**Crashed or partitioned instances.** Every instance runs a sweeper every
TTL/4; the one that takes ``{p}sweep-lock`` (free, or held by an epoch
without a heartbeat; released after each pass, so the sweeps of all
instances together run at least once per TTL/4) looks for epochs
whose heartbeat key has expired, removes their devices user by user, and
hands the resulting changes to the hub, which stamps last seen (the dead
epoch's last heartbeat, not the sweep time) and tells friends. A device of
a dead instance therefore disappears between 2/3·TTL and TTL after the
crash plus at most one sweep interval: with the default TTL of 20 s, friends
see the user offline within 25 s.

**Presence writes that do not wait.** While the last reply about a user
(under the current epoch) said that every device of theirs is this
process's, a presence change is computed on the instance under a version it
proposes, and its ``PUT`` is queued without a wait; Redis stores that
version, or answers with the hash and a newer one, and then the change is
written again and published from what Redis holds (``RedisRegistry.put``).

**Redis down.** The instance always keeps its own devices in memory. While
Redis is unreachable, changes are applied to that copy only (friends on this
instance are told; merges cannot see devices elsewhere; the device cap
counts this instance's devices only). When Redis returns, ``reregister``
moves this process's devices from its old epochs to the new one in one
script per user and reports what changed for friends.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec
from redis.exceptions import NoScriptError

from presence_protocol import Activity, Status

from ..domain.presence import OFFLINE, DeviceState, merge
from ..metrics import AnyMetrics, NullMetrics
from .locks import KeyedLocks
from .redis_batch import Packed, Template
from .redis_link import COMMAND_TIMEOUT_SECONDS, REDIS_ERRORS, RedisLink
from .registry import Change, Observed

log = logging.getLogger(__name__)

VERSION_FIELD = b"~v"
PENDING = b"-"
"""The value of a device that holds a slot while it logs in."""
PIPELINE_CHUNK = 200
FULL = -1
"""What ``PUT`` returns when the device cap refuses a new device."""

_BUMP = """
-- A version: Redis's clock in microseconds, or the one the writer proposes
-- (``PUT`` of a presence change the instance published already), and
-- always above the last one.
local function bump(key, proposed)
  local v = proposed
  if not v or v <= 0 then
    local t = redis.call('TIME')
    v = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  local last = tonumber(redis.call('HGET', key, '~v') or '0')
  if v <= last then v = last + 1 end
  redis.call('HSET', key, '~v', string.format('%.0f', v))
  return v
end
local function starts(s, prefix) return string.sub(s, 1, #prefix) == prefix end
local function ends(s, suffix) return #s >= #suffix and string.sub(s, -#suffix) == suffix end
-- {p}at:{user}: the processes holding the user's devices (logging in or not),
-- one per line, rewritten from the hash after every change of it; what the
-- fan-out's ROUTE script reads, all recipients in one MGET.
local function holders(key)
  local prefix, uid = string.match(key, '^(.*)dev:(%d+)$')
  if not prefix then return end
  local found, seen = {}, {}
  for _, f in ipairs(redis.call('HKEYS', key)) do
    local epoch = string.match(f, '^(.*)|')
    local process = epoch and string.match(epoch, '^(.*)%.%d+$')
    if process and not seen[process] then
      seen[process] = true
      found[#found + 1] = process
    end
  end
  if #found == 0 then
    redis.call('DEL', prefix .. 'at:' .. uid)
  else
    redis.call('SET', prefix .. 'at:' .. uid, table.concat(found, '\\n'))
  end
end
"""

PUT = (
    _BUMP
    + """
-- KEYS: devices hash, epoch users set, epoch heartbeat.
-- ARGV: field, state, user id, process prefix, '|' .. connection id, cap (0: none),
--       proposed version (0: none; see RedisRegistry.put)
-- false: the epoch is not live (nothing written); -1: the cap refuses a new device;
-- the new version alone when every device of the user is this process's
-- (and it is the proposed one, if any); else {the hash before, the new version}.
if redis.call('GET', KEYS[3]) ~= 'live' then return false end
local before = redis.call('HGETALL', KEYS[1])
local others, present, exact, stale, ours = 0, false, false, {}, true
for i = 1, #before, 2 do
  local f = before[i]
  if f == ARGV[1] then
    present = true
    exact = true
  elseif starts(f, ARGV[4]) and ends(f, ARGV[5]) then
    present = true
    stale[#stale + 1] = f  -- this connection, under an older epoch of this process
  elseif f ~= '~v' then
    others = others + 1
    if not starts(f, ARGV[4]) then ours = false end
  end
end
local cap = tonumber(ARGV[6])
if cap > 0 and not present and others >= cap then return -1 end
for _, f in ipairs(stale) do redis.call('HDEL', KEYS[1], f) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local proposed = tonumber(ARGV[7]) or 0
local v = bump(KEYS[1], proposed)
-- A state change of a device already here under this epoch (most calls)
-- changes neither the epoch's users nor the processes holding the user.
if not exact then
  redis.call('SADD', KEYS[2], ARGV[3])
  holders(KEYS[1])
end
-- Every device of the user is this process's (nearly always: one device):
-- the process knows them all already, only the version is news.
if ours and (proposed == 0 or v == proposed) then return v end
-- The instance told friends this change under the proposed version, from its
-- own devices alone: what it publishes now must be newer than that.
if proposed > 0 and v == proposed then v = bump(KEYS[1], 0) end
return {before, v}
"""
)

REMOVE = (
    _BUMP
    + """
-- KEYS: devices hash, epoch users set.
-- ARGV: process prefix, '|' .. connection id, user id, epoch prefix
local before = redis.call('HGETALL', KEYS[1])
local gone = 0
for i = 1, #before, 2 do
  local f = before[i]
  if starts(f, ARGV[1]) and ends(f, ARGV[2]) then
    redis.call('HDEL', KEYS[1], f)
    gone = gone + 1
  end
end
if gone == 0 then return {before, 0} end
local v = bump(KEYS[1])
local fields = redis.call('HKEYS', KEYS[1])
local mine = 0
for _, f in ipairs(fields) do if starts(f, ARGV[4]) then mine = mine + 1 end end
if mine == 0 then redis.call('SREM', KEYS[2], ARGV[3]) end
if #fields <= 1 then redis.call('DEL', KEYS[1]) end
holders(KEYS[1])
return {before, v}
"""
)

MOVE = (
    _BUMP
    + """
-- KEYS: devices hash, new epoch users set, new epoch heartbeat.
-- ARGV: process prefix, user id, then field, state pairs under the new epoch
if redis.call('GET', KEYS[3]) ~= 'live' then return false end
local before = redis.call('HGETALL', KEYS[1])
for i = 1, #before, 2 do
  if starts(before[i], ARGV[1]) then redis.call('HDEL', KEYS[1], before[i]) end
end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if #ARGV >= 3 then redis.call('SADD', KEYS[2], ARGV[2]) end
local v = bump(KEYS[1])
if redis.call('HLEN', KEYS[1]) <= 1 then redis.call('DEL', KEYS[1]) end
holders(KEYS[1])
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
holders(KEYS[1])
return {before, v}
"""
)

TAKE_LOCK = """
-- KEYS: sweep lock. ARGV: my epoch, PX, heartbeat key prefix
-- Free, or held by an epoch that is dead (it crashed while sweeping): take it.
local holder = redis.call('GET', KEYS[1])
if holder and redis.call('EXISTS', ARGV[3] .. holder) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

DROP_LOCK = """
-- KEYS: sweep lock. ARGV: my epoch
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

FORGET = """
-- KEYS: heartbeat, users set, epochs set, beats hash. ARGV: epoch, only if empty (0/1)
-- Drop an epoch whose fields are gone (or, with ARGV[2] = 1, if its user set is empty).
redis.call('DEL', KEYS[1])
if ARGV[2] == '1' and redis.call('SCARD', KEYS[2]) > 0 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
"""


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
    """HGETALL's flat field/value list, without the version field and without
    devices still logging in (they hold a slot but show nothing yet)."""
    devices: dict[bytes, DeviceState] = {}
    for i in range(0, len(flat) - 1, 2):
        field = flat[i]
        if field == VERSION_FIELD or flat[i + 1] == PENDING:
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
LocalDevices = dict[str, DeviceState | None]
"""A user's devices on this instance; None: holds a slot, still logging in."""


def _states(devices: LocalDevices | None) -> list[DeviceState]:
    return [s for s in (devices or {}).values() if s is not None]


class _EpochKeys(msgspec.Struct, frozen=True):
    epoch: str
    users: bytes
    heartbeat: bytes
    field_prefix: bytes
    """``{epoch}|``: a device's field is this and its connection id."""
    process_prefix: bytes
    put: Template
    """``EVALSHA PUT`` under this epoch, open for the devices key, field,
    state, user id, connection, cap and proposed version."""


class RedisRegistry:
    remote = True

    def __init__(self, link: RedisLink, metrics: AnyMetrics | None = None) -> None:
        self.link = link
        self.metrics = metrics or NullMetrics()
        self._prefix = link.key().encode()
        self._keys: _EpochKeys | None = None
        self.local: dict[int, LocalDevices] = {}
        """This instance's devices: the truth for them, Redis or not."""
        self._local_versions: dict[int, int] = {}
        self._sole: dict[int, int] = {}
        """Users whose last ``PUT`` reply (under the current epoch) said every
        device of theirs is this process's, with the last version known to be
        in Redis for them: their presence writes do not wait (``put``)."""
        self._correcting: set[asyncio.Task[None]] = set()
        self._closed = False
        self.corrections = 0
        """Changes published again because Redis answered a write that did
        not wait otherwise than expected (tests and benchmarks read it)."""
        self._locks = KeyedLocks()
        client = link.client
        self._put_sha = hashlib.sha1(PUT.encode()).hexdigest()
        self._remove_sha = hashlib.sha1(REMOVE.encode()).hexdigest()
        self._move = client.register_script(MOVE)
        self._sweep = client.register_script(SWEEP)
        self._forget = client.register_script(FORGET)
        self._take_lock = client.register_script(TAKE_LOCK)
        self._drop_lock = client.register_script(DROP_LOCK)
        self.on_changes: ChangesHandler | None = None
        """Set by the hub: publishes changes found by the sweeper and re-registration."""
        self._sweeper: asyncio.Task[None] | None = None
        self.swept = asyncio.Event()
        """Set after each sweep pass that removed something (tests wait on it)."""
        link.on_up(self.reregister)

    # ------------------------------------------------------------ keys

    def _devices_key(self, user_id: int) -> bytes:
        return b"%bdev:%d" % (self._prefix, user_id)

    def _epoch_keys(self) -> _EpochKeys:
        """The current epoch's keys and field prefix, encoded once per epoch
        (they were formatted and encoded again for every presence change)."""
        keys = self._keys
        epoch = self.link.epoch
        if keys is None or keys.epoch != epoch:
            link = self.link
            users = self._users_key(epoch).encode()
            heartbeat = link.heartbeat_key(epoch).encode()
            process_prefix = link.process_prefix.encode()
            keys = self._keys = _EpochKeys(
                epoch=epoch,
                users=users,
                heartbeat=heartbeat,
                field_prefix=f"{epoch}|".encode(),
                process_prefix=process_prefix,
                put=Template(
                    b"EVALSHA",
                    self._put_sha,
                    3,
                    None,
                    users,
                    heartbeat,
                    None,
                    None,
                    None,
                    process_prefix,
                    None,
                    None,
                    None,
                ),
            )
        return keys

    def _users_key(self, epoch: str) -> str:
        return self.link.key("users", epoch)

    def _field(self, device: str) -> bytes:
        return f"{self.link.epoch}|{device}".encode()

    def _own_fields(self, devices: Mapping[bytes, object], device: str) -> list[bytes]:
        """The fields of this connection under any epoch of this process."""
        prefix = self.link.process_prefix.encode()
        suffix = f"|{device}".encode()
        return [f for f in devices if f.startswith(prefix) and f.endswith(suffix)]

    def _local_change(self, user_id: int, before: list[DeviceState]) -> Change:
        """A change computed from this instance's devices only (Redis down)."""
        after = _states(self.local.get(user_id))
        version = max(time.time_ns() // 1000, self._local_versions.get(user_id, 0) + 1)
        self._local_versions[user_id] = version
        if user_id not in self.local:
            self._local_versions.pop(user_id, None)
        return Change(merge(before), merge(after), version)

    async def _run(
        self,
        script: str,
        sha: str,
        keys: Sequence[bytes],
        args: Sequence[bytes | str | int],
        packed: Packed | None = None,
    ) -> Any:
        """One of the per-change scripts through the link's batch: queued with
        every other instance write of the moment, one round trip for all of
        them, in order (``redis_batch``). A Redis that lost the script (a
        restart) gets its text once. ``packed``: the same ``EVALSHA`` from a
        template (then ``keys`` and ``args`` serve only that fallback)."""
        batch = self.link.batch
        try:
            if packed is not None:
                return await batch.call_packed(packed)
            return await batch.call("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            return await batch.call("EVAL", script, len(keys), *keys, *args)

    def _put(
        self, epoch: _EpochKeys, user_id: int, device: str, value: bytes, cap: int, proposed: int
    ) -> Packed:
        """``PUT`` of one device's value, packed from the epoch's template."""
        encoded = device.encode()
        return epoch.put(
            self._devices_key(user_id),
            epoch.field_prefix + encoded,
            value,
            b"%d" % user_id,
            b"|" + encoded,
            b"%d" % cap,
            b"%d" % proposed,
        )

    async def _write(self, user_id: int, device: str, value: bytes, cap: int) -> Any:
        """Run ``PUT`` under the current epoch; None if Redis is unusable now."""
        link = self.link
        if not link.up:
            return None
        epoch = self._epoch_keys()
        try:
            # No timeout of its own: the batch bounds each write and its
            # replies (``COMMAND_TIMEOUT_SECONDS``), and a timer per presence
            # change (a handle in the loop's heap, cancelled each time) was
            # a measurable share of a cluster instance's CPU.
            reply = await self._run(
                PUT,
                self._put_sha,
                [self._devices_key(user_id), epoch.users, epoch.heartbeat],
                [
                    *(epoch.field_prefix + device.encode(), value, user_id),
                    *(epoch.process_prefix, b"|" + device.encode(), cap, 0),
                ],
                self._put(epoch, user_id, device, value, cap, 0),
            )
        except REDIS_ERRORS as exc:
            link.mark_down(exc)
            return None
        if reply is None:
            # Our heartbeat expired (a stall) or the epoch was retired under
            # us: a new epoch and re-registration will include this device.
            link.mark_down(f"epoch {link.epoch} is no longer live")
        return reply

    # ------------------------------------------------------------ registry protocol

    async def reserve(self, user_id: int, device: str, cap: int) -> bool:
        """Take one of the user's ``cap`` device slots (0: no cap) for a device
        about to log in; False if they are all taken, on any instance."""
        async with self._locks.hold(user_id):
            epoch = self.link.epoch
            reply = await self._write(user_id, device, PENDING, cap)
            self._learn(user_id, epoch, reply)
            if reply == FULL:
                return False
            if reply is None and cap > 0 and len(self.local.get(user_id, ())) >= cap:
                return False  # Redis down: only this instance's devices can be counted
            self.local.setdefault(user_id, {})[device] = None
            return True

    def _learn(self, user_id: int, epoch: str, reply: Any) -> None:
        """What a ``PUT`` answered about the user: every device this process's
        (a version alone), or not (the hash). Only for the epoch it was sent under."""
        if epoch != self.link.epoch:
            return
        if isinstance(reply, int) and reply > 0:
            self._sole[user_id] = reply
        else:
            self._sole.pop(user_id, None)

    async def put(self, user_id: int, device: str, state: DeviceState) -> Change:
        """Write a device's state; the user's merged presence before and after.

        Presence writes do not wait when they need not: while the last reply
        about the user said that every device of theirs is this process's,
        the change is computed here, under a version proposed here (above
        the last one), and ``PUT`` goes into the batch without a wait
        (``_sent``). Redis agrees nearly always; when it does not (another
        process took a device of the user meanwhile, or another writer's
        version is newer), its reply gives the hash and a version above the
        proposed one; the user's writes then wait again, and the device is
        written once more and what Redis holds published (``_rewrite``,
        through ``on_changes``): friends may see the instance's own devices
        alone for about one round trip, never an older state last.
        """
        async with self._locks.hold(user_id):
            mine = self.local.setdefault(user_id, {})
            before_local = _states(mine)
            mine[device] = state
            link = self.link
            last = self._sole.get(user_id)
            if last is not None and link.up:
                proposed = max(time.time_ns() // 1000, last + 1)
                self._sole[user_id] = proposed
                told = merge(_states(mine))
                epoch = self._epoch_keys()
                link.batch.then(
                    [self._put(epoch, user_id, device, encode_state(state), 0, proposed)],
                    lambda outcome: self._sent(outcome, user_id, proposed, epoch.epoch),
                )
                return Change(merge(before_local), told, proposed)
            epoch_name = link.epoch
            reply = await self._write(user_id, device, encode_state(state), 0)
            self._learn(user_id, epoch_name, reply)
            return self._change(reply, user_id, device, state, before_local)

    def _change(
        self,
        reply: Any,
        user_id: int,
        device: str,
        state: DeviceState,
        before_local: list[DeviceState],
    ) -> Change:
        """The change a ``PUT`` of ``device`` made, from its reply (None: Redis
        is unusable, the change of this instance's devices alone)."""
        if isinstance(reply, int) and reply > 0:
            # Only this process holds the user's devices (``PUT``): what
            # Redis had is what ``local`` had, so nothing to decode.
            return Change(merge(before_local), merge(_states(self.local.get(user_id))), reply)
        if isinstance(reply, list):
            flat, version = reply
            devices = parse_devices(flat)
            before = merge(devices.values())
            for field in self._own_fields(devices, device):
                del devices[field]  # this connection under an older epoch (replaced)
            devices[self._field(device)] = state
            return Change(before, merge(devices.values()), int(version))
        return self._local_change(user_id, before_local)

    def _sent(
        self,
        outcome: list[Any] | BaseException,
        user_id: int,
        proposed: int,
        epoch: str,
    ) -> None:
        """The reply to a ``PUT`` that did not wait (``put``), in the batch's task."""
        link = self.link
        if isinstance(outcome, BaseException):
            link.mark_down(outcome)  # re-registration writes the device again
            return
        reply = outcome[0]
        if reply == proposed:
            return  # as computed: the usual case
        if epoch != link.epoch:
            return  # re-registration wrote every device again and published what changed
        if reply is None:
            link.mark_down(f"epoch {epoch} is no longer live")
            return
        if isinstance(reply, Exception) and not isinstance(reply, NoScriptError):
            link.mark_down(reply)
            return
        # Another process holds a device of the user, another writer's
        # version is newer, or Redis lost its scripts (a restart): the user's
        # writes wait again, and the device is written once more, waiting, to
        # publish what Redis then holds.
        self._sole.pop(user_id, None)
        self.corrections += 1
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            self._rewrite(user_id), name="presence-correction"
        )
        self._correcting.add(task)
        task.add_done_callback(self._correcting.discard)

    async def _rewrite(self, user_id: int) -> None:
        """Write the user's devices here again, waiting, and publish the result
        even if it looks unchanged (``Change.republish``). A task of its own:
        a failure is logged, as the sweeper's are, and never reaches ``close``."""
        try:
            async with self._locks.hold(user_id):
                for device, state in list(self.local.get(user_id, {}).items()):
                    if state is None or self._closed:
                        continue
                    epoch = self.link.epoch
                    reply = await self._write(user_id, device, encode_state(state), 0)
                    self._learn(user_id, epoch, reply)
                    if reply is None:
                        return  # Redis is down: re-registration publishes later
                    change = self._change(reply, user_id, device, state, [])
                    handler = self.on_changes
                    if handler is not None and not self._closed:
                        await handler({user_id: dataclasses.replace(change, republish=True)})
        except Exception:
            log.exception("re-writing the presence of user %s failed", user_id)

    async def settled(self) -> None:
        """Until every write queued so far is answered and what its replies
        asked for is published (tests wait on it)."""
        if self.link.up:
            with contextlib.suppress(*REDIS_ERRORS):
                await self.link.batch.call("PING")
        while self._correcting:
            await asyncio.gather(*self._correcting, return_exceptions=True)

    async def remove(self, user_id: int, device: str) -> Change:
        async with self._locks.hold(user_id):
            mine = self.local.get(user_id)
            if mine is None or device not in mine:
                return Change(OFFLINE, OFFLINE)
            before_local = _states(mine)
            del mine[device]
            if not mine:
                del self.local[user_id]
                self._sole.pop(user_id, None)
            link = self.link
            if link.up:
                epoch = self._epoch_keys()
                try:  # bounded by the batch, as ``_write``
                    flat, version = await self._run(
                        REMOVE,
                        self._remove_sha,
                        [self._devices_key(user_id), epoch.users],
                        [epoch.process_prefix, b"|" + device.encode(), user_id, epoch.field_prefix],
                    )
                except REDIS_ERRORS as exc:
                    link.mark_down(exc)
                else:
                    devices = parse_devices(flat)
                    before = merge(devices.values())
                    for field in self._own_fields(devices, device):
                        del devices[field]
                    process = link.process_prefix.encode()
                    if user_id in self.local and all(f.startswith(process) for f in devices):
                        self._learn(user_id, epoch.epoch, int(version))
                    else:
                        self._sole.pop(user_id, None)
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
            states = _states(self.local.get(uid))
            result[uid] = (
                Observed(merge(states), self._local_versions.get(uid, 0)) if states else Observed()
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
        """Devices of the user on every instance, those still logging in included."""
        if self.link.up:
            try:
                async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                    fields = await self.link.client.hkeys(self._devices_key(user_id))
                return sum(1 for f in fields if f != VERSION_FIELD)
            except REDIS_ERRORS as exc:
                self.link.mark_down(exc)
        return len(self.local.get(user_id, ()))

    async def connected(self) -> list[int]:
        return [uid for uid, devices in self.local.items() if _states(devices)]

    # ------------------------------------------------------------ recovery

    async def reregister(self) -> None:
        """Move this process's devices to the current epoch; publish what changed.

        Covers every user in the sets of this process's older epochs too, not
        only those connected now: a device that left while Redis was down
        still has a field under an old epoch, and dropping that epoch without
        removing it would leave a ghost no sweeper ever finds.
        """
        link = self.link
        epoch = link.epoch
        self._sole.clear()  # learnt under an older epoch: the next write of each user asks again
        old_epochs = list(link.old_epochs)
        users = list(self.local)
        if old_epochs:
            async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                async with link.client.pipeline(transaction=False) as pipe:
                    for old in old_epochs:
                        pipe.smembers(self._users_key(old))
                    members = await pipe.execute()
            users = list(dict.fromkeys([*users, *(int(u) for m in members for u in m)]))
        changes: dict[int, Change] = {}
        for start in range(0, len(users), PIPELINE_CHUNK):
            chunk = users[start : start + PIPELINE_CHUNK]
            async with self._locks.hold(*chunk):
                fields: dict[int, dict[bytes, DeviceState | None]] = {}
                async with link.client.pipeline(transaction=False) as pipe:
                    for uid in chunk:
                        mine = {self._field(d): s for d, s in self.local.get(uid, {}).items()}
                        fields[uid] = mine
                        args: list[Any] = [link.process_prefix, uid]
                        for field, state in mine.items():
                            args += [field, PENDING if state is None else encode_state(state)]
                        await self._move(
                            keys=[
                                self._devices_key(uid),
                                self._users_key(epoch),
                                link.heartbeat_key(epoch),
                            ],
                            args=args,
                            client=pipe,
                        )
                    async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS * 4):
                        replies = await pipe.execute()
            if any(reply is None for reply in replies):
                link.mark_down(f"epoch {epoch} expired while re-registering")
                return
            prefix = link.process_prefix.encode()
            for uid, (flat, version) in zip(chunk, replies, strict=True):
                devices = parse_devices(flat)
                before = merge(devices.values())
                kept = {f: s for f, s in devices.items() if not f.startswith(prefix)}
                kept.update({f: s for f, s in fields[uid].items() if s is not None})
                changes[uid] = Change(before, merge(kept.values()), int(version))
        # Our own past epochs: nothing of them is left in the device hashes.
        for old in old_epochs:
            await self._forget_epoch(old, only_if_empty=False)
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

    async def _forget_epoch(self, epoch: str, *, only_if_empty: bool) -> bool:
        link = self.link
        async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
            done = await self._forget(
                keys=[
                    link.heartbeat_key(epoch),
                    self._users_key(epoch),
                    link.epochs_key,
                    link.beats_key,
                ],
                args=[epoch, 1 if only_if_empty else 0],
            )
        return bool(done)

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
        """Remove the devices of expired epochs (if this instance holds the lock).

        Any epoch without a heartbeat key is dead, whichever process it was
        and whatever its instance name: epochs are never reused, and a
        retired epoch of a living process keeps its key until it expires.
        """
        link = self.link
        lock = link.key("sweep-lock")
        me = link.epoch.encode()
        async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
            won = await self._take_lock(
                keys=[lock],
                args=[me, max(int(self.sweep_interval * 2000), 200), link.heartbeat_key("")],
            )
        if not won:
            return 0
        try:
            return await self._sweep_dead()
        finally:
            # Let whoever ticks next sweep again, instead of waiting for the
            # lock to expire (which would stretch the offline bound).
            with contextlib.suppress(*REDIS_ERRORS):
                async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                    await self._drop_lock(keys=[lock], args=[me])

    async def _sweep_dead(self) -> int:
        link = self.link
        client = link.client
        removed = 0
        async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
            epochs = [e.decode() for e in await client.smembers(link.epochs_key)]
        for epoch in epochs:
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
            beat = await client.hget(link.beats_key, epoch)
        last_alive = int(beat) if beat is not None else None
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
                last_seen = _last_seen(last_alive, [devices[f] for f in gone])
                for field in gone:
                    del devices[field]
                changes[uid] = Change(
                    before, merge(devices.values()), int(version), last_seen=last_seen
                )
        await self._forget_epoch(epoch, only_if_empty=False)
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
        """After every local device was removed: end the epoch (dropped at once if
        no user is left under it, else by the next sweep)."""
        self._closed = True
        self._sole.clear()
        for task in [self._sweeper, *self._correcting]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._sweeper = None
        if not self.link.up:
            return
        with contextlib.suppress(*REDIS_ERRORS):
            await self._forget_epoch(self.link.epoch, only_if_empty=True)


def _last_seen(last_alive: int | None, gone: list[DeviceState]) -> int | None:
    """When the devices of a dead epoch were last known to be there: its last
    heartbeat, or a later presence change of one of them (stamps are ns)."""
    stamps = [max(d.status_stamp, d.activity_stamp) // 1_000_000_000 for d in gone]
    latest = max([s for s in stamps if s > 0], default=None)
    if last_alive is None:
        return latest
    return max(last_alive, latest or 0)
