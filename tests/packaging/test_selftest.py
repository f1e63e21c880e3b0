"""The self-test: passes from source, reports clearly, and fails when a part is broken."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import ClassVar

import keyring.backend
import pytest
from keyring.backends import chainer, fail

from presence_desktop import selftest
from presence_desktop.selftest import Check, Outcome, Report

pytestmark = pytest.mark.slow  # each test runs presence-desktop --self-test as a process

ROOT = Path(__file__).resolve().parents[2]


def run_selftest(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The self-test in a fresh process: it builds its own QApplication, as in the binary."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path))
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=ROOT,
        env=env,
    )


RUN = "import sys; from presence_desktop.__main__ import main; sys.exit(main(['--self-test']))"
"""Through the entry point's flag, as ``presence-desktop --self-test`` runs it."""


def test_passes_from_source_with_every_check_reported(tmp_path: Path) -> None:
    result = run_selftest(RUN, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("presence-desktop ") and "from source" in lines[0]
    names = [line.split()[0] for line in lines[1:-1]]
    assert names == [
        "qt",
        "widgets",
        "tray",
        "qasync",
        "websockets",
        "tls",
        "keychain",
        "keychain-helper",
        "bridge",
        "resources",
    ]
    assert "platform 'offscreen'" in result.stdout
    assert "presence.v1 round trip over 127.0.0.1:" in result.stdout
    assert "editor hello and report via the bridge" in result.stdout
    assert "tray icon rendered with 5 badges" in result.stdout
    assert "keychain-helper  ok    answered; its backend: keyring.backends" in result.stdout
    assert lines[-1].startswith("passed: ")


def test_a_build_without_its_art_fails_and_names_the_parts(tmp_path: Path) -> None:
    # A bundle that lost resources/: the tray must fail loudly, not draw nothing.
    code = (
        "import sys; from pathlib import Path\n"
        "from presence_desktop.platform import bundle\n"
        f"bundle.resources_dir = lambda: Path({str(tmp_path)!r})\n"
        "from presence_desktop import selftest\n"
        "sys.exit(selftest.run())"
    )
    result = run_selftest(code, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:-1]}
    assert "FAIL" in lines["qt"] and "icon art missing" in lines["qt"]
    assert "FAIL" in lines["resources"] and "no app icon" in lines["resources"]
    assert "FAIL" not in lines["websockets"]
    assert result.stdout.splitlines()[-1].startswith("FAILED: ")


def test_report_is_aligned_and_counts_outcomes() -> None:
    report = Report(
        "header",
        [
            Check("qt", Outcome.OK, "fine"),
            Check("keychain", Outcome.WARN, "none"),
            Check("bridge", Outcome.FAIL, "broken"),
        ],
        seconds=0.5,
    )
    assert not report.passed
    assert report.render() == (
        "header\n"
        "  qt        ok    fine\n"
        "  keychain  warn  none\n"
        "  bridge    FAIL  broken\n"
        "FAILED: 1 ok, 1 warnings, 1 failed (0.50 s)\n"
    )
    report.checks.pop()
    assert report.passed


class PlaintextKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        pass

    def delete_password(self, service: str, username: str) -> None:
        pass


PlaintextKeyring.__module__ = "keyrings.alt.file"


def test_keychain_judgement(memory_keyring: keyring.backend.KeyringBackend) -> None:
    assert selftest.describe_keyring(memory_keyring).outcome is Outcome.OK
    missing = selftest.describe_keyring(fail.Keyring())
    assert missing.outcome is Outcome.WARN
    assert "will not be remembered" in missing.detail
    plain = selftest.describe_keyring(PlaintextKeyring())
    assert plain.outcome is Outcome.FAIL
    assert "plaintext" in plain.detail

    # A chain is only as safe as its members.
    class Chain(chainer.ChainerBackend):
        backends: ClassVar = [memory_keyring, PlaintextKeyring()]  # type: ignore[misc]

    assert selftest.describe_keyring(Chain()).outcome is Outcome.FAIL


def test_this_environment_has_the_native_keyring_backend() -> None:
    assert selftest.native_backend_problem() is None
    assert selftest.native_backend_problem("plan9") is None


async def test_a_hanging_check_is_reported_not_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(selftest, "CHECK_TIMEOUT", 0.05)
    never: asyncio.Future[Check] = asyncio.get_running_loop().create_future()
    result = await selftest._guard("tray", never)
    assert result == Check("tray", Outcome.FAIL, "no answer within 0 s")


async def test_a_blocking_check_runs_aside_and_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selftest, "CHECK_TIMEOUT", 0.05)
    release = threading.Event()

    def stuck() -> Check:
        release.wait(10)
        return Check("keychain", Outcome.OK, "late")

    result = await selftest._in_thread("keychain", stuck)
    release.set()
    assert result.outcome is Outcome.FAIL


async def test_an_exception_in_a_check_becomes_a_failure_line() -> None:
    def broken() -> Check:
        raise RuntimeError("plugin missing")

    result = await selftest._in_thread("bridge", broken)
    assert result == Check("bridge", Outcome.FAIL, "RuntimeError: plugin missing")


def test_without_stdout_the_report_goes_to_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    selftest._emit("report\n", None)
    assert (tmp_path / "presence-desktop-self-test.txt").read_text() == "report\n"
    out = io.StringIO()
    selftest._emit("report\n", out)
    assert out.getvalue() == "report\n"
