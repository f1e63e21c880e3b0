"""Which asyncio event loop a benchmark server runs on: ``--loop`` / ``--loops``.

The presence server runs on the standard asyncio loop (uvloop was measured
and not adopted: docs/decisions.md, "The server stays on the standard asyncio
loop"). The benchmark servers can run on either so that the comparison can
be repeated back to back, each against a ceiling on the same loop
(docs/performance.md, "Event loop").
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

LOOP_NAMES = ("asyncio", "uvloop")


def new_event_loop(name: str) -> asyncio.AbstractEventLoop:
    """A new loop of the named kind; ``"uvloop"`` raises ImportError where it is missing.

    Strict on purpose: a run that asks for uvloop must not silently measure
    the standard loop.
    """
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if name == "asyncio":
        return asyncio.new_event_loop()
    raise ValueError(f"unknown event loop {name!r}; choose one of {', '.join(LOOP_NAMES)}")


def run(main: Coroutine[Any, Any, T], *, name: str) -> T:
    """``asyncio.run(main)`` on a loop of the named kind (Python 3.11 has no loop_factory)."""
    with asyncio.Runner(loop_factory=lambda: new_event_loop(name)) as runner:
        return runner.run(main)


def parse_loops(text: str) -> list[str]:
    """Distinct loop names, comma-separated, in the order the runs happen."""
    names = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in names if x not in LOOP_NAMES]
    if bad or not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"expected distinct names out of {', '.join(LOOP_NAMES)}, got {text!r}"
        )
    return names
