"""My signed-in devices (the server's sessions of my account), as Settings shows them.

A person who lost a laptop opens Settings → Devices, finds it and signs it
out. The server owns the list (``list_sessions``, paged, oldest first) and the
revocation (``revoke_session``); the controller does the I/O and reports on
the signals named in ``DevicesActions`` (``ui/devices_page.py``). This module
holds the rules in between, with no Qt and no I/O, so they are tested on
their own (tests/desktop/core/test_devices.py):

* ``DeviceList`` — what the page shows and why: the rows in the server's
  order, each device once, and one status line. A failure changes the status
  line and nothing else; a sign-out removes exactly that row.
* the texts of a row: when a device signed in, when it was last used, and the
  exact time for the tooltip.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Iterable

from .api import UserError
from .format import ago_text

SWEEP_NOTE = (
    "A device that stays connected is recorded as used at each server sweep"
    " (hourly by default), so for a connected device this can be up to that old."
)
"""Why "last used" lags for a connected device (docs/protocol.md §4, ``list_sessions``)."""

UNNAMED = "Unnamed device"


@dataclasses.dataclass(frozen=True, slots=True)
class Device:
    """One live session of mine (``sessions[]`` of docs/protocol.md §4)."""

    session_id: str
    name: str
    created_at: int
    last_used_at: int
    current: bool = False

    @property
    def label(self) -> str:
        """The name to show; a session created without a device name still needs one."""
        return self.name.strip() or UNNAMED


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceSignedOut:
    """The server no longer has this session: revoked now, or ``already_gone``
    (``unknown_session``: it was signed out or expired before the request)."""

    session_id: str
    already_gone: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceSignOutFailed:
    """This session was not signed out, and why (it is still live)."""

    session_id: str
    error: UserError


class Phase(enum.Enum):
    """Which of the page's states the list is in."""

    NOT_LOADED = "not_loaded"
    LOADING = "loading"
    LOADED = "loaded"
    SIGNED_OUT = "signed_out"
    OFFLINE = "offline"


SIGNED_OUT_TEXT = "Sign in to see your devices."
OFFLINE_TEXT = "Not connected — devices show once Presence is back online."
LOADING_TEXT = "Loading your devices…"


class DeviceList:
    """The page's model: rows, phase and one status line.

    Signed out and offline show no rows: a list from before may be stale or
    belong to an account that is no longer here. Any other error keeps the
    rows as they were and only says what went wrong, so a failed refresh or
    sign-out never makes a device disappear or reappear.
    """

    def __init__(self) -> None:
        self.phase = Phase.NOT_LOADED
        self.devices: list[Device] = []
        self.status = ""
        self.status_is_error = False

    @property
    def others(self) -> list[Device]:
        """The devices "Sign out all other devices" would sign out."""
        return [d for d in self.devices if not d.current]

    def loading(self) -> None:
        self.phase = Phase.LOADING
        self._say(LOADING_TEXT)

    def listed(self, devices: Iterable[Device]) -> None:
        """A fresh list from the server, in its order; a repeated id is shown once."""
        seen: set[str] = set()
        rows: list[Device] = []
        for device in devices:
            if device.session_id not in seen:
                seen.add(device.session_id)
                rows.append(device)
        self.devices = rows
        self.phase = Phase.LOADED
        self._say("" if rows else "No device is signed in.")

    def failed(self, error: UserError) -> None:
        """Listing (or signing out) did not work; ``error.code`` says whether we are
        signed out or offline, which clear the rows, or something else, which keeps them."""
        if error.code == "signed_out":
            self.devices = []
            self.phase = Phase.SIGNED_OUT
            self._say(SIGNED_OUT_TEXT)
        elif error.code == "offline":
            self.devices = []
            self.phase = Phase.OFFLINE
            self._say(OFFLINE_TEXT)
        else:
            if self.phase is Phase.LOADING:
                self.phase = Phase.LOADED if self.devices else Phase.NOT_LOADED
            self._say(error.message, error=True)

    def signed_out(self, result: DeviceSignedOut) -> None:
        before = self.find(result.session_id)
        self.devices = [d for d in self.devices if d.session_id != result.session_id]
        name = before.label if before is not None else "That device"
        if result.already_gone:
            self._say(f"{name} was already signed out.")
        else:
            self._say(f"{name} was signed out.")

    def sign_out_failed(self, failure: DeviceSignOutFailed) -> None:
        if failure.error.code in ("signed_out", "offline"):
            self.failed(failure.error)
            return
        device = self.find(failure.session_id)
        name = device.label if device is not None else "That device"
        self._say(f"{name} was not signed out. {failure.error.message}", error=True)

    def others_signed_out(self, count: int) -> None:
        if count == 0:
            self._say("No other device was signed in.")
        else:
            self._say(f"Signed out {count} other device{'s' if count != 1 else ''}.")

    def find(self, session_id: str) -> Device | None:
        return next((d for d in self.devices if d.session_id == session_id), None)

    def note(self, text: str) -> None:
        """A progress line ("Signing out …"); the rows stay as they are."""
        self._say(text)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.status = text
        self.status_is_error = error


def signed_in_text(when: int, now: float, tz: dt.tzinfo | None = None) -> str:
    """ "today 14:30", "yesterday 09:12", else a date: "2026-11-02"."""
    target = dt.datetime.fromtimestamp(when, tz)
    days = (dt.datetime.fromtimestamp(now, tz).date() - target.date()).days
    if days == 0:
        return f"today {target:%H:%M}"
    if days == 1:
        return f"yesterday {target:%H:%M}"
    return target.date().isoformat()


def last_used_text(device: Device, now: float) -> str:
    """ "Last used 3 h ago"; this computer is in use right now, whatever the record says."""
    if device.current:
        return "In use now"
    return f"Last used {ago_text(max(0.0, now - device.last_used_at))}"


def exact_time(when: int, tz: dt.tzinfo | None = None) -> str:
    """The full local time with its zone, for a tooltip: "2026-12-06 14:05:09 CET"."""
    target = dt.datetime.fromtimestamp(when, tz).astimezone(tz)
    return f"{target:%Y-%m-%d %H:%M:%S %Z}".strip()
