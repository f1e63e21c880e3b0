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

from ._common import BenchServer, Figure, percentile, write_results
from ._deltas import stamped_templates
from ._loadgen import PublishResult, PublishSpec, Workers
from ._seed import seed, token_for, user_id
from ._wsclient import WsClient, connect

SECOND = 1_000_000_000


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
    out: dict[str, Any] = {}
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
            saturation = sum(r.sent_in_window for r in res) / window
            rate = args.rate or saturation / 2
            print(f"  saturation {saturation:.0f} updates/s; measuring at {rate:.0f}/s", flush=True)
            res = workers.publish(_specs(n, command, args.seconds, rate=rate), args.seconds + 30)
            out["single"] = _stats(_latencies(res, "latencies_ns"))
            out["saturation_updates_per_s"] = saturation
            out["rate_updates_per_s"] = rate
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
            res = workers.publish(_specs(n, command, args.seconds, rate=rate), args.seconds + 30)
            out["pair_same"] = _stats(_latencies(res, "latencies_ns"))
            out["pair_cross"] = _stats(_latencies(res, "cross_latencies_ns"))
        finally:
            workers.stop()
    finally:
        a.stop()
        b.stop()
    for key in ("single", "pair_same", "pair_cross"):
        s = out[key]
        print(f"  {key:10s} p50 {s['p50_ms']:7.2f} ms  p99 {s['p99_ms']:7.2f} ms  ({s['samples']})")
    return out


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
    figures = [
        Figure(
            "p99 delivery latency across instances (Redis)",
            lat["pair_cross"]["p99_ms"],
            "ms",
            target=2,
            target_on="ratio",
            baseline=lat["single"]["p99_ms"],
            baseline_name="one instance, same load",
            note=f"{lat['rate_updates_per_s']:.0f} updates/s x {args.friends} friends",
        ),
        Figure(
            "p99 delivery latency, same instance of a Redis pair",
            lat["pair_same"]["p99_ms"],
            "ms",
            target=None,
            baseline=lat["single"]["p99_ms"],
            baseline_name="one instance, same load",
        ),
        Figure(
            "offline detection after kill -9 (worst run)",
            max(offline),
            "s",
            target=30,
            note=", ".join(f"{t:.1f}" for t in offline),
        ),
    ]
    write_results(
        "cross_instance",
        figures,
        {"users": args.users, "friends": args.friends, "latency": lat, "offline_s": offline},
        started,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
