"""The benchmarks' event-loop switch: a run asked for a loop gets exactly that loop."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util

import pytest

from benchmarks import _loops


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


@pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="no uvloop build here")
def test_uvloop_runs_when_asked_for() -> None:
    assert _loops.run(_loop_module(), name="uvloop") == "uvloop"


def test_the_standard_loop_runs_when_asked_for() -> None:
    assert _loops.run(_loop_module(), name="asyncio").startswith("asyncio.")


def test_an_unknown_loop_is_refused_before_anything_runs() -> None:
    with pytest.raises(ValueError, match="unknown event loop 'trio'"):
        _loops.new_event_loop("trio")


@pytest.mark.parametrize(
    ("text", "loops"),
    [("asyncio", ["asyncio"]), ("uvloop, asyncio", ["uvloop", "asyncio"])],
)
def test_loop_lists_keep_their_order(text: str, loops: list[str]) -> None:
    assert _loops.parse_loops(text) == loops


@pytest.mark.parametrize("text", ["", "trio", "asyncio,asyncio", "asyncio,,trio"])
def test_bad_loop_lists_are_explained(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected distinct names"):
        _loops.parse_loops(text)
