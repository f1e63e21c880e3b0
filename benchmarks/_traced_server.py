"""A benchmark server that reports where its memory is.

    python -m benchmarks._traced_server MODULE …

``MODULE`` is ``_server`` (the presence server) or ``_raw_server`` (the bare
websockets baseline), followed by that module's own arguments. The
environment says what to report:

* ``BENCH_TRACE_DIR`` set: ``tracemalloc`` runs (``BENCH_TRACE_FRAMES`` deep,
  default 25), and on SIGUSR1 the server collects garbage, dumps a snapshot
  to ``BENCH_TRACE_DIR/snapshot-<n>.pickle`` and prints ``snapshot <path>``;
  the parent (``benchmarks.connections --tracemalloc``) compares two of them
  to see what each login leaves behind.
* Always: on SIGUSR2 it prints ``allocator {json}``: pymalloc's arenas and
  the bytes in its live blocks (``sys._debugmallocstats``), and glibc's heap
  (``mallinfo2``), in bytes. RSS minus what live objects need is what the
  allocators hold: free blocks that partly used pools and arenas pin.

A separate module rather than flags of ``_server``: tracing slows every
allocation several times over, so it must never be on in a measured run.
The handlers run inside Python's signal handler, on the main thread between
two bytecodes, so the event loop is stopped and no connection changes
meanwhile.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
import re
import signal
import sys
import tempfile
import tracemalloc
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

from . import _raw_server, _server

SERVERS = {"_server": _server.main, "_raw_server": _raw_server.main}


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def glibc_heap() -> dict[str, int]:
    """glibc's main heap: bytes obtained (``arena``, plus mmapped ``hblkhd``),
    bytes in use (``uordblks``) and free inside it (``fordblks``)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return {
        "heap": info.arena,
        "mmapped": info.hblkhd,
        "in_use": info.uordblks,
        "free": info.fordblks,
    }


_PYMALLOC_LINES = {
    "arenas_current": r"# arenas allocated current\s*=\s*([\d,]+)",
    "allocated_blocks": r"# bytes in allocated blocks\s*=\s*([\d,]+)",
    "available_blocks": r"# bytes in available blocks\s*=\s*([\d,]+)",
    "unused_pools": r"\d+ unused pools \* \d+ bytes\s*=\s*([\d,]+)",
    "pool_headers": r"# bytes lost to pool headers\s*=\s*([\d,]+)",
    "quantization": r"# bytes lost to quantization\s*=\s*([\d,]+)",
    "total": r"Total\s*=\s*([\d,]+)",
}


def pymalloc() -> dict[str, int]:
    """``sys._debugmallocstats`` (it writes to the C-level stderr), parsed."""
    with tempfile.TemporaryFile() as capture:
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(capture.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read().decode(errors="replace")
    found: dict[str, int] = {}
    for key, pattern in _PYMALLOC_LINES.items():
        match = re.search(pattern, text)
        if match:
            found[key] = int(match.group(1).replace(",", ""))
    return found


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def garbage() -> dict[str, Any]:
    """Collect everything the collector can, and say what it was: cyclic
    garbage that waited for a collection (the number of objects by type)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        found = gc.collect()
        kinds = Counter(type(o).__qualname__ for o in gc.garbage)
        sizes = sum(sys.getsizeof(o) for o in gc.garbage)
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
    gc.collect()
    return {"objects": found, "shallow_bytes": sizes, "types": dict(kinds.most_common(25))}


def main() -> None:
    run = SERVERS[sys.argv.pop(1)]
    trace_dir = os.environ.get("BENCH_TRACE_DIR")
    taken = 0

    def snapshot(_signum: int, _frame: FrameType | None) -> None:
        nonlocal taken
        assert trace_dir is not None
        gc.collect()
        taken += 1
        path = Path(trace_dir) / f"snapshot-{taken}.pickle"
        tracemalloc.take_snapshot().dump(str(path))
        print(f"snapshot {path}", flush=True)

    def allocator(_signum: int, _frame: FrameType | None) -> None:
        rss_before = _rss()
        stats: dict[str, Any] = {"garbage": garbage()}
        stats.update(pymalloc=pymalloc(), glibc=glibc_heap(), rss=[rss_before, _rss()])
        print(f"allocator {json.dumps(stats)}", flush=True)

    if trace_dir:
        tracemalloc.start(int(os.environ.get("BENCH_TRACE_FRAMES", "25")))
        signal.signal(signal.SIGUSR1, snapshot)
    signal.signal(signal.SIGUSR2, allocator)
    run()


if __name__ == "__main__":
    main()
