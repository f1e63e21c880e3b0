"""A deliberately small WebSocket client for load generators.

Load generators must cost far less CPU per frame than the server under test,
or they measure themselves: on a 2-core machine the clients share the cores
with the server. This client parses server frames with a few slices per
frame (servers never mask, frames are small) and sends client frames with an
all-zero mask (RFC 6455 requires a mask key, not a random one; servers do not
check it). It answers pings and close frames and does nothing else; it is
not a general-purpose client.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import Callable

TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA
_ZERO_MASK = b"\x00\x00\x00\x00"


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked (with zeros) final frame."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return header + _ZERO_MASK + payload


def frame_size(payload_len: int, *, masked: bool) -> int:
    """Bytes of a whole frame on the wire for a payload of this length."""
    header = 2 if payload_len < 126 else 4 if payload_len < 65536 else 10
    return header + (4 if masked else 0) + payload_len


class WsClient(asyncio.Protocol):
    """One connection; ``on_text`` gets each text payload (bytes) as it arrives."""

    def __init__(
        self,
        host: str,
        port: int,
        on_text: Callable[[WsClient, bytes], None],
        *,
        subprotocol: str = "presence.v1",
    ) -> None:
        self.host = host
        self.port = port
        self.on_text = on_text
        self.subprotocol = subprotocol
        self.transport: asyncio.Transport | None = None
        self.open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.upgraded = False
        self.buf = b""
        self.user = 0
        """Free for the load generator (which user this connection is)."""
        self.bytes_in = 0

    # ------------------------------------------------------------ asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET / HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Protocol: {self.subprotocol}\r\n\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.open.done():
            self.open.set_exception(ConnectionError(f"closed before the upgrade: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        buf = self.buf + data if self.buf else data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            status = buf[:end].split(b"\r\n", 1)[0]
            if b" 101 " not in status:
                self.open.set_exception(ConnectionError(status.decode(errors="replace")))
                assert self.transport is not None
                self.transport.close()
                return
            self.upgraded = True
            self.open.set_result(None)
            buf = buf[end + 4 :]
        pos, size = 0, len(buf)
        on_text = self.on_text
        while size - pos >= 2:
            b0 = buf[pos]
            n = buf[pos + 1] & 0x7F
            start = pos + 2
            if n == 126:
                if size - pos < 4:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                start = pos + 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = struct.unpack_from("!Q", buf, pos + 2)[0]
                start = pos + 10
            end = start + n
            if end > size:
                break
            opcode = b0 & 0x0F
            if opcode == TEXT:
                on_text(self, buf[start:end])
            elif opcode == PING:
                self.send(PONG, buf[start:end])
            elif opcode == CLOSE:
                self.send(CLOSE, buf[start : start + 2])
                assert self.transport is not None
                self.transport.close()
            pos = end
        self.buf = buf[pos:] if pos < size else b""

    # ------------------------------------------------------------ sending

    def send(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(opcode, payload))

    def send_text(self, payload: bytes) -> None:
        self.send(TEXT, payload)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.send(CLOSE, struct.pack("!H", 1000))
            self.transport.close()


async def connect(host: str, port: int, on_text: Callable[[WsClient, bytes], None]) -> WsClient:
    """Open and upgrade one connection (callers bound the time with ``asyncio.timeout``)."""
    loop = asyncio.get_running_loop()
    _transport, client = await loop.create_connection(
        lambda: WsClient(host, port, on_text), host, port
    )
    await client.open
    return client
