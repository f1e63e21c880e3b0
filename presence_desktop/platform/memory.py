"""Memory start-up leaves behind, and how not to keep it.

PySide6's import hook (``shibokensupport.feature``) asks ``inspect.getsource``
of every module imported after PySide6, to see whether the module mentions
"PySide6" (and so may use its ``__feature__`` switches). That leaves the
source text of every one of them in ``linecache``: about 9 MiB of small
strings for this app, never read again, and interleaved with the modules'
own objects so that clearing the cache later frees no pages.
``read_sources_uncached`` gives the hook the same answer from a plain file
read that is not kept (measured: 92 → 83 MiB after the app's imports).

Start-up also allocates and frees a lot (the first snapshot decoded, SVG art
parsed, icons rendered); glibc keeps freed pages in its heaps, so a tray app
that idles for days would hold them. ``trim_heap`` returns them with one
``malloc_trim(0)``; it does nothing outside glibc (macOS, Windows, musl).
"""

from __future__ import annotations

import ctypes
import gc
import linecache
import logging
import sys

log = logging.getLogger(__name__)


def read_sources_uncached() -> bool:
    """Make PySide6's per-import source check read files without caching them.

    Call right after PySide6 is first imported. The check's answer is the
    same ("PySide6" appears in the module's source file); a module without
    a readable ``.py`` file (a frozen build) is "does not use PySide", as it
    was before. Returns False (and changes nothing) if this PySide6 has no
    such hook, so a future version that drops or renames it is harmless.
    """
    try:
        import PySide6.QtCore  # noqa: F401 (registers shiboken's support modules)
        from shibokensupport import feature  # type: ignore[import-not-found]
    except ImportError:
        return False
    if not callable(getattr(feature, "_mod_uses_pyside", None)):
        return False

    def mentions_pyside(module: object) -> bool:
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or not path.endswith(".py"):
            return False
        try:
            with open(path, encoding="utf-8", errors="replace") as source:
                return "PySide6" in source.read()
        except OSError:
            return False

    feature._mod_uses_pyside = mentions_pyside
    return True


def trim_heap() -> bool:
    """Drop cached module sources, collect garbage, return free heap pages to the OS.

    Returns False where the last step is unsupported.
    """
    linecache.clearcache()
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
