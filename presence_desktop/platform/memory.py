"""Give the memory start-up needed back to the OS.

Start-up allocates and frees a lot (module code objects being compiled,
the first snapshot decoded, SVG art parsed, icons rendered); glibc keeps the
freed pages in its heaps, so a tray app that then idles for days would hold
them all the while. One ``malloc_trim(0)`` once the app has settled returns
them. Elsewhere (macOS, Windows, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import sys

log = logging.getLogger(__name__)


def trim_heap() -> bool:
    """Collect garbage, then return free heap pages to the OS; False where unsupported."""
    gc.collect()
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return False  # not glibc
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim(0)
    return True
