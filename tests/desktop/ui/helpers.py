"""Awaiting Qt signals inside async tests without qtbot's nested loops."""

from __future__ import annotations

import asyncio
from typing import Any

from PySide6.QtCore import SignalInstance


async def next_emit(signal: SignalInstance, within: float = 10.0) -> tuple[Any, ...]:
    """The arguments of the next emission of ``signal``."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[tuple[Any, ...]] = loop.create_future()

    def done(*args: Any) -> None:
        if not future.done():
            future.set_result(args)

    signal.connect(done)
    try:
        return await asyncio.wait_for(future, within)
    finally:
        signal.disconnect(done)
