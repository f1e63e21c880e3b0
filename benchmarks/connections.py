"""How many idle, authenticated connections one server process holds, and at what memory.

    uv run python -m benchmarks.connections [--connections 15000] [--processes 4]
    uv run python -m benchmarks.connections --tracemalloc 600 [--connections 1000]

Both servers run as child processes with their open-files limit raised to
the hard limit; four load-generator processes hold the connections. First
the ceiling (a bare ``websockets`` server, ``benchmarks._raw_server``), then
the presence server (``benchmarks._server``) on a seeded SQLite database
where every user has ``--friends`` friends and resumes a stored session
(``auth``), like a desktop app at start-up. RSS is read from ``/proc`` after
each step; the figure is (RSS at N - RSS empty) / N. Writes
``benchmarks/results/connections.json`` and ``docs/plots/memory_vs_connections.png``.

``--tracemalloc LOGINS`` answers *what* each connection costs instead: only
the presence server runs, under ``tracemalloc`` (``benchmarks._traced_server``);
after ``--connections`` warm-up logins (caches and pools filled) it takes a
snapshot, lets ``LOGINS`` more clients log in and stay, takes another, and
prints the difference grouped by traceback, in bytes per login. Writes
``benchmarks/results/connections_trace.json``; no figures, no plot.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from ._common import (
    RESULTS_DIR,
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
    allowed = 1.3 * raw["kib_per_connection"]  # issue 16, target 2
    ax.plot(
        [0, held],
        [ours["empty_rss_kib"] / 1024, (ours["empty_rss_kib"] + allowed * held) / 1024],
        ":",
        color="grey",
        label=f"target: 1.3 x bare = {allowed:.1f} KiB/conn above empty",
    )
    ax.set_xlabel("idle authenticated connections")
    ax.set_ylabel("server RSS (MiB)")
    ax.set_title("Server memory vs connections (one process)")
    ax.legend(loc="upper left")
    save_plot(fig, "memory_vs_connections")


def _snapshot(server: BenchServer) -> tracemalloc.Snapshot:
    server.proc.send_signal(signal.SIGUSR1)
    path = server._wait_for("snapshot ", 600.0).split(" ", 1)[1]
    return tracemalloc.Snapshot.load(path)


def _where(traceback: tracemalloc.Traceback, depth: int) -> list[str]:
    """The innermost ``depth`` frames, innermost first, as ``file:line``."""
    frames = list(traceback)[::-1] if traceback else []
    root = str(Path(__file__).resolve().parent.parent) + os.sep
    out = []
    for frame in frames[:depth]:
        name = frame.filename.removeprefix(root)
        if "site-packages" + os.sep in name:
            name = name.split("site-packages" + os.sep, 1)[1]
        elif "python3." in name:
            name = "stdlib/" + name.rsplit(os.sep, 1)[1]
        out.append(f"{name}:{frame.lineno}")
    return out


def _trace_one(
    module: str,
    args: list[str],
    users: int,
    warmup: int,
    processes: int,
    ready: bytes,
    settle: float,
    tmp: str,
) -> tuple[list[tracemalloc.StatisticDiff], int]:
    """One server: the snapshot difference across the last ``users - warmup`` logins,
    and the RSS difference in KiB."""
    server = BenchServer("benchmarks._traced_server", module, *args, timeout=120.0)
    workers = Workers(server.url, users, processes, ready_type=ready)
    try:
        held, failed, _ = workers.connect(warmup)
        time.sleep(settle)
        rss0 = rss_kib(server.pid)
        before = _snapshot(server)
        held2, failed2, _ = workers.connect(users)
        time.sleep(settle)
        rss1 = rss_kib(server.pid)
        after = _snapshot(server)
    finally:
        workers.stop()
        server.stop()
    for path in Path(tmp).glob("snapshot-*.pickle"):
        path.unlink()
    if failed or failed2 or held2 - held != users - warmup:
        raise RuntimeError(f"{module}: {failed + failed2} logins failed")
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    before, after = before.filter_traces(ignore), after.filter_traces(ignore)
    return after.compare_to(before, "traceback"), rss1 - rss0


def _rows(diff: list[tracemalloc.StatisticDiff], logins: int, top: int) -> list[dict[str, Any]]:
    return [
        {
            "bytes_per_login": round(stat.size_diff / logins, 1),
            "blocks_per_login": round(stat.count_diff / logins, 2),
            "where": _where(stat.traceback, 8),
        }
        for stat in diff[:top]
    ]


def trace(
    warmup: int, logins: int, friends: int, processes: int, settle: float, top: int
) -> dict[str, Any]:
    """What ``logins`` more idle connections allocate, by traceback (see the docstring):
    the bare server's total for comparison, the presence server's in detail."""
    users = warmup + logins
    result: dict[str, Any] = {"warmup": warmup, "logins": logins, "friends": friends}
    with tempfile.TemporaryDirectory(prefix="bench-trace-") as tmp:
        url = seed(Path(tmp) / "bench.sqlite3", users, friends)
        os.environ["BENCH_TRACE_DIR"] = tmp
        for name, module, args, ready in (
            ("raw", "_raw_server", ["--users", str(users)], b'{"type":"auth_ok"'),
            ("ours", "_server", ["--database", url], b'{"type":"snapshot"'),
        ):
            diff, rss = _trace_one(module, args, users, warmup, processes, ready, settle, tmp)
            total = sum(s.size_diff for s in diff)
            result[name] = {
                "traced_bytes_per_login": round(total / logins, 1),
                "rss_bytes_per_login": round(rss * 1024 / logins, 1),
                "by_traceback": _rows(diff, logins, top),
            }
            print(
                f"{module}: {logins} logins after {warmup}: traced {total / logins:.0f} "
                f"bytes per login, RSS {rss * 1024 / logins:.0f} (tracing included)"
            )
    for row in result["ours"]["by_traceback"]:
        where = row["where"] or ["?"]
        print(f"{row['bytes_per_login']:8.1f} B {row['blocks_per_login']:6.2f} blk  {where[0]}")
        for line in where[1:]:
            print(f"{'':26}{line}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / "connections_trace.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"results: {path}")
    return result


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
    parser.add_argument(
        "--tracemalloc",
        type=int,
        default=0,
        metavar="LOGINS",
        help="instead of the ramp: what LOGINS more connections allocate after "
        "--connections warm-up logins, by traceback (tracemalloc; no baseline)",
    )
    parser.add_argument("--top", type=int, default=25, help="tracebacks shown (--tracemalloc)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    soft, hard = raise_nofile()
    if args.tracemalloc:
        trace(
            args.connections, args.tracemalloc, args.friends, args.processes, args.settle, args.top
        )
        return 0
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
