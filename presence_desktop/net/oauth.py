"""GitHub sign-in on the desktop: browser loopback with PKCE, device flow as fallback.

The result is the first message for the server (``login_github_code`` or
``login_github_token``); the server holds the client secret and does the
exchange. Nothing here stores anything: the session token the server answers
with is the controller's to put in the keychain.

Browser flow (RFC 8252): a one-shot HTTP listener on 127.0.0.1 (or [::1])
port 0 receives GitHub's redirect at ``/callback``. ``state`` is random and
compared in constant time; a PKCE S256 challenge binds the code to this
process, so a code intercepted by another local program is useless without
the verifier that never leaves memory. No scope is requested: the public
profile (id, login, name, avatar) and the public follow list are readable
with an unscoped token, and ``read:user`` would add private profile data we
do not need.

Device flow (RFC 8628): for machines where no listener can be bound or no
browser runs here. It polls at GitHub's interval and adds five seconds
whenever GitHub says ``slow_down``.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import enum
import hashlib
import hmac
import html
import logging
import secrets
import time
import urllib.parse
import webbrowser
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Final

import msgspec

from presence_desktop.core.api import UserError
from presence_desktop.core.events import Signal
from presence_protocol import GitHubConfig, LoginGitHubCode, LoginGitHubToken

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

SIGN_IN_TIMEOUT: Final = 300.0
"""How long the browser flow waits for GitHub's redirect."""
SCOPE: Final = ""
"""No scope: an unscoped token reads the public profile and follows, all we need."""
CALLBACK_PATH: Final = "/callback"
REQUEST_READ_TIMEOUT: Final = 10.0
MAX_REQUEST_HEAD: Final = 16 * 1024
DEVICE_GRANT: Final = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_STEP: Final = 5
MAX_POLL_FAILURES: Final = 3

Opener = Callable[[str], bool]
Sleep = Callable[[float], Awaitable[None]]


# ---------------------------------------------------------------- errors and status


class SignInError(Exception):
    """Sign-in did not finish; ``error`` is what to show."""

    def __init__(self, error: UserError) -> None:
        super().__init__(error.message)
        self.error = error


class SignInCancelled(SignInError):
    def __init__(self) -> None:
        super().__init__(UserError("Sign-in cancelled", "", "cancelled"))


def _error(code: str, title: str, message: str) -> SignInError:
    return SignInError(UserError(title, message, code))


def timed_out() -> SignInError:
    return _error(
        "timeout",
        "Sign-in timed out",
        "GitHub did not send you back within five minutes. Try again; if the browser "
        "did not open, use “Copy the link” and open it yourself.",
    )


def access_denied() -> SignInError:
    return _error(
        "access_denied",
        "Access was declined on GitHub",
        "Presence needs your permission on GitHub to know who you are. Sign in again "
        "and choose Authorize.",
    )


class Phase(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    """The link is ready but the browser was not opened yet (``error`` says why we
    ask: the session ended). Opening waits for the person to click."""
    WAITING_FOR_BROWSER = "waiting_for_browser"
    """The authorize page should be open; ``url`` can be copied."""
    BROWSER_NOT_OPENED = "browser_not_opened"
    """No browser could be started: the user must open ``url`` themselves."""
    DEVICE_CODE = "device_code"
    """Show ``user_code`` and ``verification_uri``."""
    FINISHING = "finishing"
    """GitHub answered; the server is checking."""
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclasses.dataclass(frozen=True, slots=True)
class SignInStatus:
    phase: Phase
    url: str = ""
    user_code: str = ""
    verification_uri: str = ""
    error: UserError | None = None
    device_flow_available: bool = False


# ---------------------------------------------------------------- PKCE and the URL


@dataclasses.dataclass(frozen=True, slots=True)
class Pkce:
    verifier: str = dataclasses.field(repr=False)
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        # 64 random bytes → 86 unreserved characters, inside RFC 7636's 43..128.
        verifier = secrets.token_urlsafe(64)
        return cls(verifier, s256(verifier))


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(
    web_url: str, client_id: str, redirect_uri: str, state: str, challenge: str
) -> str:
    query = urllib.parse.urlencode(
        {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": SCOPE,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "allow_signup": "true",
        }
    )
    return f"{web_url.rstrip('/')}/login/oauth/authorize?{query}"


# ---------------------------------------------------------------- the loopback listener


@dataclasses.dataclass(frozen=True, slots=True)
class Callback:
    code: str = dataclasses.field(repr=False)


_PAGE_STYLE = (
    "body{font:16px system-ui,sans-serif;margin:15vh auto;max-width:32em;color:#222}"
    "h1{font-size:1.4em}"
)


def _page(title: str, message: str) -> bytes:
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{html.escape(title)} — Presence</title><style>{_PAGE_STYLE}</style>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></html>"
    ).encode()


SIGNED_IN_PAGE: Final = _page("Signed in", "You are signed in to Presence. You can close this tab.")


class LoopbackListener:
    """A one-shot HTTP server that waits for GitHub's redirect to ``/callback``.

    Only ``GET /callback`` with the right ``state`` ends the wait; other paths
    get 404 and other methods 405, and a wrong ``state`` (a stale tab, or
    someone else's page) gets an error page without disturbing the wait.
    """

    def __init__(self, state: str) -> None:
        self._state = state.encode()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.result: asyncio.Future[Callback] = asyncio.get_running_loop().create_future()
        self.redirect_uri = ""

    async def start(self, hosts: tuple[str, ...] = ("127.0.0.1", "::1"), port: int = 0) -> str:
        """Bind to the first host that works; returns the redirect URI.

        ``port`` stays 0 (any free port, which GitHub allows for loopback
        redirects) except in tests that need a busy one.
        """
        failures: list[str] = []
        for host in hosts:
            try:
                self._server = await asyncio.start_server(
                    self._handle, host, port, limit=MAX_REQUEST_HEAD
                )
            except OSError as exc:
                failures.append(f"{host}: {exc.strerror or exc}")
                continue
            port = self._server.sockets[0].getsockname()[1]
            shown = f"[{host}]" if ":" in host else host
            self.redirect_uri = f"http://{shown}:{port}{CALLBACK_PATH}"
            return self.redirect_uri
        raise _error(
            "listener_failed",
            "Cannot receive the answer from GitHub",
            "Presence could not open a local port for the browser to return to ("
            + "; ".join(failures)
            + "). Sign in with a code instead, or check firewall or sandbox settings.",
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None
        if not self.result.done():
            self.result.cancel()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            status, body, extra = await self._respond(reader)
            head = [
                f"HTTP/1.1 {status}",
                "Content-Type: text/html; charset=utf-8",
                f"Content-Length: {len(body)}",
                "Connection: close",
                "Cache-Control: no-store",
                "Referrer-Policy: no-referrer",
                "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'",
                "X-Content-Type-Options: nosniff",
                *extra,
            ]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[str, bytes, list[str]]:
        try:
            raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_READ_TIMEOUT)
        except asyncio.LimitOverrunError:
            return "431 Request Header Fields Too Large", _page("Request too large", ""), []
        parts = raw.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return "400 Bad Request", _page("Bad request", ""), []
        method, target = parts[0], parts[1]
        url = urllib.parse.urlsplit(target)
        if url.path != CALLBACK_PATH:
            return "404 Not Found", _page("Not found", "Nothing here."), []
        if method != "GET":
            return "405 Method Not Allowed", _page("Method not allowed", ""), ["Allow: GET"]
        return self._callback(urllib.parse.parse_qs(url.query, keep_blank_values=True))

    def _callback(self, query: dict[str, list[str]]) -> tuple[str, bytes, list[str]]:
        def one(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values and len(values) == 1 else None

        state = one("state")
        if state is None or not hmac.compare_digest(state.encode(), self._state):
            log.warning("sign-in callback with a wrong or missing state ignored")
            return (
                "400 Bad Request",
                _page(
                    "This link is not from your current sign-in",
                    "It may come from an older attempt. Go back to Presence and use the "
                    "newest sign-in window.",
                ),
                [],
            )
        if self.result.done():
            return "409 Conflict", _page("Already finished", "You can close this tab."), []
        error = one("error")
        if error is not None:
            if error == "access_denied":
                failure = access_denied()
            else:
                detail = one("error_description") or error
                failure = _error("github_error", "GitHub could not sign you in", detail)
            self.result.set_exception(failure)
            return "200 OK", _page(failure.error.title, failure.error.message), []
        code = one("code")
        if not code:
            return "400 Bad Request", _page("No sign-in code", "GitHub sent no code."), []
        self.result.set_result(Callback(code))
        return "200 OK", SIGNED_IN_PAGE, []


async def open_in_browser(opener: Opener, url: str) -> bool:
    """Run the opener off the loop: some ``webbrowser`` backends wait for the browser."""
    try:
        return bool(await asyncio.to_thread(opener, url))
    except Exception as exc:  # a broken opener means "no browser", not a crash
        log.warning("could not open a browser: %s", type(exc).__name__)
        return False


# ---------------------------------------------------------------- device flow


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceCode:
    device_code: str = dataclasses.field(repr=False)
    user_code: str
    verification_uri: str
    expires_in: float
    interval: float


class _DeviceAnswer(msgspec.Struct, forbid_unknown_fields=False):
    device_code: str = ""
    user_code: str = ""
    verification_uri: str = ""
    expires_in: float = 900
    interval: float = 5
    error: str | None = None


class _TokenAnswer(msgspec.Struct, forbid_unknown_fields=False):
    access_token: str | None = None
    error: str | None = None
    error_description: str | None = None
    interval: float | None = None


def _unreachable() -> SignInError:
    return _error(
        "upstream_unavailable",
        "GitHub cannot be reached",
        "Check your internet connection and try again in a minute.",
    )


class DeviceFlow:
    """RFC 8628 against GitHub: request a user code, then poll for the token."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        web_url: str,
        client_id: str,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._web = web_url.rstrip("/")
        self._client_id = client_id
        self._sleep = sleep
        self._clock = clock
        self.intervals: list[float] = []
        """Every wait before a poll, in seconds (what slow_down did is visible here)."""

    async def _post(self, path: str, data: dict[str, str]) -> bytes:
        try:
            response = await self._http.post(
                self._web + path, data=data, headers={"Accept": "application/json"}
            )
        except Exception as exc:
            import httpx  # loaded already: self._http is an httpx client

            if isinstance(exc, httpx.HTTPError):
                raise _unreachable() from None
            raise
        if response.status_code >= 500 or response.status_code == 429:
            raise _unreachable()
        return response.content

    async def request_code(self) -> DeviceCode:
        body = await self._post(
            "/login/device/code", {"client_id": self._client_id, "scope": SCOPE}
        )
        try:
            answer = msgspec.json.decode(body, type=_DeviceAnswer)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise _unreachable() from None
        if answer.error == "device_flow_disabled":
            raise _error(
                "device_flow_disabled",
                "Sign-in with a code is not enabled",
                "This server's GitHub app does not allow the device flow. Sign in with the "
                "browser, or ask the server operator to enable it.",
            )
        if answer.error or not answer.device_code or not answer.user_code:
            raise _error(
                "github_error",
                "GitHub could not start sign-in",
                f"GitHub answered: {answer.error or 'no code'}. Tell the server operator.",
            )
        return DeviceCode(
            answer.device_code,
            answer.user_code,
            answer.verification_uri,
            answer.expires_in,
            max(answer.interval, 1.0),
        )

    async def poll(self, code: DeviceCode) -> str:
        """Wait until the person approves; returns the GitHub token."""
        deadline = self._clock() + code.expires_in
        interval = code.interval
        failures = 0
        while True:
            if self._clock() + interval > deadline:
                raise self._expired()
            self.intervals.append(interval)
            await self._sleep(interval)
            try:
                body = await self._post(
                    "/login/oauth/access_token",
                    {
                        "client_id": self._client_id,
                        "device_code": code.device_code,
                        "grant_type": DEVICE_GRANT,
                    },
                )
                answer = msgspec.json.decode(body, type=_TokenAnswer)
            except (SignInError, msgspec.DecodeError, msgspec.ValidationError):
                failures += 1
                if failures >= MAX_POLL_FAILURES:
                    raise _unreachable() from None
                continue
            failures = 0
            if answer.access_token:
                return answer.access_token
            if answer.error == "authorization_pending":
                continue
            if answer.error == "slow_down":
                interval = max(interval + SLOW_DOWN_STEP, answer.interval or 0)
                log.info("GitHub asked to poll slower: every %.0f s", interval)
                continue
            if answer.error == "expired_token":
                raise self._expired()
            if answer.error == "access_denied":
                raise access_denied()
            raise _error(
                "github_error",
                "GitHub could not sign you in",
                f"GitHub answered: {answer.error or 'no token'}. Try again, or tell the "
                "server operator.",
            )

    @staticmethod
    def _expired() -> SignInError:
        return _error(
            "expired_code",
            "The code expired",
            "The sign-in code was not entered in time. Start sign-in again for a new code.",
        )


# ---------------------------------------------------------------- the whole sign-in


class GitHubSignIn:
    """One sign-in attempt, observable by a window through ``status``.

    ``run`` returns the login message to send as the first frame of a new
    connection. The window calls ``open_browser_again``, ``use_device_flow``
    and ``cancel``; the controller reports the server's verdict with
    ``finished``.
    """

    def __init__(
        self,
        config: GitHubConfig,
        *,
        opener: Opener = webbrowser.open,
        http: httpx.AsyncClient | None = None,
        timeout: float = SIGN_IN_TIMEOUT,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        listen_hosts: tuple[str, ...] = ("127.0.0.1", "::1"),
        listen_port: int = 0,
        open_browser: bool = True,
        reason: UserError | None = None,
    ) -> None:
        self.config = config
        self.status = Signal[SignInStatus]()
        self.current = SignInStatus(Phase.STARTING, device_flow_available=config.device_flow)
        self._opener = opener
        self._http = http
        self._timeout = timeout
        self._sleep = sleep
        self._clock = clock
        self._hosts = listen_hosts
        self._port = listen_port
        self._auto_open = open_browser
        self.reason = reason
        """Why sign-in is needed again (a revoked session), shown until the browser opens."""
        self._cancel_event = asyncio.Event()
        self._phase_task: asyncio.Task[LoginGitHubCode | LoginGitHubToken] | None = None
        self._want_device = False
        self._cancelled = False
        self._url = ""
        self._background: set[asyncio.Task[None]] = set()
        self.device_flow: DeviceFlow | None = None

    # ------------------------------------------------------------ window actions

    def open_browser_again(self) -> None:
        if self._url and self.current.phase in _OPENABLE:
            self._spawn(self._open_browser())

    def _spawn(self, coro: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def use_device_flow(self) -> None:
        if self.config.device_flow and self.current.phase in _OPENABLE:
            self._want_device = True
            if self._phase_task is not None:
                self._phase_task.cancel()

    def cancel(self) -> None:
        if self.current.phase in (Phase.DONE, Phase.FAILED, Phase.CANCELLED):
            return
        self._cancelled = True
        self._cancel_event.set()
        if self._phase_task is not None:
            self._phase_task.cancel()
        elif self.current.phase is Phase.FINISHING:
            # GitHub is done; whoever awaits the server's answer sees ``cancelled``.
            self._emit(Phase.CANCELLED)

    async def cancelled(self) -> None:
        """Returns when the person cancels (also after ``run`` has returned)."""
        await self._cancel_event.wait()

    def finished(self, error: UserError | None = None) -> None:
        """The server accepted (or refused) the login: close or explain."""
        if error is None:
            self._emit(Phase.DONE)
        else:
            self._emit(Phase.FAILED, error=error)

    # ------------------------------------------------------------ the flow

    async def run(self, device: str = "") -> LoginGitHubCode | LoginGitHubToken:
        try:
            try:
                return await self._phase(self._browser(device))
            except _Switch:
                log.info("switching to sign-in with a code, as asked")
            except SignInError as exc:
                if exc.error.code != "listener_failed" or not self.config.device_flow:
                    raise
                log.warning("loopback listener unavailable; falling back to the device flow")
            return await self._phase(self._device(device))
        except SignInCancelled:
            self._emit(Phase.CANCELLED)
            raise
        except SignInError as exc:
            self._emit(Phase.FAILED, error=exc.error)
            raise

    async def _phase(
        self, coro: Awaitable[LoginGitHubCode | LoginGitHubToken]
    ) -> LoginGitHubCode | LoginGitHubToken:
        """Run one phase so the window can interrupt it (cancel, or switch to a code)."""
        if self._cancelled:
            raise SignInCancelled()
        task = asyncio.ensure_future(coro)
        self._phase_task = task
        try:
            return await task
        except asyncio.CancelledError:
            if not task.cancelled() or not (self._cancelled or self._want_device):
                raise  # we ourselves are being cancelled
            if self._cancelled:
                raise SignInCancelled() from None
            raise _Switch() from None
        finally:
            self._phase_task = None

    async def _browser(self, device: str) -> LoginGitHubCode:
        pkce = Pkce.new()
        state = secrets.token_urlsafe(32)
        listener = LoopbackListener(state)
        redirect_uri = await listener.start(self._hosts, self._port)
        try:
            self._url = authorize_url(
                self.config.web_url, self.config.client_id, redirect_uri, state, pkce.challenge
            )
            if self._auto_open:
                self._emit(Phase.WAITING_FOR_BROWSER, url=self._url)
                # Not awaited: some browser commands only return when the browser exits.
                self._spawn(self._open_browser())
            else:
                self._emit(Phase.READY, url=self._url, error=self.reason)
            try:
                callback = await asyncio.wait_for(asyncio.shield(listener.result), self._timeout)
            except TimeoutError:
                raise timed_out() from None
            self._emit(Phase.FINISHING)
            return LoginGitHubCode(
                code=callback.code,
                code_verifier=pkce.verifier,
                redirect_uri=redirect_uri,
                device=device,
            )
        finally:
            await listener.close()

    async def _open_browser(self) -> None:
        opened = await open_in_browser(self._opener, self._url)
        phase = Phase.WAITING_FOR_BROWSER if opened else Phase.BROWSER_NOT_OPENED
        if self.current.phase in _OPENABLE and self.current.phase is not phase:
            self._emit(phase, url=self._url)

    async def _device(self, device: str) -> LoginGitHubToken:
        import httpx  # only when signing in (issue 18: not at start)

        http = self._http or httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0))
        try:
            flow = DeviceFlow(
                http,
                self.config.web_url,
                self.config.client_id,
                sleep=self._sleep,
                clock=self._clock,
            )
            self.device_flow = flow
            code = await flow.request_code()
            self._emit(
                Phase.DEVICE_CODE, user_code=code.user_code, verification_uri=code.verification_uri
            )
            token = await flow.poll(code)
            self._emit(Phase.FINISHING)
            return LoginGitHubToken(access_token=token, device=device)
        finally:
            if self._http is None:
                await http.aclose()

    def _emit(
        self,
        phase: Phase,
        *,
        url: str = "",
        user_code: str = "",
        verification_uri: str = "",
        error: UserError | None = None,
    ) -> None:
        self.current = SignInStatus(
            phase,
            url=url,
            user_code=user_code,
            verification_uri=verification_uri,
            error=error,
            device_flow_available=self.config.device_flow,
        )
        self.status.emit(self.current)


_OPENABLE = frozenset({Phase.READY, Phase.WAITING_FOR_BROWSER, Phase.BROWSER_NOT_OPENED})


class _Switch(SignInError):
    """The person chose the device flow while the browser flow was waiting."""

    def __init__(self) -> None:
        super().__init__(UserError("", "", "switch"))
