"""Bytes of a presence delta: built by the real code, then seen on a real socket.

    uv run python -m benchmarks.wire_bytes

1. The typical delta (``benchmarks._deltas``: VS Code on a Python file,
   default privacy settings) and variants, as WebSocket frames, with what
   each field costs.
2. The same change sent through a running server: one seeded user publishes
   it, a friend receives it; the friend's socket counters (``ss -ti`` on the
   server side) give the bytes of the delta on the wire, TCP/IP included.

The idle cost of a connection (keepalives) is measured with the real app in
``benchmarks.desktop_idle``. Writes ``benchmarks/results/wire_bytes.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from presence_protocol import Activity, PresenceUpdate, SeenStatus, encode

from ._common import BenchServer, Figure, write_results
from ._deltas import TYPICAL_USER_ID, typical_delta, typical_set_presence
from ._seed import FIRST_ID, seed, token_for
from ._sockets import server_side
from ._wsclient import WsClient, connect, frame_size

TARGET = 150


def frame(payload: bytes) -> int:
    return frame_size(len(payload), masked=False)


def field_costs(update: PresenceUpdate) -> dict[str, int]:
    """Bytes each field adds to the frame (dropping it, everything else equal)."""
    full = frame(encode(update))
    costs: dict[str, int] = {}
    activity = update.activity
    if activity is not None:
        defaults = Activity()
        for name in ("kind", "editor", "language", "project", "file", "since"):
            if getattr(activity, name) != getattr(defaults, name):
                lighter = msgspec.structs.replace(activity, **{name: None})
                smaller = msgspec.structs.replace(update, activity=lighter)
                costs[f"activity.{name}"] = full - frame(encode(smaller))
    costs["status"] = full - frame(
        encode(msgspec.structs.replace(update, status=SeenStatus.OFFLINE))
    )
    return costs


def variants() -> dict[str, dict[str, Any]]:
    now = int(time.time())
    typical = msgspec.json.decode(typical_delta(now=now), type=PresenceUpdate)
    assert typical.activity is not None
    act = typical.activity

    def with_activity(**changes: Any) -> PresenceUpdate:
        return msgspec.structs.replace(typical, activity=msgspec.structs.replace(act, **changes))

    cases = {
        "typical (default privacy)": typical,
        "with an editor label (other clients may send one)": with_activity(
            editor="Visual Studio Code"
        ),
        "project shared": with_activity(project="presence-desktop"),
        "project and file shared": with_activity(project="presence-desktop", file="hub.py"),
        "dev-login id (16 digits)": msgspec.structs.replace(typical, user_id=2**52 + 17),
        "status only (away, no activity)": PresenceUpdate(
            user_id=TYPICAL_USER_ID, status=SeenStatus.AWAY
        ),
        "went offline": PresenceUpdate(user_id=TYPICAL_USER_ID, last_seen=now),
    }
    out = {}
    for name, update in cases.items():
        payload = encode(update)
        out[name] = {"frame_bytes": frame(payload), "json": payload.decode()}
    return out


async def through_server(url: str, port: int) -> dict[str, int]:
    """User 0 publishes the typical change; user 1 (a friend) receives it."""
    received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    ready: dict[int, asyncio.Future[None]] = {
        i: asyncio.get_running_loop().create_future() for i in (0, 1)
    }

    def on_text(client: WsClient, payload: bytes) -> None:
        if payload.startswith(b'{"type":"snapshot"'):
            ready[client.user].set_result(None)
        elif (
            client.user == 1
            and payload.startswith(b'{"type":"presence"')
            and b'"activity"' in payload
            and not received.done()
        ):
            received.set_result(payload)

    host = "127.0.0.1"
    clients = []
    for i in (1, 0):
        client = await connect(host, port, on_text)
        client.user = i
        client.send_text(b'{"type":"auth","id":1,"session":"' + token_for(i).encode() + b'"}')
        await asyncio.wait_for(ready[i], 30)
        clients.append(client)
    receiver, sender = clients
    assert receiver.transport is not None
    peer = receiver.transport.get_extra_info("sockname")[1]
    await asyncio.sleep(0.5)  # the "came online" delta of user 0 has reached user 1
    before = server_side(port)[peer]
    in_before = receiver.bytes_in
    sender.send_text(encode(typical_set_presence()))
    payload = await asyncio.wait_for(received, 30)
    await asyncio.sleep(0.2)  # let the receiver's ACK go out
    moved = server_side(port)[peer] - before
    for client in clients:
        client.close()
    return {
        "payload_bytes": len(payload),
        "frame_bytes": receiver.bytes_in - in_before,
        "wire_bytes": moved.on_the_wire,
        "segments": moved.segs_in + moved.segs_out,
        "tcp_payload_bytes": moved.payload,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.parse_args(argv)
    started = time.monotonic()
    typical = msgspec.json.decode(typical_delta(), type=PresenceUpdate)
    costs = field_costs(typical)
    table = variants()
    with tempfile.TemporaryDirectory(prefix="bench-bytes-") as tmp:
        url = seed(Path(tmp) / "bench.sqlite3", 10, 2)
        server = BenchServer("benchmarks._server", "--database", url)
        try:
            live = asyncio.run(through_server(server.url, server.port))
        finally:
            server.stop()
    for name, row in table.items():
        print(f"  {row['frame_bytes']:4d} bytes  {name}")
    print(
        "  cost of each field in the typical delta: "
        + ", ".join(f"{k} {v}" for k, v in costs.items())
    )
    figures = [
        Figure(
            "typical presence delta, WebSocket frame",
            table["typical (default privacy)"]["frame_bytes"],
            "bytes",
            target=TARGET,
            note=table["typical (default privacy)"]["json"],
        ),
        Figure(
            "typical presence delta through a running server, frame on the socket",
            live["frame_bytes"],
            "bytes",
            target=TARGET,
            note=f"user id {FIRST_ID + 0} (8 digits)",
        ),
        Figure(
            "same delta on the wire incl. IPv4/TCP headers and the ACK",
            live["wire_bytes"],
            "bytes",
            target=None,
            note=f"{live['segments']} segments",
        ),
    ]
    write_results(
        "wire_bytes",
        figures,
        {"variants": table, "field_costs": costs, "through_server": live},
        started,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
