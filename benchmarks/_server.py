"""The real presence server as a benchmark child: ``python -m benchmarks._server``.

It is ``start_server`` (what the CLI runs, GC policy included unless
``--no-gc-freeze``) with three benchmark choices: the
open-files limit raised to the hard limit, logging at WARNING (a log line per
connection would be measured too), and optionally relaxed rate limits, so a
fan-out run measures delivery rather than the presence coalescing window.
Prints ``nofile SOFT HARD`` and then ``listening on ws://…``; SIGTERM stops it
the way it stops in production (close with 4000, stamp last seen).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import signal
import time
from collections import deque
from pathlib import Path
from typing import Any

from presence_server.__main__ import exit_now
from presence_server.config import ServerConfig, ServerLimits
from presence_server.edge import gc_policy, transport
from presence_server.edge.server import WIRE_LOG, start_server

from . import _loops as event_loop
from ._common import raise_nofile
from ._turns import TurnLog

RELAXED = ServerLimits(
    presence_updates_per_window=1_000_000,
    commands_per_minute=1_000_000,
)


class PauseLog:
    """Every garbage collection of 1 ms or more: (end, CLOCK_MONOTONIC ns; generation;
    wall ms; CPU ms of this thread; objects collected; with ``young``, the objects a
    young collection walked and its largest container). On a shared machine wall and
    CPU differ when the process was descheduled during the collection; a short
    collection that freed many objects spent its time freeing them.

    Benchmark instrumentation, independent of the server's GC policy, so a run
    without the policy is measured the same way.
    """

    def __init__(self, young: bool = False) -> None:
        self.pauses: list[tuple[int, int, float, float, int, int, str]] = []
        self._start = 0
        self._cpu = 0
        self._young = young
        self._walked = 0
        self._largest = ""

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start" and self._young and info["generation"] < 2:
            # What the collection is about to walk: its generations' objects,
            # and the largest container among them (type and length).
            # The list built here is young too, so it shows in the snapshot: skip it.
            lists = [gc.get_objects(g) for g in range(info["generation"] + 1)]
            ours = {id(lists), *(id(x) for x in lists)}
            self._walked = sum(len(x) for x in lists)
            size, kind = 0, ""
            for objects in lists:
                for o in objects:
                    if (
                        isinstance(o, (dict, list, set, tuple, deque))
                        and id(o) not in ours
                        and len(o) > size
                    ):
                        size, kind = len(o), type(o).__qualname__
            self._largest = f"{kind} of {size}"
            del lists
        now = time.monotonic_ns()
        cpu = time.thread_time_ns()
        if phase == "start":
            self._start, self._cpu = now, cpu
        elif now - self._start >= 1_000_000:
            wall, used = (now - self._start) / 1e6, (cpu - self._cpu) / 1e6
            collected = int(info.get("collected", 0))
            generation = int(info["generation"])
            self.pauses.append(
                (now, generation, wall, used, collected, self._walked, self._largest)
            )


async def serve(args: argparse.Namespace, turns: TurnLog | None = None) -> None:
    if turns is not None:
        turns.install(asyncio.get_running_loop())
    if args.young_every_ms is not None:
        # The policy's default period, as start_server constructs it (0: off).
        defaults = gc_policy.GcPolicy.__init__.__kwdefaults__
        assert defaults is not None
        defaults["young_every"] = args.young_every_ms / 1000
    if args.flush_budget_ms is not None:
        transport.FLUSH_BUDGET_SECONDS = args.flush_budget_ms / 1000
    config = ServerConfig(
        host="127.0.0.1",
        port=args.port,
        database_url=args.database,
        dev_login=True,
        limits=RELAXED if args.relaxed_limits else ServerLimits(),
        redis_url=args.redis,
        presence_ttl=args.presence_ttl,
        instance_id=args.instance_id,
        gc_freeze=not args.no_gc_freeze,
    )
    server = await start_server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"event loop {type(loop).__module__}", flush=True)
    print(f"listening on {server.url}", flush=True)
    await stop.wait()
    await server.stop()


def run(args: argparse.Namespace) -> None:
    pauses = PauseLog(young=args.gc_young)
    if args.gc_log:
        gc.callbacks.append(pauses)
    turns = TurnLog(args.turn_threshold_ms) if args.turn_log and args.loop == "asyncio" else None
    try:
        event_loop.run(serve(args, turns), name=args.loop)
    finally:
        if args.gc_log:
            Path(args.gc_log).write_text(json.dumps(pauses.pauses))
        if turns is not None:
            Path(args.turn_log).write_text(json.dumps(turns.dump()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--relaxed-limits", action="store_true")
    parser.add_argument("--redis", default="", help="Redis URL: fan-out across instances")
    parser.add_argument("--presence-ttl", type=float, default=ServerConfig().presence_ttl)
    parser.add_argument("--instance-id", default="")
    parser.add_argument(
        "--loop", choices=event_loop.LOOP_NAMES, default="asyncio", help="the server's event loop"
    )
    parser.add_argument("--gc-log", default="", help="write GC pauses here (JSON) on exit")
    parser.add_argument(
        "--turn-log", default="", help="write the loop's long turns here (JSON) on exit (asyncio)"
    )
    parser.add_argument("--turn-threshold-ms", type=float, default=5.0)
    parser.add_argument(
        "--gc-young",
        action="store_true",
        help="with --gc-log: count the objects each young collection walks (costs CPU)",
    )
    parser.add_argument(
        "--young-every-ms",
        type=float,
        default=None,
        help="the GC policy's young collections every this many ms (0: off; default: its own)",
    )
    parser.add_argument(
        "--flush-budget-ms",
        type=float,
        default=None,
        help="the transport's turn budget (edge.transport.FLUSH_BUDGET_SECONDS); "
        "a large value gives the code before the budget",
    )
    parser.add_argument(
        "--no-gc-freeze", action="store_true", help="as the CLI's flag: no GC policy"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    WIRE_LOG.setLevel(logging.WARNING)  # as with --log-level WARNING
    soft, hard = raise_nofile()
    print(f"nofile {soft} {hard}", flush=True)
    run(args)
    exit_now(0)  # as the CLI ends: no teardown of the heap after the stop


if __name__ == "__main__":
    main()
