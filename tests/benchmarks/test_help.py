"""Every benchmark's ``--help`` prints: the Re-running table of
docs/performance.md sends people there first, and argparse only formats the
help texts (where a bare ``%`` breaks it) when someone asks for them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import benchmarks


def _takes_argv(name: str) -> bool:
    main = getattr(importlib.import_module(f"benchmarks.{name}"), "main", None)
    return main is not None and "argv" in inspect.signature(main).parameters


COMMANDS = sorted(
    info.name
    for info in pkgutil.iter_modules(benchmarks.__path__)
    if not info.name.startswith("_") and _takes_argv(info.name)
)


def test_every_benchmark_command_is_found() -> None:
    assert {"connections", "fanout", "reconnect_storm", "cross_instance"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_help_prints(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    main = importlib.import_module(f"benchmarks.{name}").main
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out
