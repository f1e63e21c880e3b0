"""One process of the reconnect storm: many small presence clients.

``python -m tests.chaos.storm_child URL FIRST COUNT`` keeps COUNT users
(``storm{FIRST}`` …) connected. Each signs in once with a development login,
then resumes with its session token after every drop, waiting between
attempts as long as the desktop's own backoff generator says
(``presence_desktop.core.backoff.backoff_delays``: exponential, full jitter).

It prints JSON lines on stdout for the parent: ``ready`` once every client
is online, ``back`` once every client has come back after a drop (with when
each came back and how many attempts it took), and ``token`` lines so the
parent can record the issued sessions for the secret scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Iterator

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from presence_desktop.core.backoff import backoff_delays
from presence_protocol import (
    Auth,
    AuthOk,
    ClientMessage,
    Hello,
    LoginDev,
    Snapshot,
    decode_server,
    encode_text,
    limits,
)

OPEN_TIMEOUT = 20.0


class Refused(Exception):
    """The server answered the sign-in with something else than ``auth_ok``."""


class StormClient:
    def __init__(self, url: str, login: str, report: Report) -> None:
        self.url = url
        self.login = login
        self.report = report
        self.token: str | None = None
        self.online = False
        self.drops = 0
        self.attempts_since_drop = 0
        self.back_at: float | None = None
        self.delays: Iterator[float] = backoff_delays()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(
                OSError, TimeoutError, InvalidHandshake, ConnectionClosed, Refused
            ):
                await self._session()
            if self.online:
                self.online = False
                self.drops += 1
                self.attempts_since_drop = 0
                self.delays = backoff_delays()  # a fresh start after a working connection
                self.report.changed()
            await asyncio.sleep(next(self.delays))

    async def _session(self) -> None:
        self.attempts_since_drop += 1
        async with connect(
            self.url,
            subprotocols=[Subprotocol(limits.SUBPROTOCOL)],
            max_size=limits.MAX_SERVER_FRAME_BYTES,
            open_timeout=OPEN_TIMEOUT,
            compression=None,
        ) as ws:
            assert isinstance(decode_server(await ws.recv()), Hello)
            login: ClientMessage = (
                Auth(session=self.token) if self.token else LoginDev(login=self.login)
            )
            await ws.send(encode_text(login))
            reply = decode_server(await ws.recv())
            if not isinstance(reply, AuthOk):
                raise Refused(type(reply).__name__)
            if reply.session:
                self.token = reply.session
                print(json.dumps({"token": reply.session}), flush=True)
            while not isinstance(decode_server(await ws.recv()), Snapshot):
                pass
            self.online = True
            self.back_at = time.time()
            self.report.changed()
            async for _frame in ws:
                pass


class Report:
    def __init__(self) -> None:
        self.clients: list[StormClient] = []
        self.ready_sent = False
        self.back_sent = 0

    def changed(self) -> None:
        clients = self.clients
        if not all(c.online for c in clients):
            return
        if not self.ready_sent:
            self.ready_sent = True
            print(json.dumps({"ready": len(clients)}), flush=True)
            return
        drops = min(c.drops for c in clients)
        if drops > self.back_sent:
            self.back_sent = drops
            print(
                json.dumps(
                    {
                        "back": len(clients),
                        "back_at": [c.back_at for c in clients],
                        "attempts": [c.attempts_since_drop for c in clients],
                    }
                ),
                flush=True,
            )


async def main(url: str, first: int, count: int) -> None:
    report = Report()
    report.clients = [StormClient(url, f"storm{n}", report) for n in range(first, first + count)]
    tasks = []
    for client in report.clients:
        tasks.append(asyncio.ensure_future(client.run()))
        await asyncio.sleep(0.002)  # the first sign-in is spread out; reconnects are not
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
