"""What every benchmark shares: process probes, machine facts, results files,
the server under test as a child process, and the plot style.

Probes read ``/proc`` (Linux only), because that is where RSS, CPU time and
context switches of *another* process can be read without instrumenting it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import resource
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(os.environ.get("BENCH_RESULTS_DIR") or ROOT / "benchmarks" / "results")
"""``$BENCH_RESULTS_DIR`` moves results elsewhere (the smoke tests use a temporary dir)."""
PLOTS_DIR = Path(os.environ.get("BENCH_PLOTS_DIR") or ROOT / "docs" / "plots")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------- limits and probes


def raise_nofile() -> tuple[int, int]:
    """Raise this process's open-files soft limit to the hard limit; returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _status(pid: int) -> dict[str, str]:
    fields: dict[str, str] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def rss_kib(pid: int) -> int:
    """Resident set size in KiB (what the operator's monitoring shows as memory)."""
    with open(f"/proc/{pid}/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * PAGE // 1024


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the process (all threads) so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        # The command name may contain spaces; fields after ``)`` are fixed.
        rest = fh.read().rpartition(")")[2].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def _status_task(pid: int, tid: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    with open(f"/proc/{pid}/task/{tid}/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def thread_stats(pid: int) -> dict[int, tuple[int, int, int]]:
    """Per thread: (CPU ns, voluntary, involuntary context switches).

    Per thread, because threads come and go (Qt's pool threads retire after
    30 s idle) and a thread's counters vanish with it: a window's figure is
    the sum of per-thread differences (``thread_deltas``).
    A voluntary switch is the thread going to sleep, so each wake-up from a
    timer or a socket counts once.
    """
    stats: dict[int, tuple[int, int, int]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", encoding="ascii") as fh:
                cpu_ns = int(fh.read().split()[0])
            fields = _status_task(pid, tid)
        except (FileNotFoundError, ProcessLookupError):
            continue
        stats[int(tid)] = (
            cpu_ns,
            int(fields["voluntary_ctxt_switches"]),
            int(fields["nonvoluntary_ctxt_switches"]),
        )
    return stats


def thread_deltas(
    before: dict[int, tuple[int, int, int]], after: dict[int, tuple[int, int, int]]
) -> dict[str, float]:
    """CPU seconds and switches in a window; threads born inside it count from zero.

    Threads that ended inside the window are lost (reported as ``threads_ended``).
    """
    cpu = vol = invol = 0
    for tid, (c, v, i) in after.items():
        c0, v0, i0 = before.get(tid, (0, 0, 0))
        cpu, vol, invol = cpu + c - c0, vol + v - v0, invol + i - i0
    return {
        "cpu_s": cpu / 1e9,
        "voluntary": vol,
        "involuntary": invol,
        "threads_started": len(set(after) - set(before)),
        "threads_ended": len(set(before) - set(after)),
    }


def context_switches(pid: int) -> tuple[int, int]:
    """(voluntary, involuntary) context switches of the live threads."""
    stats = thread_stats(pid).values()
    return sum(s[1] for s in stats), sum(s[2] for s in stats)


def thread_count(pid: int) -> int:
    return int(_status(pid)["Threads"])


# ---------------------------------------------------------------- machine and results


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """The facts a reader needs to compare figures from two machines."""
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nofile_hard_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
        "loadavg_at_start": os.getloadavg(),
        "versions": {
            name: _version(name)
            for name in (
                "websockets",
                "msgspec",
                "SQLAlchemy",
                "aiosqlite",
                "PySide6-Essentials",
                "qasync",
                "redis",
                "matplotlib",
            )
        },
    }


@dataclasses.dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure against its target, with the same-run baseline when there is one.

    ``ratio`` is value / baseline; ``met`` compares either the ratio or the
    value (``target_on``) with ``target`` in the direction ``lower_is_better``.
    """

    name: str
    value: float
    unit: str
    target: float | None
    """None for a figure reported for information, with no target."""
    target_on: str = "value"
    """"value" or "ratio": which number the target applies to."""
    baseline: float | None = None
    baseline_name: str = ""
    lower_is_better: bool = True
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        measured = self.ratio if self.target_on == "ratio" else self.value
        if measured is None or math.isnan(measured):
            return False
        return measured <= self.target if self.lower_is_better else measured >= self.target

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["ratio"] = self.ratio
        data["met"] = self.met
        return data

    def line(self) -> str:
        ratio = f"  ratio {self.ratio:.2f}" if self.ratio is not None else ""
        base = (
            f"  (baseline {self.baseline_name} {self.baseline:.4g} {self.unit})"
            if self.baseline is not None
            else ""
        )
        head = f"{self.name}: {self.value:.4g} {self.unit}{base}{ratio}"
        if self.target is None:
            return f"{head}  (no target)"
        cmp = "<=" if self.lower_is_better else ">="
        on = "ratio " if self.target_on == "ratio" else ""
        verdict = "MET" if self.met else "NOT MET"
        return f"{head}  target {on}{cmp} {self.target:g}: {verdict}"


def write_results(
    name: str, figures: Sequence[Figure], data: dict[str, Any], started: float
) -> Path:
    """``benchmarks/results/<name>.json``: figures, raw data and the machine."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {
        "benchmark": name,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "duration_s": round(time.monotonic() - started, 1),
        "machine": machine(),
        "figures": [f.as_dict() for f in figures],
        "data": data,
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    for figure in figures:
        print(figure.line())
    print(f"results: {path}")
    return path


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of unsorted values; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[rank]


# ---------------------------------------------------------------- child processes


class ChildProcess:
    """A child that announces readiness with one stdout line (``listening on URL``).

    The lines read until then are kept in ``lines``; later output stays in the
    pipe. Every child is bounded in time by the caller and killed if it does
    not stop on SIGTERM.
    """

    def __init__(self, argv: Sequence[str], *, ready_prefix: str, timeout: float = 60.0) -> None:
        self.argv = list(argv)
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=None,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self.ready_line = self._wait_for(ready_prefix, timeout)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_for(self, prefix: str, timeout: float) -> str:
        # Raw reads on the descriptor: a buffered readline() may pull two lines
        # out of the pipe at once, and select() then waits for data that is
        # already in the buffer (a slow reader on a busy machine hung here).
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        pending = b""
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                *complete, pending = (pending + chunk).split(b"\n")
                found = None
                for raw in complete:
                    line = raw.decode(errors="replace")
                    self.lines.append(line)
                    if found is None and line.startswith(prefix):
                        found = line.strip()
                if found is not None:
                    return found
        self.stop()
        raise RuntimeError(f"{self.argv[:4]} did not print {prefix!r}; output: {self.lines}")

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode


class BenchServer(ChildProcess):
    """``benchmarks._server`` (the real presence server) or ``benchmarks._raw_server``."""

    def __init__(self, module: str, *args: str, timeout: float = 60.0) -> None:
        super().__init__(
            [sys.executable, "-m", module, *args], ready_prefix="listening on", timeout=timeout
        )
        self.url = self.ready_line.split()[-1]
        self.port = int(self.url.rsplit(":", 1)[1])
        nofile = [line for line in self.lines if line.startswith("nofile ")]
        self.nofile = tuple(int(x) for x in nofile[0].split()[1:3]) if nofile else None
        loops = [line.split()[2] for line in self.lines if line.startswith("event loop ")]
        self.loop_module = loops[0] if loops else ""
        """The module of the child's event loop class (``asyncio.unix_events``, ``uvloop``)."""


@contextlib.contextmanager
def running(*children: ChildProcess) -> Iterator[None]:
    try:
        yield
    finally:
        for child in children:
            child.stop()


# ---------------------------------------------------------------- plots


def pyplot() -> Any:
    """matplotlib with a file-only backend and a small, readable default style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "figure.figsize": (6.4, 3.6),
            "figure.dpi": 90,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "font.size": 9,
        }
    )
    return plt


def save_plot(fig: Any, name: str) -> Path:
    PLOTS_DIR.mkdir(parents=True, exist_ok=True)
    path = PLOTS_DIR / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata={"Software": None})
    print(f"plot: {path}")
    return path
