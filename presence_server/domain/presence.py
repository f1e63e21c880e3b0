"""How the presences of one user's devices merge into what friends see.

Pure rules, no I/O, so they are tested directly and shared by every registry
implementation:

* No connected device: offline.
* Any connected device invisible: offline. Invisible is a privacy promise,
  and a second device that still says "online" must not break it.
* Otherwise the most active status wins: online > dnd > away; between
  devices with the same status the most recently changed one wins, and its
  ``until`` is shown.
* The activity shown is the one most recently reported by any device, even
  if that device is not the one whose status won (the person is coding
  there, and active elsewhere).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from presence_protocol import Activity, Presence, PresenceUpdate, SeenStatus, Status

RANK = {Status.ONLINE: 3, Status.DND: 2, Status.AWAY: 1, Status.INVISIBLE: 0}


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceState:
    """One connection's own presence. ``*_stamp`` order changes across devices."""

    status: Status = Status.ONLINE
    activity: Activity | None = None
    until: int | None = None
    status_stamp: int = 0
    activity_stamp: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class Seen:
    """A user's merged presence, before ``last_seen`` is attached."""

    status: SeenStatus = SeenStatus.OFFLINE
    activity: Activity | None = None
    until: int | None = None

    @property
    def offline(self) -> bool:
        return self.status is SeenStatus.OFFLINE


OFFLINE = Seen()


def merge(devices: Iterable[DeviceState]) -> Seen:
    states = list(devices)
    if not states or any(d.status is Status.INVISIBLE for d in states):
        return OFFLINE
    best = max(states, key=lambda d: (RANK[d.status], d.status_stamp))
    active = [d for d in states if d.activity is not None]
    activity = max(active, key=lambda d: d.activity_stamp).activity if active else None
    return Seen(SeenStatus(best.status.value), activity, best.until)


def presence(seen: Seen, last_seen: int | None) -> Presence:
    """The snapshot/relation form; ``last_seen`` only for offline users."""
    return Presence(
        status=seen.status,
        activity=seen.activity,
        until=seen.until,
        last_seen=last_seen if seen.offline else None,
    )


def update(user_id: int, seen: Seen, last_seen: int | None) -> PresenceUpdate:
    return PresenceUpdate(
        user_id=user_id,
        status=seen.status,
        activity=seen.activity,
        until=seen.until,
        last_seen=last_seen if seen.offline else None,
    )
