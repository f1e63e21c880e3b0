"""The ceiling: a bare ``websockets`` server doing only the unavoidable I/O.

Same library, same settings as the presence server (no compression, same
frame limit, default keepalive), same clients. It answers the first frame of
a connection with a fixed ``auth_ok``-like frame (the user index comes from
the benchmark token), and every later frame ``F`` from user ``i`` with
``websockets.broadcast(friends(i), F)`` plus an ``ok`` frame to the sender.
Publishers send exactly the delta the real server would produce, so the
broadcast payload has the same size. No decoding, no validation, no state:
whatever the real server does beyond this is its overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from websockets.asyncio.server import ServerConnection, broadcast, serve

from presence_protocol import limits

from . import _loops as event_loop
from ._common import raise_nofile
from ._seed import friends_of

AUTH_OK = b'{"type":"auth_ok","id":1,"user":{"id":1,"login":"raw"},"session_id":"raw"}'
OK = b'{"type":"ok"}'


async def run(args: argparse.Namespace) -> None:
    by_index: dict[int, ServerConnection] = {}
    friend_index = {i: friends_of(i, args.users, args.friends) for i in range(args.users)}

    async def handler(ws: ServerConnection) -> None:
        first = await ws.recv(decode=False)
        # {"type":"auth","id":1,"session":"bench-session-000123"}
        index = int(first.rsplit(b"-", 1)[1][:6])
        by_index[index] = ws
        await ws.send(AUTH_OK, text=True)
        mine = friend_index.get(index, [])
        try:
            async for frame in ws:
                broadcast([by_index[j] for j in mine if j in by_index], frame, text=True)
                broadcast([ws], OK, text=True)
        finally:
            if by_index.get(index) is ws:
                del by_index[index]

    async with serve(
        handler,
        "127.0.0.1",
        args.port,
        subprotocols=[limits.SUBPROTOCOL],  # type: ignore[list-item]
        compression=None,
        max_size=limits.MAX_FRAME_BYTES,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"event loop {type(loop).__module__}", flush=True)
        print(f"listening on ws://127.0.0.1:{port}", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--friends", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--loop", choices=event_loop.LOOP_NAMES, default="asyncio", help="the server's event loop"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    soft, hard = raise_nofile()
    print(f"nofile {soft} {hard}", flush=True)
    event_loop.run(run(args), name=args.loop)


if __name__ == "__main__":
    main()
