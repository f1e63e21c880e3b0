"""A TCP proxy between clients and the server that delays, stalls and cuts.

Each accepted connection is two pumps (client to server, server to client)
made of asyncio streams. Every chunk waits ``delay`` seconds (plus jitter)
before it is forwarded, in order; ``stall`` holds all traffic for a while
without closing anything (a network that hangs); ``cut`` ends connections
the hard way, either at the client's end first (an abortive RST to the
client, as when a laptop loses Wi-Fi) or at the server's end first (the
server sees the connection vanish while the client still waits).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from typing import Literal

Side = Literal["client", "server"]


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with RST instead of FIN: the peer sees 'connection reset'."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Link:
    def __init__(
        self,
        proxy: ChaosProxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        server: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.proxy = proxy
        self.client = client
        self.server = server
        for reader, writer in ((client[0], server[1]), (server[0], client[1])):
            task = asyncio.ensure_future(self._pump(reader, writer))
            proxy.tasks.add(task)
            task.add_done_callback(proxy.tasks.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await self.proxy.gate.wait()
                delay = self.proxy.delay + self.proxy.rng.uniform(0, self.proxy.jitter)
                if delay > 0:
                    await asyncio.sleep(delay)
                await self.proxy.gate.wait()
                writer.write(data)
                await writer.drain()
                self.proxy.bytes += len(data)
        except (ConnectionError, OSError):
            pass
        finally:
            self.cut("client")

    def cut(self, first: Side) -> None:
        ends = [self.client[1], self.server[1]]
        if first == "server":
            ends.reverse()
        for writer in ends:
            _abort(writer)
        self.proxy.links.discard(self)


class ChaosProxy:
    """``target_ports``: one server, or several instances behind it like a load
    balancer (each new connection goes to the next instance that answers)."""

    def __init__(self, target_ports: int | list[int], seed: int = 0) -> None:
        self.targets = [target_ports] if isinstance(target_ports, int) else list(target_ports)
        self.rng = random.Random(seed)
        self._next = 0
        self.delay = 0.0
        self.jitter = 0.0
        self.gate = asyncio.Event()
        self.gate.set()
        self.links: set[_Link] = set()
        self.tasks: set[asyncio.Future[None]] = set()
        self.port = 0
        self.cuts = 0
        self.bytes = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.gate.set()
        if self._server is not None:
            self._server.close()
        self.cut_all("server")
        await asyncio.gather(*list(self.tasks), return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(len(self.targets)):
            port = self.targets[self._next % len(self.targets)]
            self._next += 1
            try:
                upstream = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue  # that instance is down: try the next one
            self.links.add(_Link(self, (reader, writer), upstream))
            return
        _abort(writer)  # every instance is down: the client sees a reset connection

    def cut_all(self, first: Side) -> int:
        links = list(self.links)
        for link in links:
            link.cut(first)
        self.cuts += len(links)
        return len(links)

    def cut_one(self, first: Side) -> bool:
        if not self.links:
            return False
        self.rng.choice(sorted(self.links, key=id)).cut(first)
        self.cuts += 1
        return True

    async def stall(self, seconds: float) -> None:
        """Hold every byte in both directions for a while, then let them flow in order."""
        self.gate.clear()
        try:
            await asyncio.sleep(seconds)
        finally:
            self.gate.set()
