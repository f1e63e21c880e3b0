"""Desktop cold start (to tray icon shown) and RSS after start, against a bare tray app.

    uv run python -m benchmarks.desktop_start [--runs 5]

On a virtual desktop (Xvfb + trayer, as in the display tests) the baseline
(``benchmarks/baseline_tray.py``: PySide6-Essentials, an icon drawn in code,
a one-item menu) and the real app (``python -m presence_desktop --server
URL``, signed in through a stored session, connected to a seeded server with
20 friends) are started alternately, a warm-up run of each first. "Shown"
means the X server has the process's icon window reparented into the tray
host and viewable (``benchmarks._display``). RSS is read 3 s after that,
when the app has connected and drawn its state. Medians of ``--runs``.
Writes ``benchmarks/results/desktop_start.json``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.desktop.ui.xdesktop import missing, virtual_desktop

from ._common import BenchServer, Figure, rss_kib, write_results
from ._display import XProbe, app_argv, app_env, baseline_argv, launch, stop, wait_docked
from ._seed import seed, token_for

SETTLE_S = 3.0


def one_start(
    probe: XProbe, argv: list[str], env: dict[str, str], settle: float = SETTLE_S
) -> dict[str, float]:
    t0 = time.perf_counter()
    proc = launch(argv, env)
    try:
        shown = wait_docked(probe, proc, t0, timeout=60)
        time.sleep(settle)
        return {"shown_s": shown, "rss_kib": rss_kib(proc.pid)}
    finally:
        stop(proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--settle", type=float, default=SETTLE_S, help="seconds before RSS")
    args = parser.parse_args(argv)
    gone = missing("desktop")
    if gone:
        raise SystemExit(f"needs {', '.join(gone)} (apt-get install xvfb trayer x11-utils)")
    started = time.monotonic()
    runs: dict[str, list[dict[str, float]]] = {"baseline": [], "app": []}
    warmup: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-start-") as tmp:
        root = Path(tmp)
        url = seed(root / "server.sqlite3", 100, 20)
        server = BenchServer("benchmarks._server", "--database", url)
        try:
            with virtual_desktop() as desktop:
                probe = XProbe(desktop.display)
                env = app_env(desktop.env, root / "home", token_for(0))
                commands = {"baseline": baseline_argv(), "app": app_argv(server.url)}
                for name, command in commands.items():
                    warmup[name] = one_start(probe, command, env, args.settle)
                for i in range(args.runs):
                    for name, command in commands.items():
                        result = one_start(probe, command, env, args.settle)
                        runs[name].append(result)
                        print(
                            f"  run {i + 1} {name:8s} icon shown {result['shown_s'] * 1000:6.0f} ms"
                            f"  RSS {result['rss_kib'] / 1024:6.1f} MiB",
                            flush=True,
                        )
                probe.close()
        finally:
            server.stop()

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    figures = [
        Figure(
            "cold start to tray icon shown",
            median("app", "shown_s") * 1000,
            "ms",
            target=1.5,
            target_on="ratio",
            baseline=median("baseline", "shown_s") * 1000,
            baseline_name="bare PySide6 tray",
        ),
        Figure(
            "RSS after start",
            median("app", "rss_kib") / 1024,
            "MiB",
            target=1.5,
            target_on="ratio",
            baseline=median("baseline", "rss_kib") / 1024,
            baseline_name="bare PySide6 tray",
        ),
    ]
    write_results("desktop_start", figures, {"runs": runs, "warmup": warmup}, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
