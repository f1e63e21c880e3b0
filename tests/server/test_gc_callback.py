"""The GC policy's callback runs wherever a collection happens, even at the recursion limit."""

from __future__ import annotations

import pytest

from presence_server.edge import gc_policy


class DeepInTheStack:
    """Stands in for the set of policies when the interpreter is out of stack."""

    def __iter__(self) -> object:
        raise RecursionError("maximum recursion depth exceeded")


def test_a_collection_at_the_recursion_limit_is_dropped_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Seen in the server fuzz: a collection while a deeply nested frame was being
    # parsed printed "Exception ignored in: _on_gc ... RecursionError" to the log.
    monkeypatch.setattr(gc_policy, "_observed", DeepInTheStack())
    gc_policy._on_gc("start", {"generation": 2})
    gc_policy._on_gc("stop", {"generation": 2})  # must not raise
