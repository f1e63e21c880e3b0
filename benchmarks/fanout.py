"""Presence fan-out: throughput against a ``websockets.broadcast`` ceiling; latency vs load.

    uv run python -m benchmarks.fanout [--users 2000] [--friends 50] [--profile]

Every user is one connection and has ``--friends`` friends (a ring); each
presence change reaches all of them. Load-generator processes publish the
typical delta (``benchmarks._deltas``) with the send time in the project label.

1. Saturation, closed loop: a fixed number of ``set_presence`` commands in
   flight; throughput is the number of deltas received per second by all
   clients in the measuring window.
2. Latency vs load, open loop: publish at fractions of the presence server's
   saturation rate; p50/p99 of receive time minus send time.

Both phases run first against the ceiling (``benchmarks._raw_server``: for
each frame from user i, ``websockets.broadcast`` of the same bytes to i's
friends) and then against the presence server with the same clients, the
same connection count and the same delta size. The server under test runs
with relaxed rate limits (the coalescing window is not what is measured).
``--profile`` records the presence server at saturation with py-spy.
Writes ``benchmarks/results/fanout.json`` and ``docs/plots/fanout_latency_vs_load.png``.
"""

from __future__ import annotations

import argparse
import array
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from ._common import (
    CLK_TCK,
    RESULTS_DIR,
    BenchServer,
    Figure,
    context_switches,
    cpu_seconds,
    percentile,
    pyplot,
    raise_nofile,
    save_plot,
    write_results,
)
from ._deltas import stamped_templates
from ._loadgen import PublishResult, PublishSpec, Workers
from ._loops import parse_loops
from ._seed import seed
from ._wsclient import frame_size

LOAD_FRACTIONS = (0.1, 0.25, 0.5, 0.75, 0.9)
SECOND = 1_000_000_000
SATURATION_WARMUP_S = 2.0


def _specs(
    workers: Workers,
    template: bytes,
    seconds: float,
    warmup: float,
    *,
    rate: float = 0.0,
    in_flight: int = 0,
) -> list[PublishSpec]:
    start = time.monotonic_ns() + SECOND // 2
    end = start + int(seconds * SECOND)
    n = len(workers.pipes)
    return [
        PublishSpec(
            template=template,
            start_ns=start,
            end_ns=end,
            measure_from_ns=start + int(warmup * SECOND),
            measure_to_ns=end,
            rate=rate / n,
            in_flight=in_flight,
        )
        for _ in range(n)
    ]


def _summary(results: list[PublishResult], spec: PublishSpec, friends: int) -> dict[str, Any]:
    window_s = (spec.measure_to_ns - spec.measure_from_ns) / SECOND
    lat = array.array("q")
    for r in results:
        lat.frombytes(r.latencies_ns)
    lat_ms = [x / 1e6 for x in lat]
    sent = sum(r.sent_in_window for r in results)
    received = sum(r.deliveries_in_window for r in results)
    slow = array.array("q")
    for r in results:
        slow.frombytes(r.slow_ns)
    return {
        "deliveries_per_s": received / window_s,
        "updates_per_s": sent / window_s,
        "expected_deliveries_per_s": sent * friends / window_s,
        "p50_ms": percentile(lat_ms, 50),
        "p90_ms": percentile(lat_ms, 90),
        "p99_ms": percentile(lat_ms, 99),
        "max_ms": max(lat_ms) if lat_ms else float("nan"),
        "samples": len(lat_ms),
        "closed_connections": sum(r.closed_connections for r in results),
        "window_ns": [spec.measure_from_ns, spec.measure_to_ns],
        "slow_samples": [[slow[i], slow[i + 1]] for i in range(0, len(slow), 2)],
        "loadgen_stalls": [list(s) for r in results for s in r.stalls],
    }


def _machine_busy_s() -> float:
    """CPU seconds every core of the machine spent busy so far (all processes)."""
    with open("/proc/stat", encoding="ascii") as fh:
        fields = [int(x) for x in fh.readline().split()[1:8]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / CLK_TCK


class PhaseProbe:
    """CPU time of the server and of each load generator, and the server's
    involuntary context switches, over one phase: who had the cores."""

    def __init__(self, server_pid: int, workers: Workers) -> None:
        self.pids = [server_pid, *(p.pid for p in workers.procs)]
        self.cpu = [cpu_seconds(pid) for pid in self.pids]
        self.switches = context_switches(server_pid)[1]
        self.machine = _machine_busy_s()
        self.t0 = time.monotonic()

    def into(self, phase: dict[str, Any]) -> None:
        spent = [cpu_seconds(pid) - c for pid, c in zip(self.pids, self.cpu, strict=True)]
        seconds = time.monotonic() - self.t0
        phase["phase_cpu_share"] = {
            "server": spent[0] / seconds,
            "load_generators": [c / seconds for c in spent[1:]],
        }
        phase["server_involuntary_switches"] = context_switches(self.pids[0])[1] - self.switches
        busy = (_machine_busy_s() - self.machine) / seconds
        phase["phase_cpu_share"]["other_processes"] = max(0.0, busy - sum(spent) / seconds)
        with open("/proc/loadavg", encoding="ascii") as fh:
            phase["load_average"] = float(fh.read().split()[0])


def gc_pauses(run: dict[str, Any], pauses: list[list[float]], half_index: int) -> None:
    """Add the server's garbage-collection pauses inside each measuring window."""
    run["gc_pauses"] = pauses
    for phase in [run["saturation"], *run["levels"]]:
        inside = [p for p in pauses if phase["window_ns"][0] <= p[0] <= phase["window_ns"][1]]
        full = [p[2] for p in inside if p[1] == 2]
        phase["gc"] = {
            "pauses_ge_1ms": len(inside),
            "full_collections": len(full),
            "max_full_ms": max(full, default=0.0),
            "max_full_cpu_ms": max((p[3] for p in inside if p[1] == 2), default=0.0),
            "max_ms": max((p[2] for p in inside), default=0.0),
            "total_ms": sum(p[2] for p in inside),
        }
    half = run["levels"][half_index]["gc"]
    print(
        f"  GC pauses: {sum(p[1] == 2 for p in pauses)} full collections in all, "
        f"{half['full_collections']} in the half-load window (max {half['max_full_ms']:.0f} ms, "
        f"{half['max_full_cpu_ms']:.0f} ms of CPU), "
        f"longest pause there {half['max_ms']:.0f} ms",
        flush=True,
    )


def turn_report(run: dict[str, Any], log: dict[str, Any], half_index: int) -> None:
    """Set the server's long loop turns (``--trace``) beside each window's slow deliveries.

    A slow delivery (≥ 20 ms) is *explained by a turn* when a long turn of the
    server ended between its send and its receive, *by a generator stall* when a
    load generator's sender stalled in that span, and is *unexplained* otherwise.
    """
    turns = log["turns"]
    run["turn_threshold_ms"] = log["threshold_ms"]
    for phase in [run["saturation"], *run["levels"]]:
        lo, hi = phase["window_ns"]
        inside = [t for t in turns if lo <= t[0] <= hi]
        stalls = phase.get("loadgen_stalls", [])
        by_turn = by_stall = neither = 0
        for stamp, lat in phase["slow_samples"]:
            if any(stamp <= t[0] <= stamp + lat for t in inside):
                by_turn += 1
            elif any(stamp <= s[0] and s[0] - s[1] <= stamp + lat for s in stalls):
                by_stall += 1
            else:
                neither += 1
        phase["turns"] = {
            "long": len(inside),
            "long_wall_ms": sum(t[1] for t in inside),
            "long_cpu_ms": sum(t[2] for t in inside),
            "long_with_cpu_over_threshold": sum(t[2] >= log["threshold_ms"] for t in inside),
            "work_ms": sorted((t[1] for t in inside), reverse=True)[:20],
            "longest": sorted(inside, key=lambda t: -t[1])[:10],
            "slow_deliveries": {"turn": by_turn, "generator_stall": by_stall, "neither": neither},
        }
    half = run["levels"][half_index]
    t = half["turns"]
    print(
        f"  half load: {t['long']} turns ≥ {log['threshold_ms']:g} ms "
        f"({t['long_wall_ms']:.0f} ms wall, {t['long_cpu_ms']:.0f} ms CPU; "
        f"{t['long_with_cpu_over_threshold']} with that much CPU); "
        f"slow deliveries {t['slow_deliveries']}"
    )
    for turn in t["longest"][:8]:
        print(
            f"    turn {turn[1]:.1f} ms (CPU {turn[2]:.1f}), {turn[3]} callbacks, "
            f"{turn[4]} bytes written, GC {turn[5]:.1f} ms, slowest {turn[6]:.1f} ms {turn[7]}",
            flush=True,
        )


def run_server(
    server: BenchServer,
    label: str,
    args: argparse.Namespace,
    template: bytes,
    ready: bytes,
    rates: list[float] | None,
    profile: bool = False,
) -> dict[str, Any]:
    workers = Workers(server.url, args.users, args.processes, ready_type=ready)
    out: dict[str, Any] = {"label": label}
    try:
        held, failed, seconds = workers.connect(args.users)
        print(f"  {held} connections in {seconds:.1f} s ({failed} failed)", flush=True)
        if failed:
            raise RuntimeError(f"{failed} of {args.users} users could not connect to {label}")
        out["connections"] = held
        time.sleep(2.0)  # the "came online" deltas of the connect phase settle
        # Saturation.
        specs = _specs(
            workers,
            template,
            args.seconds,
            SATURATION_WARMUP_S,
            in_flight=args.in_flight // args.processes,
        )
        spy = None
        if profile and shutil.which("py-spy"):
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            spy = subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--pid",
                    str(server.pid),
                    "--duration",
                    str(int(args.seconds)),
                    "--rate",
                    "200",
                    "--format",
                    "speedscope",
                    "--output",
                    str(RESULTS_DIR / "fanout_profile.speedscope.json"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        cpu0 = cpu_seconds(server.pid)
        sat = _summary(workers.publish(specs, args.seconds + 30), specs[0], args.friends)
        sat["server_cpu_s"] = cpu_seconds(server.pid) - cpu0
        if spy is not None:
            spy.wait(60)
        out["saturation"] = sat
        print(
            f"  saturation: {sat['deliveries_per_s']:9.0f} deliveries/s "
            f"({sat['updates_per_s']:.0f} updates/s), p50 {sat['p50_ms']:.1f} ms, "
            f"p99 {sat['p99_ms']:.1f} ms",
            flush=True,
        )
        levels = []
        for rate in rates or [sat["updates_per_s"] * f for f in args.fractions]:
            specs = _specs(workers, template, args.level_seconds, 1.0, rate=rate)
            probe = PhaseProbe(server.pid, workers)
            level = _summary(
                workers.publish(specs, args.level_seconds + 30), specs[0], args.friends
            )
            probe.into(level)
            level["offered_updates_per_s"] = rate
            levels.append(level)
            print(
                f"  {rate:7.0f} updates/s offered: {level['deliveries_per_s']:8.0f} deliveries/s, "
                f"p50 {level['p50_ms']:6.2f} ms, p99 {level['p99_ms']:6.2f} ms; CPU share "
                f"server {level['phase_cpu_share']['server']:.2f}, load generators "
                + "+".join(f"{c:.2f}" for c in level["phase_cpu_share"]["load_generators"])
                + f", other processes {level['phase_cpu_share']['other_processes']:.2f}"
                + f", {level['server_involuntary_switches']} involuntary switches"
                + f"; {len(level['loadgen_stalls'])} generator stalls ≥ 10 ms, "
                f"load {level['load_average']:.1f}",
                flush=True,
            )
        out["levels"] = levels
    finally:
        workers.stop()
    return out


def variant_figures(
    variant: dict[str, Any],
    half_index: int,
    delta_bytes: int,
    args: argparse.Namespace,
    suffix: str,
) -> list[Figure]:
    """Throughput and half-load latency of one loop's server against its own ceiling."""
    ours, raw = variant["ours"], variant["raw"]
    half, raw_half = ours["levels"][half_index], raw["levels"][half_index]
    return [
        Figure(
            f"fan-out throughput{suffix}",
            ours["saturation"]["deliveries_per_s"],
            "deltas/s",
            target=0.8,
            target_on="ratio",
            baseline=raw["saturation"]["deliveries_per_s"],
            baseline_name=f"websockets.broadcast ceiling{suffix}",
            lower_is_better=False,
            note=f"{args.users} users x {args.friends} friends, delta frame {delta_bytes} bytes",
        ),
        Figure(
            f"server CPU per delivered delta at saturation{suffix}",
            cpu_per_delivery_us(ours["saturation"]),
            "µs",
            target=None,
            baseline=cpu_per_delivery_us(raw["saturation"]),
            baseline_name=f"websockets.broadcast ceiling{suffix}",
            note="CPU time of the server process; less distorted by other work than throughput",
        ),
        Figure(
            f"p50 delivery latency at half load{suffix}",
            half["p50_ms"],
            "ms",
            target=None,
            baseline=raw_half["p50_ms"],
            baseline_name=f"ceiling at the same offered load{suffix}",
            note=f"{half['deliveries_per_s']:.0f} deltas/s",
        ),
        Figure(
            f"p99 delivery latency at half load{suffix}",
            half["p99_ms"],
            "ms",
            target=50,
            baseline=raw_half["p99_ms"],
            baseline_name=f"ceiling at the same offered load{suffix}",
            note=f"{half['deliveries_per_s']:.0f} deltas/s",
        ),
    ]


def cpu_per_delivery_us(phase: dict[str, Any]) -> float:
    """Server CPU time per delivered delta at saturation (µs).

    The CPU time covers the whole phase (warm-up included, at the same
    saturated rate), so deliveries are counted over the same span.
    """
    window_s = (phase["window_ns"][1] - phase["window_ns"][0]) / SECOND
    delivered = phase["deliveries_per_s"] * (window_s + SATURATION_WARMUP_S)
    return 1e6 * phase["server_cpu_s"] / delivered if delivered else float("nan")


def comparison_figures(
    other: dict[str, Any], first: dict[str, Any], half_index: int, name: str, base: str
) -> list[Figure]:
    """One loop against the other in the same run: the server's and the ceiling's gain."""
    return [
        Figure(
            f"fan-out throughput, {name} against {base}",
            other["ours"]["saturation"]["deliveries_per_s"],
            "deltas/s",
            target=None,
            baseline=first["ours"]["saturation"]["deliveries_per_s"],
            baseline_name=f"presence server on {base}, same run",
            lower_is_better=False,
        ),
        Figure(
            f"ceiling throughput, {name} against {base}",
            other["raw"]["saturation"]["deliveries_per_s"],
            "deltas/s",
            target=None,
            baseline=first["raw"]["saturation"]["deliveries_per_s"],
            baseline_name=f"websockets.broadcast on {base}, same run",
            lower_is_better=False,
        ),
        Figure(
            f"server CPU per delivery at saturation, {name} against {base}",
            cpu_per_delivery_us(other["ours"]["saturation"]),
            "µs",
            target=None,
            baseline=cpu_per_delivery_us(first["ours"]["saturation"]),
            baseline_name=f"presence server on {base}, same run",
            note="CPU time is what a shared machine distorts least",
        ),
        Figure(
            f"ceiling CPU per delivery at saturation, {name} against {base}",
            cpu_per_delivery_us(other["raw"]["saturation"]),
            "µs",
            target=None,
            baseline=cpu_per_delivery_us(first["raw"]["saturation"]),
            baseline_name=f"websockets.broadcast on {base}, same run",
        ),
        Figure(
            f"p99 delivery latency at half load, {name} against {base}",
            other["ours"]["levels"][half_index]["p99_ms"],
            "ms",
            target=None,
            baseline=first["ours"]["levels"][half_index]["p99_ms"],
            baseline_name=f"presence server on {base} at the same offered load",
        ),
    ]


def plot(variants: dict[str, dict[str, Any]], ceiling: float) -> None:
    plt = pyplot()
    fig, ax = plt.subplots()
    color = 0
    for name, variant in variants.items():
        for key, what in (("ours", "presence server"), ("raw", "bare broadcast")):
            run = variant[key]
            xs = [lv["deliveries_per_s"] / 1000 for lv in run["levels"]]
            c = f"C{color}"
            color += 1
            label = f"{what} ({name})"
            ax.plot(
                xs, [lv["p50_ms"] for lv in run["levels"]], "o--", color=c, label=f"{label} p50"
            )
            ax.plot(xs, [lv["p99_ms"] for lv in run["levels"]], "o-", color=c, label=f"{label} p99")
    ax.axhline(50, color="grey", linestyle=":", label="target p99 50 ms")
    ax.axvline(ceiling / 1000, color="grey", linestyle="-.", alpha=0.6, label="ceiling throughput")
    ax.set_yscale("log")
    ax.set_xlabel("deltas delivered per second (thousands)")
    ax.set_ylabel("delivery latency (ms)")
    ax.set_title("Presence fan-out: latency vs load (one server process)")
    ax.legend(fontsize=7, loc="upper left")
    save_plot(fig, "fanout_latency_vs_load")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--friends", type=int, default=50)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--in-flight", type=int, default=64, help="closed-loop commands in flight")
    parser.add_argument("--seconds", type=float, default=8.0, help="saturation phase")
    parser.add_argument("--level-seconds", type=float, default=5.0, help="each latency level")
    parser.add_argument(
        "--fractions",
        type=lambda text: [float(x) for x in text.split(",")],
        default=list(LOAD_FRACTIONS),
        help="latency levels as fractions of saturation (must include 0.5)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the server at saturation")
    parser.add_argument(
        "--no-gc-freeze",
        action="store_true",
        help="run the presence server without its GC policy (the figures before it existed)",
    )
    parser.add_argument(
        "--loops",
        type=parse_loops,
        default=["asyncio"],
        help="event loops of the servers, run back to back in this order "
        "(comma-separated, e.g. asyncio,uvloop; default asyncio, the server's loop; "
        "the first sets the offered rates)",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="log the presence server's long loop turns and set them beside slow deliveries "
        "(asyncio only; costs a few %% of throughput)",
    )
    parser.add_argument(
        "--flush-budget-ms",
        type=float,
        default=None,
        help="the presence server's turn budget (default: the server's own; 1e6: none)",
    )
    parser.add_argument(
        "--young-every-ms",
        type=float,
        default=None,
        help="the presence server's young collections every this many ms (0: off, the "
        "GC policy before them; default: the policy's own)",
    )
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    started = time.monotonic()
    raise_nofile()
    command, delta = stamped_templates()
    delta_bytes = frame_size(len(delta.replace(b"USERID", b"12345678")), masked=False)
    loops: list[str] = args.loops
    variants: dict[str, dict[str, Any]] = {}
    rates: list[float] | None = None
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        url = seed(Path(tmp) / "bench.sqlite3", args.users, args.friends)
        # Each loop: the presence server, then the ceiling on the same loop, back
        # to back. The first loop's saturation sets the offered rates of every
        # later run, so all latencies are compared at the same offered load.
        for name in loops:
            print(f"presence server on {name}: {args.users} users x {args.friends} friends")
            gc_log = Path(tmp) / f"gc-{name}.json"
            gc_flag = ["--no-gc-freeze"] if args.no_gc_freeze else []
            turn_log = Path(tmp) / f"turns-{name}.json"
            trace = ["--turn-log", str(turn_log), "--gc-young"] if args.trace else []
            if args.flush_budget_ms is not None:
                trace += ["--flush-budget-ms", str(args.flush_budget_ms)]
            if args.young_every_ms is not None:
                trace += ["--young-every-ms", str(args.young_every_ms)]
            server = BenchServer(
                "benchmarks._server",
                *("--database", url, "--loop", name, "--relaxed-limits"),
                *("--gc-log", str(gc_log), *gc_flag, *trace),
            )
            try:
                ours = run_server(
                    server,
                    f"presence server ({name})",
                    args,
                    command,
                    b'{"type":"snapshot"',
                    rates,
                    args.profile and name == loops[0],
                )
                ours["loop_module"] = server.loop_module
            finally:
                server.stop()
            pauses = json.loads(gc_log.read_text()) if gc_log.exists() else []
            gc_pauses(ours, pauses, args.fractions.index(0.5))
            if turn_log.exists():
                turn_report(ours, json.loads(turn_log.read_text()), args.fractions.index(0.5))
            if rates is None:
                rates = [lv["offered_updates_per_s"] for lv in ours["levels"]]
            print(f"ceiling on {name}: bare websockets server, websockets.broadcast")
            raw_server = BenchServer(
                "benchmarks._raw_server",
                *("--users", str(args.users), "--friends", str(args.friends), "--loop", name),
            )
            try:
                raw = run_server(
                    raw_server, f"bare broadcast ({name})", args, delta, b'{"type":"auth_ok"', rates
                )
                raw["loop_module"] = raw_server.loop_module
            finally:
                raw_server.stop()
            variants[name] = {"ours": ours, "raw": raw}
    half_index = args.fractions.index(0.5)
    figures: list[Figure] = []
    for name in loops:
        figures += variant_figures(
            variants[name], half_index, delta_bytes, args, "" if name == loops[0] else f" ({name})"
        )
    first = variants[loops[0]]
    for name in loops[1:]:
        other = variants[name]
        figures += comparison_figures(other, first, half_index, name, loops[0])
    ours, raw = first["ours"], first["raw"]
    ceiling = raw["saturation"]["deliveries_per_s"]
    write_results(
        "fanout",
        figures,
        {
            "users": args.users,
            "friends": args.friends,
            "processes": args.processes,
            "in_flight": args.in_flight,
            "delta_frame_bytes": delta_bytes,
            "gc_freeze": not args.no_gc_freeze,
            "flush_budget_ms": args.flush_budget_ms,
            "young_every_ms": args.young_every_ms,
            "loops": loops,
            "ours": ours,
            "raw": raw,
            "variants": variants,
        },
        started,
    )
    if not args.no_plot:
        plot(variants, ceiling)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
