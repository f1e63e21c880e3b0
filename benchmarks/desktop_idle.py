"""The desktop app at rest: CPU time, wake-ups and bytes on its socket over a minute.

    uv run python -m benchmarks.desktop_idle [--seconds 60]

On a virtual desktop (Xvfb + trayer + a private D-Bus session bus) the real
app, signed in to a seeded server (20 friends, none of them online, nothing
happening), and the bare tray baseline run side by side. After a settling
period both are watched for ``--seconds``: CPU time (utime + stime from
``/proc/PID/stat``), wake-ups (voluntary context switches of all threads,
``/proc/PID/task/*/status``), and for the app the bytes its connection moved
in both directions, read from the server's socket (``ss -ti``): WebSocket
payload, and on the wire with IPv4/TCP headers of every segment.
Writes ``benchmarks/results/desktop_idle.json``.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.desktop.ui.xdesktop import missing, virtual_desktop

from ._common import (
    BenchServer,
    Figure,
    thread_count,
    thread_deltas,
    thread_stats,
    write_results,
)
from ._display import XProbe, app_argv, app_env, baseline_argv, launch, stop, wait_docked
from ._seed import seed, token_for
from ._sockets import Counters, server_side

SETTLE_S = 10.0


def _session_bus() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    address = proc.stdout.readline().strip()
    if not address:
        proc.kill()
        raise RuntimeError("dbus-daemon did not print its address")
    return proc, address


def _sample(pid: int) -> tuple[float, dict[int, tuple[int, int, int]]]:
    return time.monotonic(), thread_stats(pid)


def _rates(
    before: tuple[float, dict[int, tuple[int, int, int]]],
    after: tuple[float, dict[int, tuple[int, int, int]]],
) -> dict[str, float]:
    minutes = (after[0] - before[0]) / 60
    d = thread_deltas(before[1], after[1])
    return {
        "cpu_ms_per_min": d["cpu_s"] * 1000 / minutes,
        "wakeups_per_min": d["voluntary"] / minutes,
        "involuntary_per_min": d["involuntary"] / minutes,
        "threads_started": d["threads_started"],
        "threads_ended": d["threads_ended"],
        "minutes": minutes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=SETTLE_S, help="seconds before watching")
    args = parser.parse_args(argv)
    gone = missing("desktop")
    if gone:
        raise SystemExit(f"needs {', '.join(gone)} (apt-get install xvfb trayer x11-utils)")
    started = time.monotonic()
    data: dict[str, Any] = {"seconds": args.seconds}
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        root = Path(tmp)
        url = seed(root / "server.sqlite3", 100, 20)
        server = BenchServer("benchmarks._server", "--database", url)
        bus, address = _session_bus()
        try:
            with virtual_desktop() as desktop:
                env = app_env(desktop.env, root / "home", token_for(0))
                env["DBUS_SESSION_BUS_ADDRESS"] = address
                probe = XProbe(desktop.display)
                procs = {}
                for name, command in (
                    ("baseline", baseline_argv()),
                    ("app", app_argv(server.url)),
                ):
                    t0 = time.perf_counter()
                    procs[name] = launch(command, env)
                    wait_docked(probe, procs[name], t0, timeout=60)
                probe.close()
                deadline = time.monotonic() + 30
                while not server_side(server.port) and time.monotonic() < deadline:
                    time.sleep(0.2)  # an outside process: poll its effect
                sockets = server_side(server.port)
                if len(sockets) != 1:
                    raise RuntimeError(f"expected the app's one connection, found {len(sockets)}")
                time.sleep(args.settle)
                before = {name: _sample(p.pid) for name, p in procs.items()}
                sock_before = next(iter(server_side(server.port).values()))
                time.sleep(args.seconds)
                after = {name: _sample(p.pid) for name, p in procs.items()}
                sock_after = server_side(server.port)
                threads = {name: thread_count(p.pid) for name, p in procs.items()}
                for p in procs.values():
                    stop(p)
        finally:
            bus.kill()
            bus.wait(5)
            server.stop()
    if len(sock_after) != 1:
        raise RuntimeError("the app's connection did not stay up for the whole minute")
    rates = {name: _rates(before[name], after[name]) for name in before}
    moved: Counters = next(iter(sock_after.values())) - sock_before
    minutes = rates["app"]["minutes"]
    data.update(
        rates=rates,
        threads=threads,
        socket={
            "payload_bytes": moved.payload,
            "wire_bytes": moved.on_the_wire,
            "bytes_to_app": moved.bytes_out,
            "bytes_from_app": moved.bytes_in,
            "segments": moved.segs_in + moved.segs_out,
        },
    )
    for name, r in rates.items():
        print(
            f"  {name:8s} CPU {r['cpu_ms_per_min']:7.1f} ms/min  "
            f"wake-ups {r['wakeups_per_min']:7.1f}/min  threads {threads[name]} "
            f"(+{r['threads_started']} -{r['threads_ended']} in the window)"
        )
    figures = [
        Figure(
            "idle CPU time",
            rates["app"]["cpu_ms_per_min"],
            "ms per minute",
            target=None,
            baseline=rates["baseline"]["cpu_ms_per_min"],
            baseline_name="bare PySide6 tray",
            note=f"{rates['app']['cpu_ms_per_min'] / 600:.3f} % of one core",
        ),
        Figure(
            "idle wake-ups (voluntary context switches, all threads)",
            rates["app"]["wakeups_per_min"],
            "per minute",
            target=None,
            baseline=rates["baseline"]["wakeups_per_min"],
            baseline_name="bare PySide6 tray",
        ),
        Figure(
            "idle connection, WebSocket bytes both ways",
            moved.payload / minutes,
            "bytes per minute",
            target=1024,
            note="keepalive pings and pongs; frames only",
        ),
        Figure(
            "idle connection, bytes on the wire incl. IPv4/TCP headers and ACKs",
            moved.on_the_wire / minutes,
            "bytes per minute",
            target=1024,
            note=f"{moved.segs_in + moved.segs_out} segments",
        ),
    ]
    write_results("desktop_idle", figures, data, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
