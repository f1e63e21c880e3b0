"""Who is connected on which device, and with what presence.

Handlers only use the ``PresenceRegistry`` protocol. ``InProcessRegistry``
keeps it in a dict, which is enough for one server process; a shared
implementation (Redis hashes, with the same ``presence.merge`` rules) can
replace it for many instances without touching the handlers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from .presence import OFFLINE, DeviceState, Seen, merge


class PresenceRegistry(Protocol):
    async def put(self, user_id: int, device: str, state: DeviceState) -> tuple[Seen, Seen]:
        """Set one device's presence; returns the user's merged presence before and after."""
        ...

    async def remove(self, user_id: int, device: str) -> tuple[Seen, Seen, int]:
        """Forget a device; returns merged before, after, and devices left."""
        ...

    async def get(self, user_id: int, device: str) -> DeviceState | None: ...

    async def seen(self, user_ids: Iterable[int]) -> dict[int, Seen]:
        """Merged presence of each user; users with no device map to offline."""
        ...

    async def connected(self) -> list[int]:
        """Users with at least one device."""
        ...


class InProcessRegistry:
    def __init__(self) -> None:
        self._devices: dict[int, dict[str, DeviceState]] = {}

    async def put(self, user_id: int, device: str, state: DeviceState) -> tuple[Seen, Seen]:
        devices = self._devices.setdefault(user_id, {})
        before = merge(devices.values())
        devices[device] = state
        return before, merge(devices.values())

    async def remove(self, user_id: int, device: str) -> tuple[Seen, Seen, int]:
        devices = self._devices.get(user_id)
        if not devices:
            return OFFLINE, OFFLINE, 0
        before = merge(devices.values())
        devices.pop(device, None)
        left = len(devices)
        if not left:
            del self._devices[user_id]
        return before, merge(devices.values()), left

    async def get(self, user_id: int, device: str) -> DeviceState | None:
        return self._devices.get(user_id, {}).get(device)

    async def seen(self, user_ids: Iterable[int]) -> dict[int, Seen]:
        result: dict[int, Seen] = {}
        for uid in user_ids:
            devices = self._devices.get(uid)
            result[uid] = merge(devices.values()) if devices else OFFLINE
        return result

    async def connected(self) -> list[int]:
        return list(self._devices)
