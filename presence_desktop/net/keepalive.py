"""A keepalive that pings only a quiet server.

The client must notice a dead or frozen server within 15 s (issue 18):
``ping_interval`` (10 s) of silence, then ``ping_timeout`` (5 s) for the
pong. websockets' own keepalive pings every ``ping_interval`` whatever
else arrived, so on an idle connection the server's 30 s pings came on top
of the client's: 8 ping round trips a minute, 1,584 bytes on the wire. Here
anything received — a frame, the server's own ping, a pong — proves the
server alive, and the client pings only after ``ping_interval`` without a
byte from it: the server's pings replace one client ping in three (6 round
trips a minute). The ping has an empty payload (a ping and its pong are 8
bytes instead of 16). The bound is unchanged: a ping goes out at most
``ping_interval`` after the server last showed life, and a connection that
then hears nothing for ``ping_timeout`` fails exactly like websockets'
keepalive (close code 1011, "keepalive ping timeout"), so the client's
reconnect path is the same.
"""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import ClientConnection
from websockets.frames import CloseCode


class QuietPingConnection(ClientConnection):
    """A client connection that keeps ``last_heard`` and pings only after silence."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.last_heard = self.loop.time()
        """Event-loop time at which the last bytes arrived from the server."""
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.last_heard = self.loop.time()
        super().data_received(data)

    async def keepalive(self) -> None:
        """Ping after ``ping_interval`` of silence; fail if nothing at all answers in time."""
        assert self.ping_interval is not None
        try:
            while True:
                quiet = self.loop.time() - self.last_heard
                if quiet < self.ping_interval:
                    await asyncio.sleep(self.ping_interval - quiet)
                    continue
                pong = await self.ping(b"")
                if self.ping_timeout is None:
                    await pong
                    continue
                sent = self.loop.time()
                while True:
                    try:
                        async with asyncio.timeout(self.ping_timeout):
                            await asyncio.shield(pong)
                        break
                    except TimeoutError:
                        if self.last_heard > sent:
                            # Bytes are arriving (a large frame on a slow link, the
                            # pong behind it): the server is alive; keep waiting.
                            sent = self.loop.time()
                            continue
                        async with self.send_context():
                            self.protocol.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
                        raise AssertionError(
                            "send_context() waits for connection_lost(), which cancels keepalive()"
                        ) from None
        except Exception:
            self.logger.error("keepalive ping failed", exc_info=True)
