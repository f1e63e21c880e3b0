"""How many idle, authenticated connections one server process holds, and at what memory.

    uv run python -m benchmarks.connections [--connections 15000] [--processes 4]

Both servers run as child processes with their open-files limit raised to
the hard limit; four load-generator processes hold the connections. First
the ceiling (a bare ``websockets`` server, ``benchmarks._raw_server``), then
the presence server (``benchmarks._server``) on a seeded SQLite database
where every user has ``--friends`` friends and resumes a stored session
(``auth``), like a desktop app at start-up. RSS is read from ``/proc`` after
each step; the figure is (RSS at N - RSS empty) / N. Writes
``benchmarks/results/connections.json`` and ``docs/plots/memory_vs_connections.png``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from ._common import (
    BenchServer,
    Figure,
    cpu_seconds,
    pyplot,
    raise_nofile,
    rss_kib,
    save_plot,
    thread_count,
    write_results,
)
from ._loadgen import Workers
from ._loops import parse_loops
from ._seed import seed

SETTLE_S = 2.0


def ramp(
    server: BenchServer,
    users: int,
    steps: list[int],
    processes: int,
    ready: bytes,
    settle: float = SETTLE_S,
    idle_s: float = 5.0,
) -> dict[str, Any]:
    """Connect in steps; RSS after each. Returns the curve and the idle cost at the end."""
    time.sleep(settle)
    empty = rss_kib(server.pid)
    points: list[dict[str, Any]] = [{"connections": 0, "rss_kib": empty, "seconds": 0.0}]
    workers = Workers(server.url, users, processes, ready_type=ready)
    held = failures = 0
    idle: dict[str, float] = {}
    try:
        for step in steps:
            held, failed, seconds = workers.connect(step)
            failures += failed
            time.sleep(settle)
            rss = rss_kib(server.pid)
            points.append({"connections": held, "rss_kib": rss, "seconds": round(seconds, 2)})
            print(
                f"  {held:6d} connections  RSS {rss / 1024:7.1f} MiB  "
                f"(+{(rss - empty) / max(held, 1):5.1f} KiB/conn, step took {seconds:5.1f} s, "
                f"{failed} failed)",
                flush=True,
            )
            if failed:
                break
        # What holding them costs when nothing happens (keepalive pings only).
        cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
        time.sleep(idle_s)
        idle = {
            "cpu_percent": round(
                100 * (cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0), 2
            ),
            "threads": thread_count(server.pid),
            "rss_kib_after_idle": rss_kib(server.pid),
        }
    finally:
        workers.stop()
    per_conn = (points[-1]["rss_kib"] - empty) / held if held else float("nan")
    # Connect rate after the first step (which also waits for the workers to start).
    later = points[2:]
    rate = (
        (points[-1]["connections"] - points[1]["connections"]) / sum(p["seconds"] for p in later)
        if later
        else float("nan")
    )
    return {
        "connects_per_second": rate,
        "empty_rss_kib": empty,
        "points": points,
        "held": held,
        "failures": failures,
        "kib_per_connection": per_conn,
        "idle": idle,
        "nofile": server.nofile,
    }


def variant_figures(variant: dict[str, Any], suffix: str) -> list[Figure]:
    """One loop's presence server against the bare server on the same loop."""
    ours, raw = variant["ours"], variant["raw"]
    return [
        Figure(
            f"connections held{suffix}",
            ours["held"],
            "connections",
            target=15_000,
            lower_is_better=False,
            note=f"server open-files limit {ours['nofile']}",
        ),
        Figure(
            f"memory per connection above the empty server{suffix}",
            ours["kib_per_connection"],
            "KiB",
            target=1.3,  # issue 16, target 2: at most 1.3 times the bare server's
            target_on="ratio",
            baseline=raw["kib_per_connection"],
            baseline_name=f"bare websockets server{suffix}",
        ),
        Figure(
            f"server CPU while idle with all connections (keepalives){suffix}",
            ours["idle"].get("cpu_percent", float("nan")),
            "% of one core",
            target=None,
            baseline=raw["idle"].get("cpu_percent"),
            baseline_name=f"bare websockets server{suffix}",
        ),
        Figure(
            f"connect + authenticate + snapshot rate (reconnect storm){suffix}",
            ours["connects_per_second"],
            "connections/s",
            target=None,
            baseline=raw["connects_per_second"],
            baseline_name=f"bare websockets server (handshake only){suffix}",
            lower_is_better=False,
        ),
    ]


def comparison_figures(
    other: dict[str, Any], first: dict[str, Any], name: str, base: str
) -> list[Figure]:
    """One loop against the other in the same run."""
    return [
        Figure(
            f"connect + authenticate + snapshot rate, {name} against {base}",
            other["ours"]["connects_per_second"],
            "connections/s",
            target=None,
            baseline=first["ours"]["connects_per_second"],
            baseline_name=f"presence server on {base}, same run",
            lower_is_better=False,
        ),
        Figure(
            f"bare handshake rate, {name} against {base}",
            other["raw"]["connects_per_second"],
            "connections/s",
            target=None,
            baseline=first["raw"]["connects_per_second"],
            baseline_name=f"bare websockets server on {base}, same run",
            lower_is_better=False,
        ),
        Figure(
            f"memory per connection, {name} against {base}",
            other["ours"]["kib_per_connection"],
            "KiB",
            target=None,
            baseline=first["ours"]["kib_per_connection"],
            baseline_name=f"presence server on {base}, same run",
        ),
    ]


def plot(raw: dict[str, Any], ours: dict[str, Any]) -> None:
    plt = pyplot()
    fig, ax = plt.subplots()
    for label, run, style in (
        ("presence server", ours, "o-"),
        ("bare websockets server (ceiling)", raw, "s--"),
    ):
        xs = [p["connections"] for p in run["points"]]
        ys = [p["rss_kib"] / 1024 for p in run["points"]]
        ax.plot(xs, ys, style, label=f"{label}: {run['kib_per_connection']:.1f} KiB/conn")
    held = ours["held"] or 1
    ax.plot(
        [0, held],
        [ours["empty_rss_kib"] / 1024, (ours["empty_rss_kib"] + 25 * held) / 1024],
        ":",
        color="grey",
        label="target: 25 KiB/conn above empty",
    )
    ax.set_xlabel("idle authenticated connections")
    ax.set_ylabel("server RSS (MiB)")
    ax.set_title("Server memory vs connections (one process)")
    ax.legend(loc="upper left")
    save_plot(fig, "memory_vs_connections")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=15_000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--friends", type=int, default=10)
    parser.add_argument("--steps", type=int, default=6, help="number of measuring steps")
    parser.add_argument("--settle", type=float, default=SETTLE_S, help="seconds before RSS")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle CPU")
    parser.add_argument(
        "--loops",
        type=parse_loops,
        default=["asyncio"],
        help="event loops of the servers, run back to back in this order "
        "(comma-separated, e.g. asyncio,uvloop; default asyncio, the server's loop)",
    )
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    started = time.monotonic()
    soft, hard = raise_nofile()
    n = args.connections
    steps = sorted({max(1, round(n * (k + 1) / args.steps)) for k in range(args.steps)})
    loops: list[str] = args.loops
    variants: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-conn-") as tmp:
        url = seed(Path(tmp) / "bench.sqlite3", n, args.friends)
        # Each loop: the ceiling, then the presence server, back to back.
        for name in loops:
            print(f"ceiling on {name}: bare websockets server, {n} connections")
            raw_server = BenchServer("benchmarks._raw_server", "--users", str(n), "--loop", name)
            try:
                raw = ramp(
                    raw_server,
                    *(n, steps, args.processes, b'{"type":"auth_ok"', args.settle, args.idle),
                )
                raw["loop_module"] = raw_server.loop_module
            finally:
                raw_server.stop()
            print(f"presence server on {name}: {n} connections, {args.friends} friends each")
            server = BenchServer("benchmarks._server", "--database", url, "--loop", name)
            try:
                ours = ramp(
                    server, n, steps, args.processes, b'{"type":"snapshot"', args.settle, args.idle
                )
                ours["loop_module"] = server.loop_module
            finally:
                server.stop()
            variants[name] = {"ours": ours, "raw": raw}
    figures: list[Figure] = []
    for name in loops:
        figures += variant_figures(variants[name], "" if name == loops[0] else f" ({name})")
    first = variants[loops[0]]
    for name in loops[1:]:
        figures += comparison_figures(variants[name], first, name, loops[0])
    raw, ours = first["raw"], first["ours"]
    write_results(
        "connections",
        figures,
        {
            "connections": n,
            "friends": args.friends,
            "load_processes": args.processes,
            "client_nofile": [soft, hard],
            "loops": loops,
            "raw": raw,
            "ours": ours,
            "variants": variants,
        },
        started,
    )
    if not args.no_plot:
        plot(raw, ours)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
