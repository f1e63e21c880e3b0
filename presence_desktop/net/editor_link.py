"""The desktop's half of the two-way editor bridge (version 2, docs/bridge.md).

Out: my friends (a full ``friends`` line when a client joins or after a new
snapshot, then ``friend`` / ``friend_removed`` deltas), and a ``state`` line
(signed in, my status, counts, unread, whether "Use VS Code's GitHub account"
works). In: commands, which become the same calls the tray makes, and the
GitHub session an editor hands over for one sign-in.

No widgets and no decisions about what to show: rows come from
``core.editor_view``; commands go to ``AppActions``; the only policy here is
who may ask for what (signed in or not, friends only) and that a GitHub token
is used once and never kept, logged or repeated.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from presence_protocol import LoginGitHubEditor, Status

from ..core import editor_view
from ..core.api import ConnectionEvents, ConnectionInfo, Link, UserError
from ..core.events import Signal
from ..core.state import PresenceState
from .bridge import EditorBridge
from .bridge_protocol import (
    Command,
    ErrorCode,
    GitHubSessionLine,
    OpenPopupLine,
    SendMessageLine,
    SetStatusLine,
    SignInLine,
)
from .client import LoginRefused, PresenceClient

log = logging.getLogger(__name__)

EDITOR_ANSWER_TIMEOUT = 300.0
"""How long a ``sign_in_request`` waits for the person to decide in the editor."""

PROBE_AGAIN_AFTER = 600.0
"""Seconds before a server's answer (or failure to answer) about editor sessions
is asked again; until then the last answer stands."""


class Actions(Protocol):
    """The part of ``AppActions`` editors may use."""

    def set_status(self, status: Status, until: int | None) -> None: ...
    def send_message(self, user_id: int, text: str) -> None: ...
    def sign_in(self) -> None: ...


async def server_accepts_editor_sessions(url: str) -> bool:
    """Whether the server's ``hello`` offers ``login_github_editor``."""
    from .github_login import fetch_hello  # with the first editor: not needed at start

    hello = await fetch_hello(url)
    return hello.github is not None and hello.github.editor_tokens


class EditorLink:
    """Keeps version-2 editor clients in step with the desktop, and serves their commands."""

    def __init__(
        self,
        bridge: EditorBridge,
        state: PresenceState,
        connection: ConnectionEvents,
        actions: Actions,
        client: Callable[[], PresenceClient],
        *,
        device: str = "",
        errors: Signal[UserError] | None = None,
        accepts_editor: Callable[[str], Awaitable[bool]] = server_accepts_editor_sessions,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bridge = bridge
        self._state = state
        self._connection = connection
        self._actions = actions
        self._client = client
        self._device = device
        self.errors = errors if errors is not None else Signal[UserError]()
        """Sign-in failures the tray shows (the editor gets ``sign_in_result`` too)."""
        self._accepts_editor = accepts_editor
        self._clock = clock
        self.open_popup: Callable[[], None] | None = None
        """Set by the ui: shows the friends popup (``open_popup`` command)."""
        self.offer_changed = Signal[bool]()
        """Whether "Use VS Code's GitHub account" can be offered now."""
        self.sign_in_finished = Signal[bool]()
        """An editor sign-in ended (True: signed in)."""

        self._rows: dict[int, editor_view.Row] = {}
        self._dirty: set[int] = set()
        self._full = True
        self._rows_signed_in = False
        """Whether ``_rows`` were computed signed in (a sign-out empties the list)."""
        self._state_sent: editor_view.Line | None = None
        self._scheduled = False
        self._accepting: dict[str, bool] = {}
        """Per server URL: does it accept editor sessions (its last answer)."""
        self._probed_at: dict[str, float] = {}
        """Per server URL: when it was last asked (``time.monotonic``), answer or not."""
        self._probing: set[str] = set()
        self._pending: str | None = None
        """The id of the ``sign_in_request`` awaiting the editor's answer."""
        self._pending_handle: asyncio.TimerHandle | None = None
        self._signing_in: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._offered = False

        state.reset.connect(lambda _none: self._mark_all())
        state.friend_changed.connect(self._mark)
        state.friend_added.connect(self._mark)
        state.friend_removed.connect(self._mark)
        state.inbox_changed.connect(lambda _none: self._schedule())
        state.my_status_changed.connect(lambda _status: self._schedule())
        connection.changed.connect(self._on_connection)
        bridge.joined.connect(self._joined)
        bridge.connections_changed.connect(lambda _n: self._check_offer())
        bridge.commands.connect(self._command)

    # ---------------------------------------------------------- sign-in offer

    @property
    def can_offer_editor_sign_in(self) -> bool:
        """Signed out, a version-2 editor is connected, and the server accepts its session."""
        return (
            self._connection.current.link is Link.SIGNED_OUT
            and bool(self._bridge.two_way_keys)
            and self._accepting.get(self._url(), False)
        )

    @property
    def waiting_for_editor(self) -> bool:
        return self._pending is not None or (
            self._signing_in is not None and not self._signing_in.done()
        )

    def request_editor_sign_in(self) -> bool:
        """The person chose "Use VS Code's GitHub account" in the tray.

        Asks the most recently active editor for its GitHub session; VS Code
        then asks the person (that is the only moment the extension touches
        GitHub authentication). False when no editor can be asked.
        """
        keys = self._bridge.two_way_keys
        if not keys or self._connection.current.link is not Link.SIGNED_OUT:
            return False
        self._pending = secrets.token_hex(8)
        self._bridge.send(keys[0], {"type": "sign_in_request", "request": self._pending})
        if self._pending_handle is not None:
            self._pending_handle.cancel()
        self._pending_handle = asyncio.get_running_loop().call_later(
            EDITOR_ANSWER_TIMEOUT, self._forget_request
        )
        self._check_offer()
        return True

    def _forget_request(self) -> None:
        self._pending = None
        self._pending_handle = None
        self._check_offer()

    def _url(self) -> str:
        return self._client().url

    def _check_offer(self) -> None:
        url = self._url()
        wanted = self._connection.current.link is Link.SIGNED_OUT and bool(
            self._bridge.two_way_keys
        )
        last = self._probed_at.get(url)
        due = last is None or time.monotonic() - last >= PROBE_AGAIN_AFTER
        if wanted and url and due and url not in self._probing:
            self._probing.add(url)
            self._probed_at[url] = time.monotonic()
            self._spawn(self._probe(url))
        offered = self.can_offer_editor_sign_in
        if offered != self._offered:
            self._offered = offered
            self.offer_changed.emit(offered)
        self._schedule()

    async def _probe(self, url: str) -> None:
        from .oauth import SignInError

        try:
            self._accepting[url] = await self._accepts_editor(url)
        except SignInError as exc:
            log.info("cannot tell whether %s accepts editor sessions: %s", url, exc.error.code)
        finally:
            self._probing.discard(url)
        self._check_offer()

    # ---------------------------------------------------------- state out

    def _on_connection(self, _info: ConnectionInfo) -> None:
        self._check_offer()

    def _mark(self, user_id: int) -> None:
        self._dirty.add(user_id)
        self._schedule()

    def _mark_all(self) -> None:
        self._full = True
        self._schedule()

    def _schedule(self) -> None:
        if self._scheduled:
            return
        self._scheduled = True
        asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Send what changed since the last flush (coalesced: one pass per loop turn)."""
        self._scheduled = False
        signed_in = self._signed_in()
        friends = self._state.friends if signed_in else {}
        if signed_in != self._rows_signed_in:
            self._full = True
            self._rows_signed_in = signed_in
        if self._full:
            self._full = False
            self._dirty.clear()
            self._rows = editor_view.friend_rows(friends.values())
            self._bridge.broadcast(editor_view.friends_line(self._rows))
        elif self._dirty:
            after = dict(self._rows)
            for uid in self._dirty:
                friend = friends.get(uid)
                if friend is None:
                    after.pop(uid, None)
                else:
                    after[uid] = editor_view.friend_row(friend)
            self._dirty.clear()
            for line in editor_view.deltas(self._rows, after):
                self._bridge.broadcast(line)
            self._rows = after
        line = self._state_line()
        if line != self._state_sent:
            self._state_sent = line
            self._bridge.broadcast(line)

    def _signed_in(self) -> bool:
        return self._connection.current.link is not Link.SIGNED_OUT and self._state.me is not None

    def _state_line(self) -> editor_view.Line:
        line = editor_view.state_line(
            self._state,
            self._connection.current.link,
            editor_sign_in=self._accepting.get(self._url(), False),
        )
        line["waiting_for_editor"] = self.waiting_for_editor
        return line

    def _joined(self, key: int) -> None:
        if self._scheduled or self._full or self._dirty:
            self.flush()
        self._bridge.send(key, editor_view.friends_line(self._rows))
        self._bridge.send(key, self._state_line())
        self._check_offer()

    # ---------------------------------------------------------- commands in

    def _command(self, item: tuple[int, Command]) -> None:
        key, command = item
        if isinstance(command, GitHubSessionLine):
            self._github_session(key, command)
        elif isinstance(command, SignInLine):
            if not self._signed_in():
                self._actions.sign_in()
            self._ok(key, command.id)
        elif isinstance(command, OpenPopupLine):
            if self.open_popup is None:
                self._bridge.refuse(key, ErrorCode.REFUSED, "this desktop has no popup", command.id)
                return
            self.open_popup()
            self._ok(key, command.id)
        elif not self._signed_in():
            self._bridge.refuse(
                key, ErrorCode.NOT_SIGNED_IN, "sign in to Presence first", command.id
            )
        elif isinstance(command, SetStatusLine):
            if command.until is not None and command.until <= self._clock():
                self._bridge.refuse(key, ErrorCode.REFUSED, "that time has passed", command.id)
                return
            self._actions.set_status(command.status, command.until)
            self._ok(key, command.id)
        elif isinstance(command, SendMessageLine):
            if command.to not in self._state.friends:
                self._bridge.refuse(
                    key, ErrorCode.REFUSED, "messages go to friends only", command.id
                )
                return
            self._actions.send_message(command.to, command.text)
            self._ok(key, command.id)

    def _ok(self, key: int, request_id: str) -> None:
        if request_id:
            self._bridge.send(key, {"type": "result", "id": request_id, "ok": True})

    def _github_session(self, key: int, line: GitHubSessionLine) -> None:
        answered = self._pending is not None and line.request == self._pending
        if line.request and not answered:
            self._bridge.refuse(key, ErrorCode.REFUSED, "no sign-in was requested", line.id)
            return
        if answered:
            self._pending = None
            if self._pending_handle is not None:
                self._pending_handle.cancel()
                self._pending_handle = None
        if not line.access_token:
            # Cancelled (or refused) in the editor: nothing changes.
            log.info("editor sign-in not completed in the editor")
            self._check_offer()
            return
        if self._connection.current.link is not Link.SIGNED_OUT:
            self._bridge.refuse(key, ErrorCode.REFUSED, "already signed in", line.id)
            return
        if self.waiting_for_editor:
            self._bridge.refuse(key, ErrorCode.REFUSED, "a sign-in is already running", line.id)
            return
        login = LoginGitHubEditor(
            access_token=line.access_token,
            editor=self._bridge.editor_of(key)[:100],
            device=self._device,
        )
        self._ok(key, line.id)
        self._signing_in = self._spawn(self._sign_in(login))
        self._check_offer()

    async def _sign_in(self, login: LoginGitHubEditor) -> None:
        from .github_login import SERVER_ANSWER_TIMEOUT

        client = self._client()
        answer = client.login_with(login)
        del login  # the client holds the token until it is sent once, then drops it
        try:
            reply = await asyncio.wait_for(answer, SERVER_ANSWER_TIMEOUT)
        except LoginRefused as exc:
            self._finished(_editor_wording(exc.error))
            return
        except TimeoutError:
            client.withdraw_login()
            self._finished(
                UserError(
                    "The server did not answer",
                    "Signing in took too long. Check your connection and try again.",
                    "timeout",
                )
            )
            return
        self._finished(None, login=reply.user.login)

    def _finished(self, error: UserError | None, login: str = "") -> None:
        result: dict[str, Any] = {"type": "sign_in_result", "ok": error is None}
        if error is None:
            result["login"] = login
        else:
            result |= {"code": error.code, "title": error.title, "message": error.message}
            self.errors.emit(error)
        self._bridge.broadcast(result)
        self.sign_in_finished.emit(error is None)
        asyncio.get_running_loop().call_soon(self._check_offer)

    # ---------------------------------------------------------- plumbing

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("editor link task failed", exc_info=task.exception())

    async def aclose(self) -> None:
        if self._pending_handle is not None:
            self._pending_handle.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))


def _editor_wording(error: UserError) -> UserError:
    """A refusal of an editor session, in words about the editor."""
    if error.code == "login_unavailable":
        return UserError(
            "This server does not accept VS Code's GitHub account",
            "Its operator has not allowed signing in with an editor's GitHub session. "
            "Choose Sign in in the tray menu to sign in with the browser instead.",
            error.code,
        )
    from .github_login import explain_refusal

    return explain_refusal(error)
