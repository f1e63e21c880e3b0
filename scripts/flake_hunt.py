"""Run the test suite (or part of it) N times under CPU load; list every test that ever failed.

A test that fails once in twenty runs on a busy machine blocks a change from
landing as surely as one that always fails, and it will not show up in a
single run. This script makes the load on purpose: besides pytest it keeps
``--hogs`` processes spinning on the CPU (by default one), so the
suite sees the contention of a shared CI machine.

    uv run python scripts/flake_hunt.py --runs 5                  # the default tier
    uv run python scripts/flake_hunt.py --runs 3 -- -m slow -n 0  # the slow tier
    uv run python scripts/flake_hunt.py --runs 20 --hogs 4 -- tests/chaos -m slow

Everything after ``--`` goes to pytest. Each run writes a JUnit XML report;
the summary lists, for each test that failed or errored at least once, how
many of the runs it failed in and the first line of its first failure, then
each run's wall time and counts. The exit code is 0 only if no test failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


@dataclasses.dataclass
class RunResult:
    number: int
    seconds: float
    exit_code: int
    passed: int = 0
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    skipped: int = 0


def _spin() -> None:  # pragma: no cover - runs in a child process
    while True:
        pass


@contextmanager
def cpu_hogs(count: int) -> Iterator[None]:
    """``count`` processes that keep a core busy until the block ends."""
    procs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(count)]
    for proc in procs:
        proc.start()
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join()


def read_report(path: Path, result: RunResult) -> None:
    """Fill ``result`` from a JUnit XML report (pytest's ``--junitxml``)."""
    if not path.exists():
        return
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            first = (problem.get("message") or problem.text or "").strip().splitlines()
            result.failed.append((name, first[0][:160] if first else ""))
        elif case.find("skipped") is not None:
            result.skipped += 1
        else:
            result.passed += 1


def run_once(number: int, pytest_args: Sequence[str], reports: Path) -> RunResult:
    report = reports / f"run-{number}.xml"
    command = ["uv", "run", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"]
    command += list(pytest_args)
    started = time.monotonic()
    log = reports / f"run-{number}.log"
    with log.open("wb") as out:
        code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT)
    result = RunResult(number, time.monotonic() - started, code)
    read_report(report, result)
    return result


def summary(results: Sequence[RunResult], reports: Path) -> str:
    lines = [f"{len(results)} runs; logs and reports in {reports}", ""]
    for r in results:
        lines.append(
            f"run {r.number}: exit {r.exit_code}, {r.seconds:.0f} s, "
            f"{r.passed} passed, {len(r.failed)} failed, {r.skipped} skipped"
        )
    failures: dict[str, list[tuple[int, str]]] = {}
    for r in results:
        for name, message in r.failed:
            failures.setdefault(name, []).append((r.number, message))
    lines.append("")
    if not failures:
        lines.append("no test failed in any run")
    else:
        lines.append(f"{len(failures)} test(s) failed at least once:")
        for name, seen in sorted(failures.items(), key=lambda kv: -len(kv[1])):
            runs = ", ".join(str(n) for n, _ in seen)
            lines.append(f"  {len(seen)}/{len(results)}  {name}  (runs {runs})")
            lines.append(f"        {seen[0][1]}")
    crashed = [r for r in results if r.exit_code not in (0, 1) and not r.failed]
    for r in crashed:
        lines.append(
            f"run {r.number} ended with exit code {r.exit_code} and no failed test: see its log"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pytest_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, pytest_args = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="how many times (default 5)")
    parser.add_argument(
        "--hogs",
        type=int,
        default=1,
        help="busy processes beside pytest (default 1: half this 2-core machine; 0 for none)",
    )
    parser.add_argument(
        "--reports", type=Path, help="where reports and logs go (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    reports = args.reports or Path(tempfile.mkdtemp(prefix="flake-hunt-"))
    reports.mkdir(parents=True, exist_ok=True)
    results = []
    with cpu_hogs(args.hogs):
        for number in range(1, args.runs + 1):
            result = run_once(number, pytest_args, reports)
            results.append(result)
            print(
                f"run {number}/{args.runs}: exit {result.exit_code} in {result.seconds:.0f} s, "
                f"{len(result.failed)} failed",
                flush=True,
            )
    text = summary(results, reports)
    (reports / "summary.txt").write_text(text + "\n")
    print()
    print(text)
    return 0 if all(not r.failed and r.exit_code == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
