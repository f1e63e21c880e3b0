"""Who is connected on which device, and with what presence.

Handlers only use the ``PresenceRegistry`` protocol. ``InProcessRegistry``
keeps it in a dict, which is enough for one server process;
``redis_registry.RedisRegistry`` shares it between instances with the same
``presence.merge`` rules.

Every change of a user's devices gets a version, increasing per user. A
presence delta carries the version of the change it reports, so a connection
that receives deltas about one friend from several instances (whose order
pub/sub does not guarantee) can drop one that is older than what it already
sent (see ``Connection.deliver``).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable
from typing import Protocol

from ..domain.presence import OFFLINE, DeviceState, Seen, merge


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    """A user's merged presence before and after one registry operation."""

    before: Seen
    after: Seen
    version: int = 0
    """Orders changes of one user; 0 means "no order known" (always applied)."""
    last_seen: int | None = None
    """For a user gone offline: when the devices were last known to be there,
    if that is earlier than now (an instance that died: its last heartbeat)."""
    republish: bool = False
    """Publish even if ``before`` equals ``after``: friends may hold another
    state under a newer version than what this instance told them
    (``RedisRegistry.put``, when Redis answers otherwise than expected)."""

    @property
    def changed(self) -> bool:
        return self.republish or self.before != self.after


@dataclasses.dataclass(frozen=True, slots=True)
class Observed:
    """A user's merged presence as read now, with the version it was last changed at."""

    seen: Seen = OFFLINE
    version: int = 0


class PresenceRegistry(Protocol):
    remote: bool
    """Writes wait on another process (Redis): many of them are worth
    issuing at once, so they share round trips. False: a write never waits."""

    async def reserve(self, user_id: int, device: str, cap: int) -> bool:
        """Atomically take one of the user's ``cap`` device slots (0: no cap) for
        a device about to log in; False, changing nothing, if all are taken.

        The device counts from now on but shows no presence until ``put``;
        ``remove`` releases it.
        """
        ...

    async def put(self, user_id: int, device: str, state: DeviceState) -> Change:
        """Set one device's presence."""
        ...

    async def remove(self, user_id: int, device: str) -> Change:
        """Forget a device (a no-op change if it is not there)."""
        ...

    async def seen(self, user_ids: Iterable[int]) -> dict[int, Observed]:
        """Merged presence of each user; users with no device map to offline."""
        ...

    async def device_count(self, user_id: int) -> int:
        """Connected devices of the user (on every instance, where shared)."""
        ...

    async def connected(self) -> list[int]:
        """Users with at least one device."""
        ...

    async def close(self) -> None:
        """After every local device was removed: release shared resources."""
        ...


class InProcessRegistry:
    remote = False

    def __init__(self) -> None:
        self._devices: dict[int, dict[str, DeviceState]] = {}
        self._pending: dict[int, set[str]] = {}
        """Devices holding a slot while they log in (no presence yet)."""
        self._versions: dict[int, int] = {}
        self._clock = itertools.count(1)

    def _bump(self, user_id: int) -> int:
        version = next(self._clock)
        self._versions[user_id] = version
        return version

    async def reserve(self, user_id: int, device: str, cap: int) -> bool:
        # No await between the count and the registration: atomic in one process.
        devices = self._devices.get(user_id, {})
        pending = self._pending.get(user_id, set())
        taken = len(devices) + len(pending - devices.keys())
        if cap > 0 and device not in devices and device not in pending and taken >= cap:
            return False
        if device not in devices:
            self._pending.setdefault(user_id, set()).add(device)
        return True

    def _release(self, user_id: int, device: str) -> None:
        pending = self._pending.get(user_id)
        if pending is not None:
            pending.discard(device)
            if not pending:
                del self._pending[user_id]

    async def put(self, user_id: int, device: str, state: DeviceState) -> Change:
        self._release(user_id, device)
        devices = self._devices.setdefault(user_id, {})
        before = merge(devices.values())
        devices[device] = state
        return Change(before, merge(devices.values()), self._bump(user_id))

    async def remove(self, user_id: int, device: str) -> Change:
        self._release(user_id, device)
        devices = self._devices.get(user_id)
        if not devices or device not in devices:
            same = merge(devices.values()) if devices else OFFLINE
            return Change(same, same)
        before = merge(devices.values())
        del devices[device]
        if not devices:
            del self._devices[user_id]
        version = self._bump(user_id)
        if user_id not in self._devices:
            del self._versions[user_id]
        return Change(before, merge(devices.values()), version)

    async def seen(self, user_ids: Iterable[int]) -> dict[int, Observed]:
        result: dict[int, Observed] = {}
        for uid in user_ids:
            devices = self._devices.get(uid)
            result[uid] = (
                Observed(merge(devices.values()), self._versions.get(uid, 0))
                if devices
                else Observed()
            )
        return result

    async def device_count(self, user_id: int) -> int:
        return len(self._devices.get(user_id, ())) + len(self._pending.get(user_id, ()))

    async def connected(self) -> list[int]:
        return list(self._devices)

    async def close(self) -> None:
        return None
