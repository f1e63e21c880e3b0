"""Two server instances behind Redis: delivery latency across instances, and offline after kill -9.

    uv run python -m benchmarks.cross_instance [--users 2000] [--friends 50]

Needs ``redis-server`` (a private one is started on a free port). The two
instances share one seeded SQLite file (WAL; the presence path reads no
database rows once a user's friends are known) and one Redis.

1. Baseline, one instance with in-process fan-out: saturation (closed loop),
   then p50/p99 at half of that rate (open loop).
2. Two instances with Redis, users alternating between them (each user has
   half of their friends on the other instance), the same offered rate:
   p50/p99 of deltas between users on different instances, and of those
   between users on the same instance.
3. Offline detection: a user on instance B, a friend on instance A; B is
   killed with SIGKILL; the time until the friend is told "offline"
   (``--presence-ttl``, default the server's).

Writes ``benchmarks/results/cross_instance.json``.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from ._common import BenchServer, Figure, percentile, pyplot, save_plot, write_results
from ._deltas import stamped_templates
from ._loadgen import PublishResult, PublishSpec, Workers
from ._seed import seed, token_for, user_id
from ._wsclient import WsClient, connect

SECOND = 1_000_000_000
LOAD_FRACTIONS = (0.1, 0.25, 0.5)
"""Offered rates, as fractions of one instance's saturation."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Redis:
    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("needs redis-server (apt-get install redis-server)")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                *(binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(directory)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 20
        for line in self.proc.stdout:
            if "Ready to accept connections" in line:
                break
            if time.monotonic() > deadline:
                break
        else:
            raise RuntimeError("redis-server did not start")
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _latencies(results: list[PublishResult], attr: str) -> list[float]:
    lat = array.array("q")
    for r in results:
        lat.frombytes(getattr(r, attr))
    return [x / 1e6 for x in lat]


def _specs(n: int, template: bytes, seconds: float, *, rate: float = 0, in_flight: int = 0) -> Any:
    start = time.monotonic_ns() + SECOND // 2
    end = start + int(seconds * SECOND)
    return [
        PublishSpec(
            template=template,
            start_ns=start,
            end_ns=end,
            measure_from_ns=start + SECOND,
            measure_to_ns=end,
            rate=rate / n,
            in_flight=in_flight // n,
        )
        for _ in range(n)
    ]


def _stats(ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "samples": len(ms),
    }


def latency_runs(args: argparse.Namespace, url: str, redis: Redis) -> dict[str, Any]:
    command, _delta = stamped_templates()
    out: dict[str, Any] = {"fractions": args.fractions, "single": [], "pair": []}
    print("one instance, in-process fan-out")
    single = BenchServer("benchmarks._server", "--database", url, "--relaxed-limits")
    try:
        workers = Workers(single.url, args.users, args.processes)
        try:
            held, failed, secs = workers.connect(args.users)
            print(f"  {held} connections in {secs:.1f} s ({failed} failed)", flush=True)
            time.sleep(2)
            n = len(workers.pipes)
            specs = _specs(n, command, args.seconds, in_flight=64)
            res = workers.publish(specs, args.seconds + 30)
            window = (specs[0].measure_to_ns - specs[0].measure_from_ns) / SECOND
            saturation = args.rate or sum(r.sent_in_window for r in res) / window
            rates = [saturation * f for f in args.fractions]
            print(f"  saturation {saturation:.0f} updates/s", flush=True)
            for rate in rates:
                res = workers.publish(_specs(n, command, args.seconds, rate=rate), 60)
                level = {"rate": rate, **_stats(_latencies(res, "latencies_ns"))}
                out["single"].append(level)
                print(f"  {rate:6.0f}/s  p50 {level['p50_ms']:7.2f}  p99 {level['p99_ms']:7.2f} ms")
            out["saturation_updates_per_s"] = saturation
        finally:
            workers.stop()
    finally:
        single.stop()
    print("two instances, Redis fan-out")
    a = BenchServer(
        "benchmarks._server", "--database", url, "--relaxed-limits", "--redis", redis.url
    )
    b = BenchServer(
        "benchmarks._server", "--database", url, "--relaxed-limits", "--redis", redis.url
    )
    try:
        workers = Workers([a.url, b.url], args.users, args.processes)
        try:
            held, failed, secs = workers.connect(args.users)
            print(f"  {held} connections in {secs:.1f} s ({failed} failed)", flush=True)
            time.sleep(2)
            n = len(workers.pipes)
            for rate in rates:
                res = workers.publish(_specs(n, command, args.seconds, rate=rate), 60)
                same = _stats(_latencies(res, "latencies_ns"))
                cross = _stats(_latencies(res, "cross_latencies_ns"))
                out["pair"].append({"rate": rate, "same": same, "cross": cross})
                print(
                    f"  {rate:6.0f}/s  same p99 {same['p99_ms']:7.2f} ms,"
                    f"  cross p50 {cross['p50_ms']:7.2f}  p99 {cross['p99_ms']:7.2f} ms"
                )
        finally:
            workers.stop()
    finally:
        a.stop()
        b.stop()
    return out


def plot(lat: dict[str, Any], friends: int) -> None:
    plt = pyplot()
    fig, ax = plt.subplots()
    xs = [lv["rate"] * friends / 1000 for lv in lat["single"]]
    ax.plot(xs, [lv["p99_ms"] for lv in lat["single"]], "o-", label="one instance p99")
    ax.plot(
        xs,
        [lv["same"]["p99_ms"] for lv in lat["pair"]],
        "s--",
        label="Redis pair, same instance p99",
    )
    ax.plot(
        xs,
        [lv["cross"]["p99_ms"] for lv in lat["pair"]],
        "^-",
        label="Redis pair, across instances p99",
    )
    ax.set_yscale("log")
    ax.set_xlabel("offered deltas per second (thousands)")
    ax.set_ylabel("delivery latency (ms)")
    ax.set_title("Cross-instance delivery (two instances + Redis, one 2-core machine)")
    ax.legend(fontsize=7, loc="upper left")
    save_plot(fig, "cross_instance_latency_vs_load")


async def _offline_once(url_a: str, url_b: str, victim: BenchServer) -> float:
    """Seconds from SIGKILL of ``victim`` until user 0 (on A) hears user 1 (on B) is offline."""
    loop = asyncio.get_running_loop()
    ready = {i: loop.create_future() for i in (0, 1)}
    online: asyncio.Future[None] = loop.create_future()
    offline: asyncio.Future[float] = loop.create_future()
    subject = f'"user_id":{user_id(1)},'.encode()

    def on_text(client: WsClient, payload: bytes) -> None:
        if payload.startswith(b'{"type":"snapshot"'):
            fut = ready[client.user]
            if not fut.done():
                fut.set_result(None)
        elif client.user == 0 and payload.startswith(b'{"type":"presence"') and subject in payload:
            if b'"status":"online"' in payload and not online.done():
                online.set_result(None)
            elif b'"status"' not in payload and not offline.done():  # offline is the default
                offline.set_result(time.monotonic())

    clients = []
    for i, url in ((0, url_a), (1, url_b)):
        host, port = url.split("//")[1].split(":")
        client = await connect(host, int(port), on_text)
        client.user = i
        client.send_text(b'{"type":"auth","id":1,"session":"' + token_for(i).encode() + b'"}')
        await asyncio.wait_for(ready[i], 30)
        clients.append(client)
    await asyncio.wait_for(online, 30)
    killed = time.monotonic()
    os.kill(victim.pid, signal.SIGKILL)
    try:
        seen = await asyncio.wait_for(offline, 120)
    finally:
        for c in clients:
            c.close()
    return seen - killed


def offline_runs(args: argparse.Namespace, url: str, redis: Redis) -> list[float]:
    times = []
    for run in range(args.offline_runs):
        extra = ["--presence-ttl", str(args.presence_ttl)] if args.presence_ttl else []
        a = BenchServer("benchmarks._server", "--database", url, "--redis", redis.url, *extra)
        b = BenchServer("benchmarks._server", "--database", url, "--redis", redis.url, *extra)
        try:
            seconds = asyncio.run(_offline_once(a.url, b.url, b))
        finally:
            a.stop()
            b.stop()
        print(f"  run {run + 1}: offline seen {seconds:.1f} s after kill -9", flush=True)
        times.append(seconds)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--friends", type=int, default=50)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=float, default=0, help="updates/s (default: half of max)")
    parser.add_argument("--presence-ttl", type=float, default=0, help="default: the server's")
    parser.add_argument("--offline-runs", type=int, default=2)
    parser.add_argument(
        "--fractions",
        type=lambda text: [float(x) for x in text.split(",")],
        default=list(LOAD_FRACTIONS),
        help="offered rates as fractions of one instance's saturation (must include 0.5)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-cross-") as tmp:
        root = Path(tmp)
        url = seed(root / "bench.sqlite3", args.users, args.friends)
        redis = Redis(root)
        try:
            lat = latency_runs(args, url, redis)
            print("offline detection after kill -9")
            offline = offline_runs(args, url, redis)
        finally:
            redis.stop()
    half = args.fractions.index(0.5)
    half_single = lat["single"][half]
    half_pair = lat["pair"][half]
    figures = [
        Figure(
            "p99 delivery latency across instances (Redis), half load",
            half_pair["cross"]["p99_ms"],
            "ms",
            target=2,
            target_on="ratio",
            baseline=half_single["p99_ms"],
            baseline_name="one instance, same load",
            note=f"{half_single['rate']:.0f} updates/s x {args.friends} friends; "
            + "; ".join(
                f"at {f:.0%}: {p['cross']['p99_ms']:.1f} vs {s1['p99_ms']:.1f} ms"
                for f, p, s1 in zip(args.fractions, lat["pair"], lat["single"], strict=True)
            ),
        ),
        Figure(
            "p99 delivery latency, same instance of a Redis pair, half load",
            half_pair["same"]["p99_ms"],
            "ms",
            target=None,
            baseline=half_single["p99_ms"],
            baseline_name="one instance, same load",
        ),
    ]
    if offline:
        figures.append(
            Figure(
                "offline detection after kill -9 (worst run)",
                max(offline),
                "s",
                target=30,
                note=", ".join(f"{t:.1f}" for t in offline),
            )
        )
    write_results(
        "cross_instance",
        figures,
        {"users": args.users, "friends": args.friends, "latency": lat, "offline_s": offline},
        started,
    )
    plot(lat, args.friends)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
