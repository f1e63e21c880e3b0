"""``--loops asyncio,uvloop``: which event loops the benchmark servers run, in order."""

from __future__ import annotations

import argparse

from presence_server.loop import LOOP_NAMES


def parse_loops(text: str) -> list[str]:
    """Distinct loop names, comma-separated, in the order the runs happen."""
    names = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in names if x not in LOOP_NAMES]
    if bad or not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"expected distinct names out of {', '.join(LOOP_NAMES)}, got {text!r}"
        )
    return names
