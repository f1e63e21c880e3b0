"""A fake editor window speaking the bridge protocol over the real socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any


class Editor:
    """A fake editor window speaking the bridge protocol over the real socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, path: str, hello: bool = True, window: str = "w") -> Editor:
        reader, writer = await asyncio.open_unix_connection(path)
        editor = cls(reader, writer)
        OPEN.append(editor)
        if hello:
            await editor.send(
                {"type": "hello", "bridge": 1, "editor": "Fake Code", "window": window}
            )
            reply = await editor.receive()
            assert reply["type"] == "hello" and reply["bridge"] == 1
        return editor

    async def send(self, message: dict[str, Any] | bytes) -> None:
        data = message if isinstance(message, bytes) else json.dumps(message).encode() + b"\n"
        self.writer.write(data)
        await self.writer.drain()

    async def receive(self) -> dict[str, Any]:
        line = await asyncio.wait_for(self.reader.readline(), 5)
        assert line.endswith(b"\n"), f"connection ended: {line!r}"
        result: dict[str, Any] = json.loads(line)
        return result

    async def closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 5) == b""

    async def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


OPEN: list[Editor] = []
"""Every editor connected so far; the conftest closes them after each test."""
