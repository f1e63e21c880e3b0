"""The settings schema (what the person chose) and the runtime state (what the
app remembers by itself), kept in two separate versioned files.

Splitting them means a settings file can be copied between machines or reset
without losing the inbox, and window positions never pollute user settings.

Compatibility rule: adding a field with a default needs no new version (older
files load with the default, older apps ignore the unknown field). Renaming a
field or changing its meaning bumps ``SETTINGS_VERSION`` / ``RUNTIME_VERSION``
and adds a migration from the previous version to ``*_MIGRATIONS``.
"""

from __future__ import annotations

import enum
import functools
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

from presence_protocol import Status

from .activity import ActivitySettings
from .addresses import is_loopback_host
from .events import Signal
from .idle import IdleSettings
from .jsonfile import LoadResult, Migration, load_versioned, save_atomic
from .privacy import PrivacySettings

log = logging.getLogger(__name__)

SETTINGS_VERSION = 1
RUNTIME_VERSION = 2

SETTINGS_FILE = "settings.json"
RUNTIME_FILE = "state.json"

INBOX_CACHE_SIZE = 200
"""Received messages kept on disk; older ones are dropped from the cache."""

SERVERS_KEPT = 10
"""Servers whose inbox, acked seq and queued messages are kept: the current one
and the most recently left others. A server with unsent messages is never dropped."""

SETTINGS_MIGRATIONS: dict[int, Migration] = {}


def runtime_v1_to_v2(raw: dict[str, Any], *, server_url: str) -> dict[str, Any]:
    """Version 1 held one server's inbox without saying which: the configured one."""
    raw["server_url"] = server_url
    raw["servers"] = {}
    return raw


class SettingsError(ValueError):
    """A setting was given a value it cannot take; nothing was changed."""


class OnlineAlerts(enum.StrEnum):
    """Which friends coming online produce a notification."""

    ALL = "all"
    """Every friend who is not muted (the default)."""
    STARRED = "starred"
    """Only starred friends."""
    OFF = "off"


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """User settings, version 1.

    Later issues add fields here with defaults (idle minutes, privacy rules,
    autostart); unknown fields written by a newer minor change are ignored.
    """

    version: int = SETTINGS_VERSION
    server_url: str = ""
    """``wss://`` address of the presence server; empty until configured."""
    notifications: bool = True
    """Master switch for every desktop notification."""
    online_alerts: OnlineAlerts = OnlineAlerts.ALL
    notify_on_requests: bool = True
    notify_on_messages: bool = True
    read_receipts: bool = False
    share_typing: bool = True
    """Let a friend see "typing…" while I write to them (issue 17): sent only while
    I type in their conversation, never stored."""
    """Tell friends when I have read their messages (issue 17). Off by default:
    whether and when I read something is mine to share (docs/decisions.md)."""
    flap_minutes: Annotated[int, msgspec.Meta(ge=0, le=24 * 60)] = 5
    """A friend back after less than this offline is not announced again."""
    muted: frozenset[int] = frozenset()
    """User ids whose notifications never show."""
    starred: frozenset[int] = frozenset()
    """User ids listed first and notified even with ``online_alerts = starred``."""
    autostart: bool = False
    """Start at login; ``platform.autostart`` writes or removes the OS entry."""
    # Editor activity, idle and privacy (issue 5; schemas in their own modules).
    privacy: PrivacySettings = msgspec.field(default_factory=PrivacySettings)
    idle: IdleSettings = msgspec.field(default_factory=IdleSettings)
    activity: ActivitySettings = msgspec.field(default_factory=ActivitySettings)


class StoredMessage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    message_id: str
    seq: int
    sender_id: int
    sender_login: str
    text: str
    sent_at: int
    read: bool = False


class WindowGeometry(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    x: int
    y: int
    width: Annotated[int, msgspec.Meta(ge=0)]
    height: Annotated[int, msgspec.Meta(ge=0)]


class PendingMessage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """A chat message not yet confirmed by the server, kept across restarts."""

    to: int
    text: str
    client_msg_id: str


class ServerRuntime(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """A server the app left, kept so that switching back loses nothing."""

    acked_seq: int = 0
    inbox: tuple[StoredMessage, ...] = ()
    pending_messages: tuple[PendingMessage, ...] = ()
    left_at: int = 0
    """Unix time the app switched away; the oldest go first beyond ``SERVERS_KEPT``."""


class RuntimeState(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """What the app remembers between runs, version 2.

    ``acked_seq``, ``inbox`` and ``pending_messages`` belong to ``server_url``
    (another server is another account); other servers' are in ``servers``.
    Version 1 had no ``server_url``: its fields belonged to the configured server.
    """

    version: int = RUNTIME_VERSION
    server_url: str = ""
    """Normalized address the per-server fields belong to; empty before any server."""
    acked_seq: int = 0
    """Highest message seq acknowledged to the server after storing it."""
    inbox: tuple[StoredMessage, ...] = ()
    my_status: Status = Status.ONLINE
    my_status_until: int | None = None
    """Unix time when a timed status ends; None for "until I change it"."""
    pending_messages: tuple[PendingMessage, ...] = ()
    windows: dict[str, WindowGeometry] = msgspec.field(default_factory=dict)
    """Geometry per window name (e.g. "popup", "main")."""
    servers: dict[str, ServerRuntime] = msgspec.field(default_factory=dict)
    """Servers switched away from, by normalized address (never ``server_url``)."""


def normalize_server_url(url: str) -> str:
    """Check a server address and return it in canonical ``ws(s)://`` form.

    ``https://`` becomes ``wss://`` (people paste web addresses). Plain
    ``ws://`` is accepted for loopback only, because the session token would
    otherwise cross the network unencrypted. An empty string means "not set".
    """
    url = url.strip()
    if not url:
        return ""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SettingsError(f"not a valid server address: {exc}") from None
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme.lower(), parts.scheme.lower())
    if scheme not in ("ws", "wss"):
        raise SettingsError("the server address must start with wss:// (or https://)")
    host = parts.hostname
    if not host:
        raise SettingsError("the server address has no host name")
    if parts.username is not None or parts.password is not None:
        raise SettingsError("the server address must not contain a user name or password")
    if parts.query or parts.fragment:
        raise SettingsError("the server address must not contain ?query or #fragment")
    if scheme == "ws" and not is_loopback_host(host):
        raise SettingsError(
            "use wss:// for a server on another machine; ws:// would send your session unencrypted"
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return urllib.parse.urlunsplit((scheme, netloc, parts.path, "", ""))


class SettingsStore:
    """Loads both files at construction, saves on every change, announces changes.

    Directories are always passed in (see ``presence_desktop.paths``), so tests
    and the demo never touch the real configuration.
    """

    def __init__(
        self,
        config_dir: Path,
        state_dir: Path,
        *,
        settings_migrations: Mapping[int, Migration] = SETTINGS_MIGRATIONS,
        runtime_migrations: Mapping[int, Migration] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings_path = config_dir / SETTINGS_FILE
        self.runtime_path = state_dir / RUNTIME_FILE
        self.changed = Signal[Settings]()
        """Emitted after every successful ``update`` with the new settings."""
        self.runtime_changed = Signal[RuntimeState]()
        """Emitted after runtime state was saved with different content."""
        self.settings: Settings
        self.runtime: RuntimeState
        self._clock = clock
        self.settings, self.settings_load = load_versioned(
            self.settings_path,
            Settings,
            version=SETTINGS_VERSION,
            migrations=settings_migrations,
        )
        if runtime_migrations is None:
            # Read after the settings: an old runtime file belongs to their server.
            runtime_migrations = {
                1: functools.partial(runtime_v1_to_v2, server_url=self.settings.server_url)
            }
        self.runtime, self.runtime_load = load_versioned(
            self.runtime_path,
            RuntimeState,
            version=RUNTIME_VERSION,
            migrations=runtime_migrations,
        )

    @property
    def load_problems(self) -> list[LoadResult]:
        """Loads that fell back to defaults, so the ui can tell the person once."""
        return [r for r in (self.settings_load, self.runtime_load) if r.problem]

    # ---------------------------------------------------------- settings

    def update(self, **changes: Any) -> Settings:
        """Change some settings, validate, save, announce.

        Raises ``SettingsError`` (and changes nothing) for an unknown name or a
        value of the wrong type or range.
        """
        unknown = set(changes) - set(Settings.__struct_fields__) | ({"version"} & set(changes))
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        if "server_url" in changes:
            if not isinstance(changes["server_url"], str):
                raise SettingsError("server_url must be a string")
            changes["server_url"] = normalize_server_url(changes["server_url"])
        raw = msgspec.to_builtins(self.settings)
        raw.update(msgspec.to_builtins(changes))
        try:
            new = msgspec.convert(raw, Settings)
        except msgspec.ValidationError as exc:
            raise SettingsError(str(exc)) from None
        if new == self.settings:
            return new
        save_atomic(self.settings_path, new)
        self.settings = new
        self.changed.emit(new)
        return new

    def set_muted(self, user_id: int, muted: bool) -> None:
        ids = self.settings.muted
        self.update(muted=ids | {user_id} if muted else ids - {user_id})

    def set_starred(self, user_id: int, starred: bool) -> None:
        ids = self.settings.starred
        self.update(starred=ids | {user_id} if starred else ids - {user_id})

    # ---------------------------------------------------------- runtime state

    def update_runtime(self, **changes: Any) -> RuntimeState:
        """Replace some runtime fields and save. Values must already be typed."""
        if "inbox" in changes:
            changes["inbox"] = tuple(changes["inbox"])[-INBOX_CACHE_SIZE:]
        if "pending_messages" in changes:
            changes["pending_messages"] = tuple(changes["pending_messages"])
        try:
            new = msgspec.structs.replace(self.runtime, **changes)
        except TypeError as exc:
            raise SettingsError(str(exc)) from None
        if new != self.runtime:
            save_atomic(self.runtime_path, new)
            self.runtime = new
            self.runtime_changed.emit(new)
        return new

    def switch_runtime(self, server_url: str) -> RuntimeState:
        """Make ``server_url``'s inbox, acked seq and queued messages the current ones.

        The current server's are kept under its address for switching back
        (within ``SERVERS_KEPT``). State that belongs to no server yet (first
        run, or an old file without a configured server) goes to the first
        server that has none. The switch happens in memory even when saving
        fails (the error is raised after it), so one server's messages are
        never sent to another; the next successful save writes it down.
        """
        key = server_key(server_url)
        current = self.runtime
        if key == current.server_url:
            return current
        servers = dict(current.servers)
        adopt = current.server_url == "" and key not in servers
        if adopt:
            entry = ServerRuntime(
                acked_seq=current.acked_seq,
                inbox=current.inbox,
                pending_messages=current.pending_messages,
            )
        else:
            if current.acked_seq or current.inbox or current.pending_messages:
                servers[current.server_url] = ServerRuntime(
                    acked_seq=current.acked_seq,
                    inbox=current.inbox,
                    pending_messages=current.pending_messages,
                    left_at=int(self._clock()),
                )
            entry = servers.pop(key, ServerRuntime())
        _drop_oldest(servers)
        new = msgspec.structs.replace(
            current,
            server_url=key,
            acked_seq=entry.acked_seq,
            inbox=entry.inbox,
            pending_messages=entry.pending_messages,
            servers=servers,
        )
        self.runtime = new
        self.runtime_changed.emit(new)
        save_atomic(self.runtime_path, new)
        return new


def server_key(url: str) -> str:
    """The address runtime state is filed under (``--server`` and Settings agree)."""
    try:
        return normalize_server_url(url)
    except SettingsError:
        return url.strip()


def _drop_oldest(servers: dict[str, ServerRuntime]) -> None:
    """Keep ``SERVERS_KEPT - 1`` left servers, except that unsent messages always stay."""
    excess = len(servers) - (SERVERS_KEPT - 1)
    if excess <= 0:
        return
    droppable = sorted(
        (entry.left_at, url) for url, entry in servers.items() if not entry.pending_messages
    )
    for _left_at, url in droppable[:excess]:
        log.info("forgetting the cached inbox of %s (more than %d servers)", url, SERVERS_KEPT)
        del servers[url]
