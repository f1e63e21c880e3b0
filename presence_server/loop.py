"""Which asyncio event loop the server process runs on: uvloop where it is installed.

uvloop (libuv underneath, the loop's I/O paths in Cython) carried more
presence deltas per second and more logins per second than the standard
loop in the same benchmark runs (docs/performance.md, "Event loop"), so the
CLI uses it by default. ``--no-uvloop`` / ``$PRESENCE_NO_UVLOOP=1`` turns it
off, and a platform where uvloop is not installed (Windows, where it does not
exist) falls back to the standard loop without complaint: the server's code
uses only the asyncio API, so nothing else depends on the choice.

Kept in this one module so the CLI needs two lines to use it and the
benchmarks can ask for a loop by name.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

LoopName = Literal["asyncio", "uvloop"]
LOOP_NAMES: tuple[LoopName, ...] = ("asyncio", "uvloop")


def uvloop_available() -> bool:
    """Whether uvloop can be imported here (it has no Windows build)."""
    return importlib.util.find_spec("uvloop") is not None


def loop_name(use_uvloop: bool) -> LoopName:
    """The loop a server asked to use uvloop (or not) will actually run on."""
    return "uvloop" if use_uvloop and uvloop_available() else "asyncio"


def new_event_loop(name: LoopName) -> asyncio.AbstractEventLoop:
    """A new loop of the named kind; ``"uvloop"`` raises ImportError where it is missing.

    Strict on purpose: a benchmark that asks for uvloop must not silently
    measure the standard loop. The CLI goes through ``loop_name`` first, which
    is where the fallback lives.
    """
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if name == "asyncio":
        return asyncio.new_event_loop()
    raise ValueError(f"unknown event loop {name!r}; choose one of {', '.join(LOOP_NAMES)}")


def run(main: Coroutine[Any, Any, T], *, name: LoopName) -> T:
    """``asyncio.run(main)`` on a loop of the named kind (Python 3.11 has no loop_factory)."""
    log.info("event loop: %s", name)
    with asyncio.Runner(loop_factory=lambda: new_event_loop(name)) as runner:
        return runner.run(main)
