"""The one object the ui talks to: it turns clicks into commands and events into alerts.

It owns the net client, the notification rules, the status expiry timer and
the saving of runtime state (inbox cache, acknowledged seq, queued messages,
my chosen status). It holds no widgets and imports no Qt: every method returns
at once, results arrive as ``PresenceState`` changes, on ``errors`` or on
``alerts``. All timers are ``call_later`` on the running asyncio loop (qasync's
in the app), each armed for the exact moment it is needed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from presence_protocol import (
    AccountExport,
    Activity,
    Block,
    ClientMessage,
    CloseCode,
    DeleteAccount,
    Error,
    ErrorCode,
    ExportAccount,
    FriendAccept,
    FriendCancel,
    FriendDecline,
    FriendRemove,
    FriendRequest,
    GitHubConfig,
    MessageExpired,
    Ok,
    ReadMarker,
    RevokeSession,
    SendMessage,
    SetPresence,
    Status,
    Unblock,
    limits,
)

from .core.api import Alert, ConnectionEvents, ConnectionInfo, Link, UserError
from .core.backoff import backoff_delays
from .core.conversations import Conversations
from .core.credentials import Credentials, MemoryCredentials
from .core.devices import Device, DeviceSignedOut, DeviceSignOutFailed
from .core.events import Signal
from .core.history import HistoryError
from .core.notify_rules import NotifyRules, watch_state
from .core.settings import (
    PendingMessage,
    Settings,
    SettingsError,
    SettingsStore,
    StoredMessage,
    normalize_server_url,
    server_key,
)
from .core.state import InboxMessage, PresenceState
from .core.status import ExpiryTimer, effective_status
from .net.client import PresenceClient

if TYPE_CHECKING:
    # Imported where used: a signed-in start needs none of the sign-in, server
    # check or export code (issue 18: RSS; tests/desktop/test_lazy_imports.py).
    from .net.github_login import SignInFactory
    from .net.oauth import GitHubSignIn, Opener
    from .net.probe import ServerOffer  # noqa: F401 (Signal["ServerOffer"] below)

log = logging.getLogger(__name__)

SIGN_IN_STOP_TIMEOUT = 2.0
"""Seconds a cancelled sign-in gets to close its listener before its task is cancelled."""

_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9]))*$")


class Controller:
    """Implements ``presence_desktop.core.api.AppActions``."""

    def __init__(
        self,
        *,
        state: PresenceState,
        connection: ConnectionEvents,
        settings: SettingsStore,
        credentials: Credentials,
        credentials_for: Callable[[str], Credentials] | None = None,
        server_url: str | None = None,
        dev_login: str | None = None,
        device: str | None = None,
        clock: Callable[[], float] = time.time,
        backoff: Callable[[], Iterator[float]] = backoff_delays,
        opener: Opener | None = None,
        make_sign_in: SignInFactory | None = None,
        data_dir: Path | None = None,
    ) -> None:
        self.state = state
        self.connection = connection
        self.settings = settings
        self.credentials = credentials
        self._credentials_for = credentials_for
        """The store for another server's session (keychain entries are keyed by URL)."""
        self.dev_login = dev_login
        self._clock = clock
        self._backoff = backoff
        self._device = device if device is not None else socket.gethostname()
        self._url_override = server_url

        self.errors = Signal[UserError]()
        """Something failed that the person should read (title, message, code)."""
        self.alerts = Signal[Alert]()
        """A desktop notification to show now (already coalesced and filtered)."""
        self.quit_requested = Signal[None]()
        """The person chose Quit; the app shell stops the loop."""
        self.account_exported = Signal[str]()
        """The account export was written to this path."""
        self.account_deleted = Signal[None]()
        """The server deleted the account; this app is signed out."""
        self.account_delete_failed = Signal[UserError]()
        """Nothing was deleted, and why (the confirmation dialog shows it inline)."""
        self.account_export_failed = Signal[UserError]()
        """No export was written, and why (the settings dialog shows it inline)."""
        # Signed-in devices (Settings → Devices): the answers to list_devices,
        # sign_out_device and sign_out_other_devices.
        self.devices_listed = Signal[list[Device]]()
        """My live sessions, oldest first as the server orders them (every page)."""
        self.devices_failed = Signal[UserError]()
        """Listing failed; ``code`` "signed_out", "offline" or the server's error code."""
        self.device_signed_out = Signal[DeviceSignedOut]()
        """One other device is signed out (or already was: ``already_gone``)."""
        self.device_sign_out_failed = Signal[DeviceSignOutFailed]()
        """That device is still signed in, and why."""
        self.other_devices_signed_out = Signal[int]()
        """"Sign out all other devices" finished: this many were signed out."""
        self._current_session: str | None = None
        """This connection's session id as the last listing said (never revoked from here)."""
        # GitHub sign-in (issue 4).
        self.sign_in_started = Signal["GitHubSignIn"]()
        """A sign-in attempt began; the ui shows its window (``ui.sign_in``)."""
        self._opener = opener
        """The browser opener for sign-in; None: ``webbrowser.open``, imported when needed."""
        self._make_sign_in = make_sign_in or self._default_sign_in
        self._sign_in_task: asyncio.Task[None] | None = None
        self._sign_in: GitHubSignIn | None = None
        """The attempt whose window is open (a server switch cancels it)."""
        self.sign_in_started.connect(self._remember_sign_in)
        # First run (issue 18): which sign-in methods does a server offer?
        self.server_checked = Signal["ServerOffer"]()
        """A server answered: its address (canonical) and the sign-in methods usable there."""
        self.server_check_failed = Signal[UserError]()
        """The address was refused or the server could not be asked (shown inline)."""
        self._signing_out = False
        self._last_link = connection.current.link

        self.rules = NotifyRules(settings.settings, clock=clock)
        self._activity: Activity | None = None
        self._auto_away = False
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flush_at: float | None = None
        self._expiry: ExpiryTimer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._switching = asyncio.Lock()
        """One server switch at a time; a later one waits and then compares again."""
        self.client = self._make_client(self.server_url)

        # Conversations (issue 17): the local history of the signed-in account.
        # Without a data directory (some tests) nothing is kept on disk.
        self.conversations = Conversations(
            state,
            data_dir=data_dir,
            server_key=lambda: server_key(self.client.url),
            send_receipts=lambda: self.settings.settings.read_receipts,
            clock=clock,
        )
        self.conversations.mark_read_wanted.connect(lambda m: self.client.mark_read(m))
        self.conversations.failed.connect(
            lambda text: self._error("Conversation history unavailable", text, "history")
        )
        self.rules.is_focused = lambda uid: self.conversations.focused == uid

        watch_state(self.rules, state, self._schedule_flush)
        settings.changed.connect(self._on_settings)
        connection.changed.connect(self._on_connection)

    # ---------------------------------------------------------- lifecycle

    @property
    def server_url(self) -> str:
        return self._url_override or self.settings.settings.server_url

    async def start(self) -> None:
        """Restore what the last run left, then connect."""
        loop = asyncio.get_running_loop()
        self._expiry = ExpiryTimer(loop, self._status_expired, self._clock)
        self._restore_server_runtime()
        runtime = self.settings.runtime
        status = effective_status(runtime.my_status, runtime.my_status_until, self._clock())
        until = runtime.my_status_until if status is runtime.my_status else None
        self._apply_status(status, until)
        self._started = True
        self._connect()

    async def stop(self) -> None:
        self._started = False
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        if self._expiry is not None:
            self._expiry.cancel()
        await self.client.stop()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    def reconnect_now(self) -> None:
        """Skip the backoff wait once, or try again after a stop ("Reconnect now")."""
        self._connect()

    # ---------------------------------------------------------- AppActions

    def set_status(self, status: Status, until: int | None) -> None:
        if until is not None and until <= self._clock():
            self._error("That time has passed", "Choose a time in the future.", "invalid_until")
            return
        if status is Status.ONLINE:
            until = None  # "online for an hour" means nothing: online is the default
        self._apply_status(status, until)

    def set_activity(self, activity: Activity | None) -> None:
        """My editor activity (fed by the editor bridge, already privacy-filtered)."""
        self._activity = activity
        self._send_presence()

    # Editor activity and idle (issue 5 wiring).
    def set_editor_presence(self, activity: Activity | None, away: bool) -> None:
        """From ``net.editor_activity``: filtered activity, and whether I am away by
        the idle/lock rules. Automatic away is sent, never stored as my choice."""
        self._activity = activity
        self._auto_away = away
        self._send_presence()

    def add_friend(self, login: str) -> None:
        login = login.strip().removeprefix("@")
        if not login or len(login) > limits.MAX_LOGIN_CHARS or not _LOGIN.match(login):
            self._error(
                "Not a GitHub login",
                "A GitHub login has letters, digits and single hyphens, up to 39 characters.",
                "invalid_login",
            )
            return
        me = self.state.me
        if me is not None and me.login.lower() == login.lower():
            self._error("That is you", "You cannot add yourself as a friend.", "self_request")
            return
        self._send(FriendRequest(login=login))

    def accept_friend(self, user_id: int) -> None:
        self._send(FriendAccept(user_id=user_id))

    def decline_friend(self, user_id: int) -> None:
        self._send(FriendDecline(user_id=user_id))

    def cancel_request(self, user_id: int) -> None:
        self._send(FriendCancel(user_id=user_id))

    def remove_friend(self, user_id: int) -> None:
        self._send(FriendRemove(user_id=user_id))

    def block(self, user_id: int) -> None:
        self._send(Block(user_id=user_id))

    def unblock(self, user_id: int) -> None:
        self._send(Unblock(user_id=user_id))

    def send_message(self, user_id: int, text: str) -> None:
        text = text.strip()
        if not text:
            self._error("Empty message", "Type something to send.", "empty_message")
            return
        if len(text) > limits.MAX_MESSAGE_CHARS:
            self._error(
                "Message too long",
                f"Messages can have at most {limits.MAX_MESSAGE_CHARS} characters "
                f"(this one has {len(text)}).",
                "message_too_long",
            )
            return
        if user_id not in self.state.friends:
            self._error("Not friends", "You can only message friends.", "not_friends")
            return
        cmid = self.client.send_message(user_id, text)
        self.conversations.record_pending(user_id, cmid, text)

    def retry_message(self, client_msg_id: str) -> None:
        """Send a message that failed again, with its own client_msg_id (no duplicate)."""
        try:
            entry = self.conversations.retry(client_msg_id)
        except HistoryError as exc:
            self._error("Cannot retry", str(exc), "retry")
            return
        if entry is not None:
            self.client.send_message(entry.peer, entry.text, client_msg_id)

    def open_conversation(self, user_id: int, *, focused: bool = True) -> None:
        """The conversation with ``user_id`` is on screen: it is read, here and on my
        other devices (and, if I chose to send read receipts, for the friend)."""
        self.conversations.open(user_id, focused=focused)
        self._save_inbox()

    def composing(self, user_id: int) -> None:
        """The person is typing to ``user_id``: a paced "typing…" hint, if they allow it."""
        if (
            self.settings.settings.share_typing
            and user_id in self.state.friends
            and self.conversations.composing(user_id)
        ):
            self.client.typing(user_id)

    def leave_conversation(self, user_id: int | None = None) -> None:
        """No conversation (or not this one) is in front of the person any more."""
        self.conversations.unfocus(user_id)

    def clear_history(self) -> None:
        """ "Clear history" in Settings: this computer's copy of every conversation."""
        self.conversations.clear_history()
        self._save_inbox()

    def mark_read(self) -> None:
        for summary in self.conversations.summaries():
            if summary.unread:
                self.conversations.read(summary.peer)
        self.state.mark_read()
        self._save_inbox()

    def set_muted(self, user_id: int, muted: bool) -> None:
        self._update_settings(lambda: self.settings.set_muted(user_id, muted))

    def set_starred(self, user_id: int, starred: bool) -> None:
        self._update_settings(lambda: self.settings.set_starred(user_id, starred))

    def is_muted(self, user_id: int) -> bool:
        return user_id in self.settings.settings.muted

    def is_starred(self, user_id: int) -> bool:
        return user_id in self.settings.settings.starred

    def sign_in(self) -> None:
        """Connect with the saved session (or dev login); otherwise sign in with GitHub."""
        if self.credentials_present() or self.dev_login is not None:
            self._connect()
            return
        self._start_github_sign_in(None)

    def sign_out(self) -> None:
        self._spawn(self._sign_out())

    # First run (issue 18): server address, then the methods that server offers.

    def check_server(self, address: str) -> None:
        """Ask the server at ``address`` how to sign in; answers on ``server_checked``."""
        try:
            url = normalize_server_url(address)
        except SettingsError as exc:
            self.server_check_failed.emit(
                UserError(
                    "Not a server address",
                    f"{str(exc)[:1].upper()}{str(exc)[1:]}.",
                    "server_address",
                )
            )
            return
        if not url:
            self.server_check_failed.emit(
                UserError(
                    "No server address",
                    "Type the address of your presence server, e.g. wss://presence.example.org.",
                    "server_address",
                )
            )
            return
        self._spawn(self._check_server(url))

    async def _check_server(self, url: str) -> None:
        from .net.probe import ProbeError, probe_server

        try:
            offer = await probe_server(url)
        except ProbeError as exc:
            self.server_check_failed.emit(
                UserError("Can't use this server", str(exc), "server_check")
            )
            return
        self.server_checked.emit(offer)

    def sign_in_at(self, url: str, method: str, login: str = "") -> None:
        """Use the server at ``url`` from now on and sign in there with ``method``.

        ``method`` is "github" or "dev" (a development login as ``login``, which
        the first-run page only offers on a loopback server that allows it).
        """
        if method == "dev" and not _LOGIN.match(login.strip()):
            self.server_check_failed.emit(
                UserError(
                    "Not a login name",
                    "Use letters, digits and single hyphens, like a GitHub login.",
                    "server_login",
                )
            )
            return
        self._spawn(self._sign_in_at(url, method, login.strip()))

    async def _sign_in_at(self, url: str, method: str, login: str) -> None:
        if method == "dev":
            self.dev_login = login
            self.client.dev_login = login
        if url != self.server_url:
            if self._url_override is not None or not self.update_settings(server_url=url):
                return
            await self._switch_server(url)  # the settings change asked for it too; one wins
        if method == "dev":
            self._connect()
        else:
            self._start_github_sign_in(None)

    def quit(self) -> None:
        self.quit_requested.emit(None)

    # Account export and deletion (issue 7), from the settings dialog.

    def export_account(self, path: str) -> None:
        """Ask the server for everything it holds about me and save it to ``path``."""
        self._spawn(self._export_account(Path(path)))

    def delete_account(self, confirm_login: str) -> None:
        """Delete my account on the server; ``confirm_login`` must be my login."""
        me = self.state.me
        if me is None or confirm_login.strip().lower() != me.login.lower():
            self._delete_failed(
                "Type your own login exactly to confirm. Nothing was deleted.",
                "confirm_mismatch",
            )
            return
        self._spawn(self._delete_account(confirm_login.strip()))

    # Signed-in devices (issue 14's desktop half), from Settings → Devices.

    def list_devices(self) -> None:
        """Fetch every page of my sessions; answers on ``devices_listed`` or ``devices_failed``."""
        self._spawn(self._list_devices())

    def sign_out_device(self, session_id: str) -> None:
        """Revoke one of my other sessions: that device is disconnected (4502) at once."""
        self._spawn(self._sign_out_device(session_id))

    def sign_out_other_devices(self) -> None:
        """Revoke every session of mine except this computer's, one after another.

        There is no server command for "all but this one" (``sign_out`` with
        ``everywhere`` ends this session too, and signing in again may need a
        browser); see docs/decisions.md. The list is fetched fresh first, so a
        device that signed in after the page loaded is signed out as well.
        """
        self._spawn(self._sign_out_other_devices())

    async def _list_devices(self) -> None:
        try:
            devices = await self._fetch_devices()
        except _DevicesUnavailable as exc:
            self.devices_failed.emit(exc.error)
            return
        self.devices_listed.emit(devices)

    async def _fetch_devices(self) -> list[Device]:
        self._check_devices_reachable()
        try:
            sessions = await self.client.list_sessions()
        except (ConnectionError, TimeoutError):
            raise _DevicesUnavailable(_offline_error()) from None
        except RuntimeError as exc:
            text = str(exc)
            raise _DevicesUnavailable(
                UserError("Cannot list your devices", text[:1].upper() + text[1:], "list_sessions")
            ) from None
        devices = [
            Device(s.id, s.device, int(s.created_at), int(s.last_used_at), s.current)
            for s in sessions
        ]
        self._current_session = next((d.session_id for d in devices if d.current), None)
        return devices

    def _check_devices_reachable(self) -> None:
        link = self.connection.current.link
        if link is Link.SIGNED_OUT:
            raise _DevicesUnavailable(
                UserError("Signed out", "Sign in to see your devices.", "signed_out")
            )
        if link is not Link.ONLINE:
            raise _DevicesUnavailable(_offline_error())

    async def _sign_out_device(self, session_id: str) -> None:
        try:
            self._check_devices_reachable()
            result = await self._revoke(session_id)
        except _DevicesUnavailable as exc:
            self.device_sign_out_failed.emit(DeviceSignOutFailed(session_id, exc.error))
            return
        self.device_signed_out.emit(result)

    async def _revoke(self, session_id: str) -> DeviceSignedOut:
        """One ``revoke_session``; ``unknown_session`` means it is gone already.

        ``rate_limited`` (many devices signed out at once) waits as long as the
        server asks and tries again: the person asked for all of them.
        """
        if session_id == self._current_session:
            raise _DevicesUnavailable(
                UserError(
                    "This is this computer",
                    "Use Sign out in the tray menu to sign this computer out.",
                    "current_session",
                )
            )
        while True:
            try:
                reply = await self.client.call(RevokeSession(session_id=session_id))
            except (ConnectionError, TimeoutError):
                raise _DevicesUnavailable(_offline_error()) from None
            if isinstance(reply, Ok):
                return DeviceSignedOut(session_id)
            if isinstance(reply, Error) and reply.code == ErrorCode.UNKNOWN_SESSION:
                return DeviceSignedOut(session_id, already_gone=True)
            if isinstance(reply, Error) and reply.code == ErrorCode.RATE_LIMITED:
                await asyncio.sleep(min(max(reply.retry_after or 1.0, 0.1), 60.0))
                continue
            detail = (
                (reply.message or reply.code) if isinstance(reply, Error) else type(reply).__name__
            )
            code = reply.code if isinstance(reply, Error) else "revoke_session"
            raise _DevicesUnavailable(
                UserError("Device not signed out", f"The server said: {detail}.", code)
            )

    async def _sign_out_other_devices(self) -> None:
        try:
            devices = await self._fetch_devices()
        except _DevicesUnavailable as exc:
            self.devices_failed.emit(exc.error)
            return
        count = 0
        for device in devices:
            if device.current:
                continue
            try:
                result = await self._revoke(device.session_id)
            except _DevicesUnavailable as exc:
                self.device_sign_out_failed.emit(DeviceSignOutFailed(device.session_id, exc.error))
                return  # the rest stay signed in; the page still lists them
            self.device_signed_out.emit(result)
            count += not result.already_gone
        self.other_devices_signed_out.emit(count)

    # ---------------------------------------------------------- extras for the ui

    def update_settings(self, **changes: Any) -> bool:
        """Apply settings from the dialog; False (with an error shown) if refused."""
        return self._update_settings(lambda: self.settings.update(**changes))

    def credentials_present(self) -> bool:
        try:
            return self.credentials.get() is not None
        except Exception as exc:
            self._error("Cannot read your saved sign-in", str(exc), "credentials")
            return False

    # ---------------------------------------------------------- internals

    def _make_client(self, url: str) -> PresenceClient:
        client = PresenceClient(
            url,
            self.state,
            self.connection,
            self.credentials,
            dev_login=self.dev_login,
            device=self._device,
            backoff=self._backoff,
            before_ack=self._store_received,
        )
        client.errors.connect(self.errors.emit)
        client.outbox_changed.connect(lambda _: self._save_pending())
        client.expired.connect(self._message_expired)
        # Every client of this controller feeds the same conversations; the
        # lambdas look the model up at call time (it is made after the first client).
        client.sent.connect(lambda m: self.conversations.on_sent(m))
        client.copied.connect(lambda m: self.conversations.on_copy(m))
        client.delivery.connect(lambda m: self.conversations.on_delivered(m))
        client.read_marker.connect(self._read_elsewhere)
        client.read_receipt.connect(lambda m: self.conversations.on_receipt(m))
        client.typing_hint.connect(lambda m: self.conversations.on_typing(m))
        client.refused.connect(self._refused)
        return client

    def _read_elsewhere(self, marker: ReadMarker) -> None:
        self.conversations.on_read_marker(marker)
        self._save_inbox()

    def _refused(self, command: ClientMessage) -> None:
        if isinstance(command, SendMessage):
            self.conversations.on_failed(command.client_msg_id)

    def _connect(self) -> None:
        if not self._started:
            return
        if not self.server_url:
            self.connection.set(
                ConnectionInfo(
                    Link.SIGNED_OUT,
                    title="No server",
                    message="Set the presence server address in Settings.",
                )
            )
            return
        self.client.reconnect_now()

    def _send(self, command: ClientMessage) -> None:
        try:
            self.client.send(command)
        except ValueError as exc:
            self._error("Cannot send that", str(exc), "invalid_message")

    def _apply_status(self, status: Status, until: int | None) -> None:
        self.state.set_my_status(status, until)
        if self._expiry is not None:
            self._expiry.arm(until)
        self._save_runtime(my_status=status, my_status_until=until)
        self._send_presence()

    def _send_presence(self) -> None:
        status = self.state.my_status
        if self._auto_away and status is Status.ONLINE:  # issue 5: idle or locked
            status = Status.AWAY
        self.client.set_presence(
            SetPresence(
                status=status,
                activity=self._activity,
                until=self.state.my_status_until,
            )
        )

    def _status_expired(self) -> None:
        log.info("timed status %s ended; back to online", self.state.my_status)
        self._apply_status(Status.ONLINE, None)

    def _on_connection(self, info: ConnectionInfo) -> None:
        if info.link is Link.ONLINE and self._expiry is not None:
            self._expiry.check()  # a timer may be late after the machine slept
        previous, self._last_link = self._last_link, info.link
        if info.link is not Link.SIGNED_OUT or previous is Link.SIGNED_OUT or self._signing_out:
            return
        if info.close_code == CloseCode.ACCOUNT_DELETED:
            # Deleted from another device: nothing to sign in to, so no window; the
            # tray still offers Sign in (a new account) when the person wants one.
            self._spawn(self._account_deleted_elsewhere(self.client, info))
            return
        if info.title and self.dev_login is None:
            # The server ended the session (revoked, expired): ask to sign in again,
            # without opening a browser nobody asked for.
            self._start_github_sign_in(UserError(info.title, info.message, "signed_out"))

    # GitHub sign-in (issue 4).

    def _remember_sign_in(self, sign_in: GitHubSignIn) -> None:
        self._sign_in = sign_in

    def _default_sign_in(self, config: GitHubConfig, reason: UserError | None) -> GitHubSignIn:
        import webbrowser

        from .net.oauth import GitHubSignIn

        opener = self._opener if self._opener is not None else webbrowser.open
        return GitHubSignIn(config, opener=opener, open_browser=reason is None, reason=reason)

    def _start_github_sign_in(self, reason: UserError | None) -> None:
        if self._sign_in_task is not None and not self._sign_in_task.done():
            return  # one attempt at a time; its window is already open
        if not self._started or not self.server_url:
            self._connect()  # says "No server" when there is none
            return
        self._sign_in_task = asyncio.get_running_loop().create_task(
            self._github_sign_in(reason), name="github-sign-in"
        )
        self._tasks.add(self._sign_in_task)
        self._sign_in_task.add_done_callback(self._task_done)

    async def _github_sign_in(self, reason: UserError | None) -> None:
        from .net.github_login import sign_in_with_github
        from .net.oauth import SignInError

        try:
            await sign_in_with_github(
                self.client,
                self.sign_in_started,
                self._make_sign_in,
                device=self._device,
                reason=reason,
            )
        except SignInError as exc:
            self.errors.emit(exc.error)

    def _on_settings(self, settings: Settings) -> None:
        self.rules.set_settings(settings)
        if self._url_override is None and settings.server_url != self.client.url:
            self._spawn(self._switch_server(settings.server_url))

    async def _switch_server(self, url: str) -> None:
        """Another server is another account: show that server's own data there.

        The old server's session stays in the keychain under its own URL (see
        docs/decisions.md), so switching back signs in again without a browser;
        the new server gets its own entry, or the sign-in window when it has none.
        Its inbox, acked seq and unsent messages stay in the runtime state under
        its URL, and come back (the messages are sent) when the person returns.
        """
        async with self._switching:
            if url != self.client.url:
                await self._switch_to(url)

    async def _switch_to(self, url: str) -> None:
        task = self._sign_in_task
        if task is not None and not task.done():
            # It signs in to the old server. Cancelled like the person would, its
            # window says so and "Try again" starts over on the new server.
            if self._sign_in is not None:
                self._sign_in.cancel()
            _done, pending = await asyncio.wait([task], timeout=SIGN_IN_STOP_TIMEOUT)
            for stuck in pending:
                stuck.cancel()
        old = self.client
        old.withdraw_login()
        await old.stop()
        # Its queued messages and inbox stay on disk under its address (the
        # runtime switch below); friend actions are not kept, as across a restart.
        self._save_pending()
        self._save_inbox()
        others = [c for c in old.pending() if not isinstance(c, SendMessage)]
        if others:
            log.warning("dropping %d unsent friend actions meant for %s", len(others), old.url)
        if self._credentials_for is not None:
            self.credentials = self._credentials_for(url)
        else:
            # Never offer one server's token to another: without a way to find the
            # new server's entry, start signed out there.
            log.info("no credential store per server: the new server starts signed out")
            self.credentials = MemoryCredentials()
        self.client = self._make_client(url)
        self._current_session = None  # that server's; this one has not been listed yet
        log.info("switched server from %s to %s", old.url, url)
        self.state.clear()
        self.rules.clear()
        self._restore_server_runtime()
        self._send_presence()
        self._connect()

    def _message_expired(self, notice: MessageExpired) -> None:
        self.conversations.on_failed(notice.client_msg_id)
        sent = time.strftime("%Y-%m-%d %H:%M", time.localtime(notice.sent_at))
        self._error(
            "Message not delivered",
            f"Your message to {self.state.login_of(notice.to)} of {sent} was never "
            "received, and the server deleted it. Send it again if it still matters.",
            "message_expired",
        )

    async def _export_account(self, path: Path) -> None:
        pages: list[AccountExport] = []
        after: str | None = None
        try:
            while True:
                reply = await self.client.call(ExportAccount(after=after))
                if not isinstance(reply, AccountExport):
                    detail = reply.message if isinstance(reply, Error) else type(reply).__name__
                    self._export_failed(f"The server said: {detail}", "export")
                    return
                pages.append(reply)
                if reply.next is None:
                    break
                after = reply.next
            from .core import account_export

            document = account_export.assemble(pages, self.server_url, int(self._clock()))
            await asyncio.to_thread(account_export.save, path, document)
        except (ConnectionError, TimeoutError):
            self._export_failed(
                "The connection to the server is not up. Try again once you are online.",
                "offline",
            )
            return
        except (OSError, ValueError) as exc:
            self._export_failed(f"{exc}", "export")
            return
        self.account_exported.emit(str(path))

    def _export_failed(self, message: str, code: str) -> None:
        error = UserError("Cannot export your data", message, code)
        self.errors.emit(error)
        self.account_export_failed.emit(error)

    async def _delete_account(self, confirm_login: str) -> None:
        # Like a sign-out: the close that follows must not open the sign-in window.
        self._signing_out = True
        try:
            try:
                reply = await self.client.call(DeleteAccount(confirm_login=confirm_login))
            except (ConnectionError, TimeoutError):
                self._delete_failed(
                    "The connection to the server is not up. Nothing was deleted. "
                    "Try again once you are online.",
                    "offline",
                )
                return
            if not isinstance(reply, Ok):
                if isinstance(reply, Error):
                    self._delete_failed(
                        f"The server said: {reply.message or reply.code}. Nothing was deleted.",
                        reply.code,
                    )
                else:
                    self._delete_failed(f"Unexpected reply {type(reply).__name__}.", "delete")
                return
            await self.client.forget(
                ConnectionInfo(
                    Link.SIGNED_OUT,
                    title="Account deleted",
                    message="Your account and everything about it were deleted from the server.",
                )
            )
        finally:
            self._signing_out = False
        self.rules.clear()
        self._save_runtime(inbox=(), acked_seq=0, pending_messages=())
        self.conversations.delete_history()
        self.account_deleted.emit(None)

    async def _account_deleted_elsewhere(
        self, client: PresenceClient, info: ConnectionInfo
    ) -> None:
        """Like a deletion from here: this server's local data of the account goes."""
        async with self._switching:
            if client is not self.client:
                return  # switched away first; that server says 4503 again on return
            await client.forget(info)
            self.rules.clear()
            self._save_runtime(inbox=(), acked_seq=0, pending_messages=())
            self.conversations.delete_history()
        self.account_deleted.emit(None)

    def _delete_failed(self, message: str, code: str) -> None:
        error = UserError("Account not deleted", message, code)
        self.errors.emit(error)
        self.account_delete_failed.emit(error)

    async def _sign_out(self) -> None:
        self._signing_out = True
        try:
            await self.client.sign_out()
        finally:
            self._signing_out = False
        self.rules.clear()
        self._save_runtime(inbox=(), acked_seq=0, pending_messages=())
        # Signing out removes that account's messages from this computer (PRIVACY.md).
        self.conversations.delete_history()

    # Notifications: one timer, armed for the earliest flush.

    def _schedule_flush(self, deadline: float | None) -> None:
        if deadline is None or deadline == self._flush_at:
            return
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        loop = asyncio.get_running_loop()
        self._flush_at = deadline
        self._flush_handle = loop.call_later(max(0.0, deadline - self._clock()), self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        self._flush_at = None
        for alert in self.rules.flush():
            self.alerts.emit(alert)
        self._schedule_flush(self.rules.next_flush())

    # Persistence.

    def _store_received(self, seq: int) -> None:
        """Called by the client before it acknowledges messages up to ``seq``.

        Raising here (disk full) makes the client hold back the ack, so the
        server replays the messages on the next connection.
        """
        try:
            self.settings.update_runtime(
                inbox=[_to_stored(m) for m in self.state.inbox], acked_seq=seq
            )
        except OSError as exc:
            self._error("Cannot save messages", f"{exc}. Check free disk space.", "disk")
            raise

    def _restore_server_runtime(self) -> None:
        """Load the current server's inbox, acked seq and unsent messages."""
        try:
            self.settings.switch_runtime(self.client.url)
        except OSError as exc:
            # Switched in memory all the same: never send one server's queue to another.
            log.warning("cannot save runtime state: %s", exc)
            self._error("Cannot save app state", f"{exc}. Check free disk space.", "disk")
        runtime = self.settings.runtime
        self.state.load_inbox(_from_stored(m) for m in runtime.inbox)
        self.client.note_acked(runtime.acked_seq)
        for pending in runtime.pending_messages:
            self.client.send_message(pending.to, pending.text, pending.client_msg_id)

    def _save_inbox(self) -> None:
        self._save_runtime(inbox=[_to_stored(m) for m in self.state.inbox])

    def _save_pending(self) -> None:
        pending = tuple(
            PendingMessage(to=c.to, text=c.text, client_msg_id=c.client_msg_id)
            for c in self.client.pending()
            if isinstance(c, SendMessage)
        )
        if pending != self.settings.runtime.pending_messages:
            self._save_runtime(pending_messages=pending)

    def _save_runtime(self, **changes: Any) -> None:
        try:
            self.settings.update_runtime(**changes)
        except OSError as exc:
            log.warning("cannot save runtime state: %s", exc)
            self._error("Cannot save app state", f"{exc}. Check free disk space.", "disk")

    def _update_settings(self, change: Callable[[], object]) -> bool:
        try:
            change()
        except SettingsError as exc:
            self._error("Invalid setting", str(exc), "invalid_setting")
            return False
        except OSError as exc:
            self._error("Cannot save settings", f"{exc}. Check free disk space.", "disk")
            return False
        return True

    def _error(self, title: str, message: str, code: str) -> None:
        self.errors.emit(UserError(title, message, code))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())


class _DevicesUnavailable(Exception):
    """A devices request cannot be made or was refused; ``error`` is what the page shows."""

    def __init__(self, error: UserError) -> None:
        super().__init__(error.message)
        self.error = error


def _offline_error() -> UserError:
    return UserError(
        "Not connected",
        "Not connected — devices show once Presence is back online.",
        "offline",
    )


def _to_stored(m: InboxMessage) -> StoredMessage:
    return StoredMessage(
        message_id=m.message_id,
        seq=m.seq,
        sender_id=m.sender_id,
        sender_login=m.sender_login,
        text=m.text,
        sent_at=m.sent_at,
        read=m.read,
    )


def _from_stored(m: StoredMessage) -> InboxMessage:
    return InboxMessage(
        message_id=m.message_id,
        seq=m.seq,
        sender_id=m.sender_id,
        sender_login=m.sender_login,
        text=m.text,
        sent_at=m.sent_at,
        read=m.read,
    )
