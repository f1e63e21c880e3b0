"""Every benchmark runs from its one command in a tiny configuration and writes
results a script can read: figures with a value, a target verdict and the
machine they ran on. The real runs take minutes; these keep the harness from
rotting between them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark programs

ROOT = Path(__file__).resolve().parents[2]


def run(module: str, *args: str, tmp_path: Path, timeout: float = 100.0) -> dict[str, Any]:
    env = {
        **os.environ,
        "BENCH_RESULTS_DIR": str(tmp_path / "results"),
        "BENCH_PLOTS_DIR": str(tmp_path / "plots"),
    }
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data: dict[str, Any] = json.loads((tmp_path / "results" / f"{module}.json").read_text())
    assert data["benchmark"] == module
    assert data["machine"]["cpus"] >= 1
    assert data["figures"], "a benchmark without figures"
    for figure in data["figures"]:
        assert isinstance(figure["value"], int | float), figure
        assert figure["met"] in (True, False, None), figure
        if figure["target"] is not None:
            assert isinstance(figure["met"], bool), figure
    return data


def test_wire_bytes_measures_the_typical_delta_on_a_real_socket(tmp_path: Path) -> None:
    data = run("wire_bytes", tmp_path=tmp_path)
    live = data["data"]["through_server"]
    computed = data["data"]["variants"]["typical (default privacy)"]["frame_bytes"]
    # What the real server sent is exactly the frame the real code builds.
    assert live["frame_bytes"] == computed
    assert live["wire_bytes"] > live["frame_bytes"]


def test_connections_ramp_reports_memory_per_connection(tmp_path: Path) -> None:
    data = run(
        "connections",
        *("--connections", "60", "--processes", "2", "--steps", "2"),
        *("--settle", "0.3", "--idle", "0.5"),
        tmp_path=tmp_path,
    )
    ours = data["data"]["ours"]
    assert ours["held"] == 60
    assert ours["failures"] == 0
    assert [p["connections"] for p in ours["points"]] == [0, 30, 60]
    assert (tmp_path / "plots" / "memory_vs_connections.png").stat().st_size > 1000


def test_connections_tracemalloc_names_what_each_login_keeps(tmp_path: Path) -> None:
    args = ["--tracemalloc", "30", "--connections", "10", "--processes", "1", "--settle", "0.2"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.connections", *args, "--top", "400"],
        cwd=ROOT,
        env={**os.environ, "BENCH_RESULTS_DIR": str(tmp_path / "results")},
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads((tmp_path / "results" / "connections_trace.json").read_text())
    ours, raw = data["ours"], data["raw"]
    assert data["logins"] == 30
    assert ours["traced_bytes_per_login"] > 1000 and raw["traced_bytes_per_login"] > 1000

    def frames(run: dict[str, Any]) -> list[str]:
        return [
            f for row in run["by_traceback"] if row["bytes_per_login"] > 0 for f in row["where"]
        ]

    # Each login's Session is found where the edge makes it, and the bare
    # server's connections never pass through the presence server's code.
    assert any(f.startswith("presence_server/edge/transport.py") for f in frames(ours))
    assert not any(f.startswith("presence_server/") for f in frames(raw))


def test_reconnect_storm_brings_every_client_back_seeing_its_friends(tmp_path: Path) -> None:
    data = run(
        "reconnect_storm",
        *("--clients", "40", "--friends", "4", "--processes", "2", "--settle", "0.2"),
        *("--deadline", "60"),
        tmp_path=tmp_path,
    )
    storm = data["data"]["storm"]
    # Every client came back after the restart and saw all its friends online.
    assert (storm["back"], storm["complete"], storm["failures"]) == (40, 40, 0)
    assert storm["restart_to_all_seen_s"] > storm["stop_s"] + storm["start_s"]
    rate = data["figures"][0]
    assert rate["baseline"] > 0 and data["data"]["bare"]["back"] == 40
    assert rate["ratio"] == pytest.approx(rate["value"] / rate["baseline"])
    assert (tmp_path / "plots" / "reconnect_storm.png").stat().st_size > 1000
    # The mass disconnect dropped every client, and the server then held none.
    drop = data["data"]["drop"]
    assert drop["clients"] == 40


def test_fanout_compares_with_the_broadcast_ceiling(tmp_path: Path) -> None:
    data = run(
        "fanout",
        *("--users", "40", "--friends", "4", "--processes", "1", "--in-flight", "8"),
        *("--seconds", "2.5", "--level-seconds", "1.5", "--fractions", "0.5"),
        tmp_path=tmp_path,
    )
    throughput = data["figures"][0]
    assert throughput["baseline"] > 0
    assert throughput["ratio"] == pytest.approx(throughput["value"] / throughput["baseline"])
    # Deliveries happened, and each one was measured for latency.
    assert data["data"]["ours"]["levels"][0]["samples"] > 0
    # Server CPU per delivery is reported against the ceiling's, from both processes.
    cpu = next(f for f in data["figures"] if f["name"].startswith("server CPU per delivered"))
    assert cpu["value"] > 0 and cpu["baseline"] > 0


def test_fanout_trace_names_long_turns_and_who_had_the_cores(tmp_path: Path) -> None:
    """``--trace``: every level says how the server's long turns and the load
    generators' stalls line up with its slow deliveries, and who had the CPU."""
    data = run(
        "fanout",
        *("--users", "40", "--friends", "4", "--processes", "1", "--in-flight", "8"),
        *("--seconds", "2.5", "--level-seconds", "1.5", "--fractions", "0.5", "--trace"),
        tmp_path=tmp_path,
    )
    level = data["data"]["ours"]["levels"][0]
    turns = level["turns"]
    slow = turns["slow_deliveries"]
    assert sum(slow.values()) == len(level["slow_samples"])
    assert len(turns["work_ms"]) == min(turns["long"], 20)
    assert level["phase_cpu_share"]["server"] > 0
    assert len(level["phase_cpu_share"]["load_generators"]) == 1
    assert "turns" not in data["data"]["raw"]["levels"][0]  # the ceiling is not traced


def test_popup_benchmark_counts_rows_per_delta(tmp_path: Path) -> None:
    data = run("popup_1000", "--friends", "60", "--runs", "1", tmp_path=tmp_path)
    rows = next(f for f in data["figures"] if f["name"].startswith("friend rows"))
    assert rows["value"] <= 1
    assert data["data"]["delta_resets"] == 0


def _display_tools() -> bool:
    return all(shutil.which(p) for p in ("Xvfb", "trayer", "xwininfo", "dbus-daemon", "ss"))


def test_desktop_start_against_the_bare_tray(tmp_path: Path, require: Any) -> None:
    require(_display_tools(), "needs Xvfb, trayer, xwininfo, dbus-daemon and ss")
    data = run("desktop_start", "--runs", "1", "--settle", "0.5", tmp_path=tmp_path)
    runs = data["data"]["runs"]
    assert runs["app"][0]["shown_s"] > 0
    assert runs["baseline"][0]["rss_kib"] > 10_000


def test_desktop_idle_counts_wakeups_and_socket_bytes(tmp_path: Path, require: Any) -> None:
    require(_display_tools(), "needs Xvfb, trayer, xwininfo, dbus-daemon and ss")
    data = run("desktop_idle", "--seconds", "2", "--settle", "0.5", tmp_path=tmp_path)
    assert set(data["data"]["rates"]) == {"baseline", "app"}
    assert data["data"]["socket"]["wire_bytes"] >= data["data"]["socket"]["payload_bytes"]


def test_cross_instance_two_and_three_servers_scale_and_a_kill(
    tmp_path: Path, require: Any
) -> None:
    require(shutil.which("redis-server") is not None, "needs redis-server")
    data = run(
        "cross_instance",
        *("--users", "40", "--friends", "4", "--processes", "1", "--seconds", "2"),
        *("--fractions", "0.5", "--presence-ttl", "1", "--offline-runs", "1"),
        *("--instances", "2,3", "--scale-repeats", "1"),
        tmp_path=tmp_path,
        timeout=200,
    )
    offline = data["data"]["offline_s"]
    assert len(offline) == 1
    assert offline[0] > 0  # measured; the bound is the benchmark's verdict, not the smoke test's
    for count in ("2", "3"):
        level = data["data"]["latency"]["clusters"][count][0]
        assert level["cross"]["samples"] > 0
        # Target 4 is judged against both baselines: one instance on its
        # own, and the same-instance deliveries of the same run.
        judged = {
            f["baseline_name"]: f["ratio"]
            for f in data["figures"]
            if f["name"].startswith(f"p99 delivery latency across instances ({count} instances")
        }
        assert set(judged) == {"one instance, same load", f"same instance of {count}, same run"}
        same_run = judged[f"same instance of {count}, same run"]
        assert same_run == level["cross"]["p99_ms"] / level["same"]["p99_ms"]
    scale = data["data"]["scale"]
    assert scale["one"]["best"]["deliveries_per_s"] > 0
    assert scale["three"]["best"]["deliveries_per_s"] > 0
    assert (tmp_path / "plots" / "cross_instance_scale.png").exists()


def test_redis_route_measures_redis_and_client_cpu_per_event(tmp_path: Path, require: Any) -> None:
    require(shutil.which("redis-server") is not None, "needs redis-server")
    data = run("redis_route", "--events", "400", tmp_path=tmp_path)
    rows = data["data"]["rows"]
    assert [r["online"] for r in rows] == [0, 17, 50, 17]
    assert all(r["redis_us"] > 0 and r["client_us"] > 0 for r in rows)


def test_redis_receive_measures_both_listener_paths(tmp_path: Path, require: Any) -> None:
    require(shutil.which("redis-server") is not None, "needs redis-server")
    data = run("redis_receive", "--messages", "40", tmp_path=tmp_path)
    rows = data["data"]["rows"]
    # Every message reached every recipient on both paths (else it would hang, then fail).
    assert {(r["recipients"], r["burst"], r["bulk"]) for r in rows} == {
        (n, burst, bulk) for n in (1, 17, 50) for burst in (200, 1) for bulk in (False, True)
    }
    assert all(r["us_per_message"] > 0 for r in rows)


def test_fanout_runs_each_event_loop_against_its_own_ceiling(tmp_path: Path) -> None:
    data = run(
        "fanout",
        *("--users", "40", "--friends", "4", "--processes", "1", "--in-flight", "8"),
        *("--seconds", "2.5", "--level-seconds", "1.5", "--fractions", "0.5"),
        *("--loops", "uvloop,asyncio", "--no-plot"),
        tmp_path=tmp_path,
    )
    variants = data["data"]["variants"]
    # Each server really ran on the loop it was asked for, the ceiling too.
    assert variants["uvloop"]["ours"]["loop_module"] == "uvloop"
    assert variants["uvloop"]["raw"]["loop_module"] == "uvloop"
    assert variants["asyncio"]["ours"]["loop_module"].startswith("asyncio")
    assert variants["asyncio"]["raw"]["loop_module"].startswith("asyncio")
    # The later loop is offered the first loop's rates: same load, comparable latency.
    assert (
        variants["asyncio"]["ours"]["levels"][0]["offered_updates_per_s"]
        == variants["uvloop"]["ours"]["levels"][0]["offered_updates_per_s"]
    )
    names = [f["name"] for f in data["figures"]]
    assert "fan-out throughput (asyncio)" in names
    compared = next(f for f in data["figures"] if f["name"].startswith("server CPU per delivery"))
    assert compared["value"] > 0 and compared["baseline"] > 0
