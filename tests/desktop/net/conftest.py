from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.support.servers import ServerHandle

from .helpers import Peer


@pytest.fixture
def server(server_handle: ServerHandle) -> ServerHandle:
    """The test's restartable server (``tests/support/servers.py``)."""
    return server_handle


@pytest.fixture
async def make_peer(server: ServerHandle) -> AsyncIterator[Callable[..., Peer]]:
    peers: list[Peer] = []

    def make(login: str | None, **kwargs: Any) -> Peer:
        peer = Peer(kwargs.pop("url", server.url), login, **kwargs)
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        await peer.client.stop()
