"""Reconnect delays: exponential growth with full jitter, as a pure generator.

Full jitter (a uniform draw between zero and the exponential ceiling) spreads
the reconnects of many clients after a server restart instead of sending them
back in synchronized waves. The generator holds no clock: the client decides
when a connection was stable long enough to start over with a fresh one.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Protocol

BASE_DELAY = 0.5
"""Ceiling of the first delay, in seconds."""

MAX_DELAY = 30.0
"""No delay is ever longer than this, however often the connection failed."""

FACTOR = 2.0
"""How much the ceiling grows per failed attempt."""

STABLE_AFTER = 60.0
"""A connection that lasted this long resets the delays (the client applies it)."""


class RandomSource(Protocol):
    """The part of ``random.Random`` the generator needs, so tests can seed it."""

    def uniform(self, a: float, b: float) -> float: ...


def backoff_delays(
    *,
    base: float = BASE_DELAY,
    cap: float = MAX_DELAY,
    factor: float = FACTOR,
    rng: RandomSource | None = None,
) -> Iterator[float]:
    """Yield one delay per reconnect attempt, forever.

    Attempt ``n`` (from 0) waits a uniform random time in
    ``[0, min(cap, base * factor**n)]``.
    """
    if not (base > 0 and cap >= base and factor >= 1):
        raise ValueError(f"need base > 0, cap >= base, factor >= 1; got {base}, {cap}, {factor}")
    draw = rng if rng is not None else random.Random()
    ceiling = base
    while True:
        yield draw.uniform(0.0, ceiling)
        # Stop multiplying once capped so the float never overflows.
        ceiling = min(cap, ceiling * factor)
