"""Ask a server how one signs in to it, before signing in (the first-run flow).

Every connection starts with the server's ``hello``, which lists the login
methods it accepts (GitHub, and a development login on servers started with
``--dev-login``). The first-run page opens one connection, reads that frame
and closes again, so it can offer exactly the buttons that will work instead
of a "Sign in with GitHub" that fails on a server without GitHub.
"""

from __future__ import annotations

import asyncio
import dataclasses

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException
from websockets.typing import Subprotocol

from presence_desktop import __version__
from presence_desktop.core.addresses import is_loopback_url
from presence_protocol import Hello, LoginMethod, ProtocolError, decode_server, limits

PROBE_TIMEOUT = 10.0
"""Seconds for the whole probe: connect, TLS, upgrade and the hello frame."""


@dataclasses.dataclass(frozen=True, slots=True)
class ServerOffer:
    """What a server offers a new user."""

    url: str
    github: bool
    """GitHub sign-in works (the method is offered and the server has an OAuth app)."""
    dev_login: bool
    """A development login is offered *and* usable: only on a loopback address, where
    nobody else can sign in as anybody (docs/deployment.md)."""
    server: str = ""
    """The server's own name/version from hello, for the page."""

    @property
    def usable(self) -> bool:
        return self.github or self.dev_login


class ProbeError(Exception):
    """The server could not be asked; the message says why in plain words."""


def offer_from_hello(url: str, hello: Hello) -> ServerOffer:
    methods = set(hello.login_methods)
    return ServerOffer(
        url=url,
        github=LoginMethod.GITHUB_CODE in methods and hello.github is not None,
        dev_login=LoginMethod.DEV in methods and is_loopback_url(url),
        server=hello.server,
    )


async def probe_server(url: str, within: float = PROBE_TIMEOUT) -> ServerOffer:
    """Connect, read ``hello``, close; raise ``ProbeError`` with a reason a person can act on."""
    try:
        async with asyncio.timeout(within):
            async with connect(
                url,
                subprotocols=[Subprotocol(limits.SUBPROTOCOL)],
                compression=None,
                max_size=limits.MAX_SERVER_FRAME_BYTES,
                proxy=None if is_loopback_url(url) else True,
                user_agent_header=f"presence-desktop/{__version__}",
                close_timeout=1.0,
            ) as ws:
                frame = await ws.recv()
    except TimeoutError:
        raise ProbeError(f"{url} did not answer within {within:.0f} s.") from None
    except InvalidURI as exc:
        raise ProbeError(f"Not a server address: {exc}") from None
    except InvalidHandshake as exc:
        raise ProbeError(f"{url} is not a presence server ({exc}).") from None
    except (OSError, WebSocketException) as exc:
        raise ProbeError(f"Can't reach {url}: {exc}") from None
    try:
        hello = decode_server(frame, max_bytes=limits.MAX_SERVER_FRAME_BYTES)
    except (ProtocolError, ValueError) as exc:
        raise ProbeError(f"{url} sent something that is not a presence hello ({exc}).") from None
    if not isinstance(hello, Hello):
        raise ProbeError(f"{url} did not start with a hello; is it a presence server?")
    return offer_from_hello(url, hello)
