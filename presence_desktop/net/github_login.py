"""Signing in as a whole: ask the server how, let GitHub say who, let the server say yes.

The server announces its GitHub app (client id, web URL, device flow) in
``hello``, so a signed-out desktop first opens a short probe connection to
read it. Then ``GitHubSignIn`` runs (browser or device code) while a window
shows its progress, and the resulting login message goes to the
``PresenceClient`` as the first frame of its next connection. The session
token in the answer is stored by the client (in the keychain); this module
never sees it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException
from websockets.typing import Subprotocol

from presence_desktop.core.api import UserError
from presence_desktop.core.events import Signal
from presence_protocol import (
    AuthOk,
    ErrorCode,
    GitHubConfig,
    Hello,
    ProtocolError,
    decode_server,
    limits,
)

from ..core.addresses import is_loopback_url
from .client import WIRE_LOG, LoginRefused, PresenceClient
from .oauth import GitHubSignIn, SignInError

log = logging.getLogger(__name__)

PROBE_TIMEOUT: Final = 10.0
SERVER_ANSWER_TIMEOUT: Final = 60.0
"""How long the server may take to check a login with GitHub before we give up."""

SignInFactory = Callable[[GitHubConfig, UserError | None], GitHubSignIn]


def _unreachable(url: str) -> SignInError:
    return SignInError(
        UserError(
            "Cannot reach the server",
            f"Presence could not reach {url} to start signing in. Check the server address "
            "in Settings and your network, then try again.",
            "server_unreachable",
        )
    )


async def fetch_hello(url: str) -> Hello:
    """The server's ``hello``, read from a connection that is closed right after."""
    timeout = PROBE_TIMEOUT
    try:
        async with (
            asyncio.timeout(timeout),
            connect(
                url,
                subprotocols=[Subprotocol(limits.SUBPROTOCOL)],
                compression=None,
                max_size=limits.MAX_SERVER_FRAME_BYTES,
                open_timeout=timeout,
                close_timeout=1.0,
                proxy=None if is_loopback_url(url) else True,
                logger=WIRE_LOG,
            ) as ws,
        ):
            frame = await ws.recv()
    except InvalidURI:
        raise SignInError(
            UserError(
                "Invalid server address",
                f"{url!r} is not a server address. Check it in Settings.",
                "invalid_url",
            )
        ) from None
    except (OSError, TimeoutError, InvalidHandshake, WebSocketException) as exc:
        log.info("probing %s failed: %s", url, type(exc).__name__)
        raise _unreachable(url) from None
    try:
        hello = decode_server(frame)
    except ProtocolError:
        hello = None
    if not isinstance(hello, Hello):
        raise SignInError(
            UserError(
                "Not a presence server",
                f"{url} did not answer like a presence server. Check the address in Settings.",
                "not_presence_server",
            )
        )
    return hello


_REFUSED_TITLES: dict[str, str] = {
    ErrorCode.BAD_CODE: "GitHub did not accept the sign-in",
    ErrorCode.EXPIRED_CODE: "The sign-in expired",
    ErrorCode.ACCESS_DENIED: "Access was declined on GitHub",
    ErrorCode.UPSTREAM_UNAVAILABLE: "GitHub cannot be reached right now",
    ErrorCode.LOGIN_UNAVAILABLE: "This server does not offer GitHub sign-in",
    ErrorCode.RATE_LIMITED: "Too many sign-in attempts",
}


def explain_refusal(error: UserError) -> UserError:
    """The server's refusal in words for the sign-in window (its message says the rest)."""
    title = _REFUSED_TITLES.get(error.code, error.title)
    return UserError(title, error.message, error.code)


async def sign_in_with_github(
    client: PresenceClient,
    started: Signal[GitHubSignIn],
    make_sign_in: SignInFactory,
    *,
    device: str,
    reason: UserError | None = None,
) -> AuthOk | None:
    """One whole sign-in; returns ``auth_ok``, or None when it failed or was cancelled.

    Failures before the window exists (server unreachable, no GitHub sign-in
    there) raise ``SignInError``; later ones are shown in the window.
    """
    hello = await fetch_hello(client.url)
    if hello.github is None:
        raise SignInError(
            UserError(
                "This server does not offer GitHub sign-in",
                "Its operator has not configured a GitHub app for it. Choose another server "
                "in Settings, or ask the operator.",
                "login_unavailable",
            )
        )
    sign_in = make_sign_in(hello.github, reason)
    started.emit(sign_in)
    try:
        login = await sign_in.run(device=device)
    except SignInError:
        return None  # the window shows why (or that it was cancelled)
    answer = client.login_with(login)
    cancelled: asyncio.Future[None] = asyncio.ensure_future(sign_in.cancelled())
    waiting: set[asyncio.Future[Any]] = {answer, cancelled}
    try:
        done, _ = await asyncio.wait(
            waiting,
            timeout=SERVER_ANSWER_TIMEOUT,
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        cancelled.cancel()
    if answer not in done:
        client.withdraw_login()
        answer.cancel()
        if cancelled not in done:
            sign_in.finished(
                UserError(
                    "The server did not answer",
                    "Signing in took too long. Check your connection and try again.",
                    "timeout",
                )
            )
        return None
    try:
        reply = answer.result()
    except LoginRefused as exc:
        sign_in.finished(explain_refusal(exc.error))
        return None
    except asyncio.CancelledError:
        return None
    sign_in.finished()
    return reply
