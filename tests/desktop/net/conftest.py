from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from .helpers import Peer, ServerHandle


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerHandle]:
    handle = ServerHandle(tmp_path)
    await handle.start()
    yield handle
    await handle.stop()


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
