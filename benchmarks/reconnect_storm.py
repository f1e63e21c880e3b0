"""A restart under load: every client comes back at once with its stored session.

    uv run python -m benchmarks.reconnect_storm [--clients 15000] [--friends 10] [--profile]

Users are seeded as for ``benchmarks.connections`` (a ring of ``--friends``
friends each, one stored session per user). First the ceiling: the bare
``websockets`` server (``benchmarks._raw_server``) takes all ``--clients``
connections at once from cold (handshake and one fixed answer to ``auth``).
Then the presence server (``benchmarks._server``) on the seeded SQLite file:
all clients connect and each waits until its snapshot and deltas show every
friend online; the server is stopped the way it stops in production (SIGTERM:
close 4000 to everyone, last seen stamped) and started again on the same port
and database, and every client reconnects at once, resuming its session.

Measured: the resume-login rate of the storm (clients ÷ seconds from the first
reconnect to the last snapshot) against the bare handshake rate with the same
clients and concurrency, and the time from the restart until every client is
back *and* has seen every one of its friends online (from the snapshot or the
deltas after it). Target (issue 16): rate ≥ 0.5 × the bare rate, everyone
back and seeing each other within 30 s. Last, every client's connection is
aborted at once (no close frame) and the time until the server counts none
is measured (the mass disconnect). ``--profile`` records the restarted
server with py-spy during the storm. Writes
``benchmarks/results/reconnect_storm.json`` and ``docs/plots/reconnect_storm.png``.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._common import (
    RESULTS_DIR,
    BenchServer,
    Figure,
    cpu_seconds,
    percentile,
    pyplot,
    raise_nofile,
    save_plot,
    write_results,
)
from ._seed import FIRST_ID, seed, token_for
from ._wsclient import WsClient, connect

SNAPSHOT = b'{"type":"snapshot"'
AUTH_OK = b'{"type":"auth_ok"'
PRESENCE = b'{"type":"presence"'
TARGET_RATIO = 0.5
TARGET_SECONDS = 30.0


class StormWorker:
    """One load-generator process: its share of the users, one connection each.

    A client is *back* when its login is answered (the snapshot, or the bare
    server's fixed frame) and *complete* when it knows every friend to be
    online. Times are ``monotonic_ns`` (one clock for all processes on Linux).
    """

    def __init__(self, host: str, port: int, indexes: Sequence[int], ready: bytes, friends: int):
        self.host, self.port = host, port
        self.indexes = list(indexes)
        self.ready = ready
        self.friends = friends
        self.online: dict[int, set[int]] = {}
        self.back = array.array("q")
        self.complete = array.array("q")
        self.waiting: dict[int, asyncio.Future[None]] = {}
        self.answered: dict[int, asyncio.Future[None]] = {}
        self.clients: list[WsClient] = []

    def on_text(self, client: WsClient, payload: bytes) -> None:
        index = client.user
        if payload.startswith(PRESENCE):
            online = self.online.get(index)
            if online is None:
                return  # before this connection's snapshot: it shows the same or newer
            delta = json.loads(payload)
            if delta.get("status", "offline") == "offline":  # the default is left out
                online.discard(delta["user_id"])
            else:
                online.add(delta["user_id"])
            self._check(index)
        elif payload.startswith(self.ready):
            self.back.append(time.monotonic_ns())
            answered = self.answered.pop(index, None)
            if answered is not None and not answered.done():
                answered.set_result(None)
            if self.ready == SNAPSHOT:
                snap = json.loads(payload)
                self.online[index] = {
                    f["user"]["id"]
                    for f in snap["friends"]
                    if f.get("presence", {}).get("status", "offline") != "offline"
                }
                self._check(index)
            else:
                self._done(index)

    def _check(self, index: int) -> None:
        if len(self.online[index]) >= self.friends:
            self._done(index)

    def _done(self, index: int) -> None:
        fut = self.waiting.pop(index, None)
        if fut is not None and not fut.done():
            self.complete.append(time.monotonic_ns())
            fut.set_result(None)

    async def connect_all(self, concurrency: int, deadline_s: float) -> dict[str, Any]:
        """Every user of this worker connects and logs in; returns when all are complete."""
        for client in self.clients:
            client.close()
        self.clients = []
        self.online.clear()
        self.back = array.array("q")
        self.complete = array.array("q")
        gate = asyncio.Semaphore(concurrency)
        loop = asyncio.get_running_loop()
        started = time.monotonic_ns()
        failures = 0

        async def login(index: int) -> bool:
            done: asyncio.Future[None] = loop.create_future()
            answered: asyncio.Future[None] = loop.create_future()
            self.waiting[index] = done
            self.answered[index] = answered
            async with gate:
                for _attempt in range(5):
                    try:
                        client = await asyncio.wait_for(
                            connect(self.host, self.port, self.on_text), 30
                        )
                        break
                    except (OSError, TimeoutError, ConnectionError):
                        await asyncio.sleep(0.2)
                else:
                    return False
                client.user = index
                self.clients.append(client)
                token = token_for(index).encode()
                client.send_text(b'{"type":"auth","id":1,"session":"' + token + b'"}')
                # The gate bounds logins in flight (handshake to answer), not the
                # wait for friends after it.
                await asyncio.wait(
                    [answered, client.closed], timeout=60, return_when="FIRST_COMPLETED"
                )
            # Then wait (outside the gate) until every friend is seen online.
            try:
                await asyncio.wait_for(done, deadline_s)
                return True
            except TimeoutError:
                return False

        results = await asyncio.gather(*(login(i) for i in self.indexes))
        failures = sum(1 for ok in results if not ok)
        self.waiting.clear()
        self.answered.clear()
        return {
            "started_ns": started,
            "back_ns": self.back.tobytes(),
            "complete_ns": self.complete.tobytes(),
            "failures": failures,
        }


def _worker_main(
    conn: multiprocessing.connection.Connection,
    host: str,
    port: int,
    indexes: Sequence[int],
    ready: bytes,
    friends: int,
) -> None:
    raise_nofile()

    async def main() -> None:
        worker = StormWorker(host, port, indexes, ready, friends)
        loop = asyncio.get_running_loop()
        while True:
            command, arg = await loop.run_in_executor(None, conn.recv)
            if command == "connect":
                conn.send(await worker.connect_all(*arg))
            elif command == "drop":
                # Every connection cut at once, no close frame (a network
                # outage, a proxy restart): the server notices each loss itself.
                dropped = 0
                for client in worker.clients:
                    if client.transport is not None and not client.transport.is_closing():
                        client.transport.abort()
                        dropped += 1
                worker.clients.clear()
                conn.send(dropped)
            elif command == "stop":
                for client in worker.clients:
                    client.close()
                await asyncio.sleep(0.2)
                conn.send(True)
                return

    asyncio.run(main())


class StormWorkers:
    """The parent side: worker processes, each with an even share of the users."""

    def __init__(self, url: str, users: int, processes: int, ready: bytes, friends: int) -> None:
        host, port = url.removeprefix("ws://").rsplit(":", 1)
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[multiprocessing.connection.Connection] = []
        self.procs: list[Any] = []
        for p in range(processes):
            indexes = list(range(p, users, processes))
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker_main,
                args=(child, host, int(port), indexes, ready, friends),
                daemon=True,
            )
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    def storm(self, concurrency: int, deadline_s: float) -> dict[str, Any]:
        """All users at once; merged times (seconds after the first worker started)."""
        for pipe in self.pipes:
            pipe.send(("connect", (concurrency, deadline_s)))
        results = []
        for pipe in self.pipes:
            if not pipe.poll(deadline_s + 120):
                raise TimeoutError("a load generator did not finish its storm")
            results.append(pipe.recv())
        started = min(r["started_ns"] for r in results)
        back = sorted(t for r in results for t in array.array("q", r["back_ns"]))
        complete = sorted(t for r in results for t in array.array("q", r["complete_ns"]))
        return {
            "started_ns": started,
            "back_s": [(t - started) / 1e9 for t in back],
            "complete_s": [(t - started) / 1e9 for t in complete],
            "failures": sum(r["failures"] for r in results),
        }

    def drop(self) -> int:
        """Abort every client's connection at once; how many were open."""
        for pipe in self.pipes:
            pipe.send(("drop", None))
        return sum(pipe.recv() for pipe in self.pipes)

    def stop(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("stop", None))
        for pipe in self.pipes:
            with contextlib.suppress(OSError, EOFError):
                if pipe.poll(20):
                    pipe.recv()
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


def _spy(pid: int, name: str) -> subprocess.Popen[bytes] | None:
    """py-spy recording ``pid`` into ``benchmarks/results/NAME.speedscope.json`` (if installed)."""
    if not shutil.which("py-spy"):
        return None
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            *("py-spy", "record", "--pid", str(pid), "--rate", "200"),
            *("--nonblocking", "--format", "speedscope", "--output"),
            str(RESULTS_DIR / f"{name}.speedscope.json"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _connections(port: int) -> float:
    """The server's ``presence_connections`` gauge, read from /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith("presence_connections "):
                return float(line.split()[1])
    raise RuntimeError("no presence_connections gauge in /metrics")


def _wait_for_no_connections(port: int, deadline_s: float) -> None:
    """Until the server counts no connection (every handler ended: leave,
    last seen, friends told); read every 50 ms, so the figure is that coarse."""
    deadline = time.monotonic() + deadline_s
    while _connections(port) > 0:
        if time.monotonic() > deadline:
            raise TimeoutError("the server still counted connections after the deadline")
        time.sleep(0.05)


def _rate(run: dict[str, Any]) -> float:
    """Logins answered per second, from the first attempt to the last answer."""
    back = run["back_s"]
    return len(back) / back[-1] if back else float("nan")


def _summary(run: dict[str, Any], clients: int) -> dict[str, Any]:
    back, complete = run["back_s"], run["complete_s"]
    return {
        "clients": clients,
        "back": len(back),
        "complete": len(complete),
        "failures": run["failures"],
        "rate_per_s": _rate(run),
        "last_back_s": back[-1] if back else float("nan"),
        "last_complete_s": complete[-1] if len(complete) == clients else float("nan"),
        "p50_back_s": percentile(back, 50),
        "p99_back_s": percentile(back, 99),
    }


def run_storm(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """Ceiling, first connect, restart and storm; every phase bounded in time."""
    n, f = args.clients, args.friends
    out: dict[str, Any] = {}
    print(f"ceiling: bare websockets server, {n} clients at once")
    raw = BenchServer("benchmarks._raw_server", "--users", str(n))
    try:
        workers = StormWorkers(raw.url, n, args.processes, AUTH_OK, 0)
        try:
            cpu0 = cpu_seconds(raw.pid)
            bare = workers.storm(args.concurrency, args.deadline)
            bare["server_cpu_s"] = cpu_seconds(raw.pid) - cpu0
        finally:
            workers.stop()
    finally:
        raw.stop()
    out["bare"] = {**_summary(bare, n), "back_s": bare["back_s"][:: max(1, n // 2000)]}
    out["bare"]["cpu_ms_per_login"] = 1000 * bare["server_cpu_s"] / max(len(bare["back_s"]), 1)
    print(f"  {out['bare']['rate_per_s']:.0f} handshakes/s, {bare['failures']} failed")

    print(f"presence server: {n} clients with {f} friends each connect")
    server = BenchServer("benchmarks._server", "--database", url)
    port = server.port
    workers = StormWorkers(server.url, n, args.processes, SNAPSHOT, f)
    spy: subprocess.Popen[bytes] | None = None
    try:
        cpu0 = cpu_seconds(server.pid)
        cold = workers.storm(args.concurrency, args.deadline)
        out["cold"] = _summary(cold, n)
        out["cold"]["cpu_ms_per_login"] = (
            1000 * (cpu_seconds(server.pid) - cpu0) / max(len(cold["back_s"]), 1)
        )
        print(
            f"  cold start: {out['cold']['rate_per_s']:.0f} logins/s, all seeing their friends "
            f"after {out['cold']['last_complete_s']:.1f} s, {cold['failures']} failed"
        )
        time.sleep(args.settle)
        print("restart: SIGTERM, then the same database on the same port")
        stop_spy = _spy(server.pid, "reconnect_storm_stop_profile") if args.profile_stop else None
        t_stop = time.monotonic_ns()
        server.stop(timeout=args.deadline)
        t_stopped = time.monotonic_ns()
        if stop_spy is not None:
            stop_spy.wait(60)  # py-spy ends with the process it records
        server = BenchServer("benchmarks._server", "--database", url, "--port", str(port))
        t_listening = time.monotonic_ns()
        if args.profile:
            spy = _spy(server.pid, "reconnect_storm_profile")
        cpu0 = cpu_seconds(server.pid)
        storm = workers.storm(args.concurrency, args.deadline)
        storm_cpu_s = cpu_seconds(server.pid) - cpu0
        if spy is not None:
            spy.send_signal(2)
            spy.wait(60)
        time.sleep(args.settle)
        print("mass disconnect: every client's connection aborted at once")
        cpu0 = cpu_seconds(server.pid)
        t_drop = time.monotonic_ns()
        dropped = workers.drop()
        _wait_for_no_connections(server.port, args.deadline)
        out["drop"] = {
            "clients": dropped,
            "seconds": (time.monotonic_ns() - t_drop) / 1e9,
            "server_cpu_s": cpu_seconds(server.pid) - cpu0,
        }
        print(
            f"  {dropped} dropped; the server held none {out['drop']['seconds']:.2f} s later,"
            f" {out['drop']['server_cpu_s']:.2f} s of server CPU"
        )
    finally:
        workers.stop()
        server.stop(timeout=args.deadline)
        if spy is not None and spy.poll() is None:
            spy.kill()
    summary = _summary(storm, n)
    summary["cpu_ms_per_login"] = 1000 * storm_cpu_s / max(len(storm["back_s"]), 1)
    offset = (storm["started_ns"] - t_stop) / 1e9
    summary.update(
        stop_s=(t_stopped - t_stop) / 1e9,
        start_s=(t_listening - t_stopped) / 1e9,
        reconnect_after_s=offset,
        restart_to_all_seen_s=offset + summary["last_complete_s"],
        back_s=storm["back_s"][:: max(1, n // 2000)],
        complete_s=storm["complete_s"][:: max(1, n // 2000)],
    )
    out["storm"] = summary
    print(
        f"  stopped in {summary['stop_s']:.1f} s, listening {summary['start_s']:.1f} s later; "
        f"{summary['back']} back at {summary['rate_per_s']:.0f} logins/s, all seeing every "
        f"friend {summary['restart_to_all_seen_s']:.1f} s after the restart, "
        f"{storm['failures']} failed"
    )
    print(
        f"  server CPU per login: {summary['cpu_ms_per_login']:.2f} ms in the storm, "
        f"{out['cold']['cpu_ms_per_login']:.2f} ms cold; bare server "
        f"{out['bare']['cpu_ms_per_login']:.2f} ms per handshake"
    )
    return out


def figures(out: dict[str, Any], clients: int) -> list[Figure]:
    bare, storm, cold = out["bare"], out["storm"], out["cold"]
    return [
        Figure(
            "session-resume login rate in a reconnect storm",
            storm["rate_per_s"],
            "logins/s",
            target=TARGET_RATIO,
            target_on="ratio",
            baseline=bare["rate_per_s"],
            baseline_name="bare websockets server, same clients and concurrency",
            lower_is_better=False,
            note=f"{clients} clients",
        ),
        Figure(
            "restart to every client back and seeing every friend online",
            storm["restart_to_all_seen_s"],
            "s",
            target=TARGET_SECONDS,
            note=f"{clients} clients; includes stop {storm['stop_s']:.1f} s "
            f"and start {storm['start_s']:.1f} s; {storm['failures']} failed",
        ),
        Figure(
            "server CPU per session-resume login in the storm",
            storm["cpu_ms_per_login"],
            "ms",
            target=None,
            baseline=bare["cpu_ms_per_login"],
            baseline_name="bare websockets server per handshake + answer",
            note="less sensitive to other work on the machine than the rates",
        ),
        Figure(
            "mass disconnect: every connection aborted at once until the server holds none",
            out["drop"]["seconds"],
            "s",
            target=None,
            note=f"{out['drop']['clients']} clients, {out['drop']['server_cpu_s']:.2f} s of "
            "server CPU (each: leave, last seen, friends told; read every 50 ms)",
        ),
        Figure(
            "session-resume login rate, cold start (first connect)",
            cold["rate_per_s"],
            "logins/s",
            target=None,
            baseline=bare["rate_per_s"],
            baseline_name="bare websockets server, same clients and concurrency",
            lower_is_better=False,
        ),
    ]


def plot(out: dict[str, Any]) -> None:
    plt = pyplot()
    fig, ax = plt.subplots()
    storm, bare = out["storm"], out["bare"]
    offset = storm["reconnect_after_s"]
    clients = storm["clients"]
    step = max(1, clients // 2000)

    def curve(times: list[float], shift: float) -> tuple[list[float], list[int]]:
        return [t + shift for t in times], [min((k + 1) * step, clients) for k in range(len(times))]

    ax.plot(*curve(bare["back_s"], offset), "--", color="grey", label="bare server: answered")
    ax.plot(*curve(storm["back_s"], offset), "-", label="presence server: logged in (snapshot)")
    ax.plot(*curve(storm["complete_s"], offset), "-", label="… and seeing every friend online")
    ax.axvline(offset, color="black", lw=0.8, ls=":", label="restarted server listening")
    ax.axvline(TARGET_SECONDS, color="red", lw=0.8, ls=":", label="target: 30 s")
    ax.set_xlabel("seconds since SIGTERM to the old server (bare server: since its storm began)")
    ax.set_ylabel("clients")
    ax.set_title(f"Reconnect storm after a restart, {clients:,} clients")
    ax.legend(loc="lower right", fontsize=7)
    save_plot(fig, "reconnect_storm")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=15_000)
    parser.add_argument("--friends", type=int, default=10)
    parser.add_argument("--processes", type=int, default=4, help="load-generator processes")
    parser.add_argument(
        "--concurrency", type=int, default=64, help="logins in flight per load generator"
    )
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before the restart")
    parser.add_argument(
        "--deadline", type=float, default=300.0, help="hang guard per phase (seconds)"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the restarted server")
    parser.add_argument(
        "--profile-stop", action="store_true", help="py-spy the old server while it stops"
    )
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    started = time.monotonic()
    soft, hard = raise_nofile()
    loadavg = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-storm-") as tmp:
        url = seed(Path(tmp) / "bench.sqlite3", args.clients, args.friends)
        out = run_storm(args, url)
    out.update(
        clients=args.clients,
        friends=args.friends,
        processes=args.processes,
        concurrency=args.concurrency,
        client_nofile=[soft, hard],
        loadavg_before=loadavg,
        loadavg_after=os.getloadavg(),
        first_user_id=FIRST_ID,
    )
    write_results("reconnect_storm", figures(out, args.clients), out, started)
    print(f"load average before {loadavg}, after {out['loadavg_after']}")
    if not args.no_plot:
        plot(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
