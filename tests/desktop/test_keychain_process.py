"""The keychain through a helper process: same answers and advice, token never in argv.

The tray reads and writes its session token through
``presence-desktop --keychain-helper`` children (platform/keychain_process.py)
so keyring's import chain never stays in the long-running process. The
children here are real processes of this program using a file-backed
keyring (``tests/desktop/keychain_file.py``); the in-process ``serve`` tests
use the suite's in-memory keyring.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from presence_desktop.platform.credentials import CredentialStore
from presence_desktop.platform.keychain_process import (
    NO_ANSWER,
    ChildCredentialStore,
    KeychainError,
    helper_backend,
    serve,
)
from tests.conftest import MemoryKeyring
from tests.desktop.keychain_file import calls

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "sess-7f3a9c1e0b5d4e2a8c6f"


@pytest.fixture
def keychain_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Helper children use a keychain kept in this file."""
    path = tmp_path / "keychain.json"
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "tests.desktop.keychain_file.FileKeyring")
    monkeypatch.setenv("KEYCHAIN_FILE", str(path))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.chdir(ROOT)
    return path


# ---------------------------------------------------------------- real children


@pytest.mark.slow
def test_round_trip_across_processes_keyed_by_server(keychain_file: Path) -> None:
    ChildCredentialStore("wss://Presence.Example.com/").set(TOKEN)
    ChildCredentialStore("wss://other.example:8443").set("other-token-123")
    # A fresh store (a later start of the app) reads what the first one saved;
    # another spelling of the same server is the same entry.
    assert ChildCredentialStore("wss://presence.example.com").get() == TOKEN
    assert ChildCredentialStore("wss://other.example:8443").get() == "other-token-123"
    ChildCredentialStore("WSS://presence.example.com/").delete()
    assert ChildCredentialStore("wss://presence.example.com").get() is None
    assert ChildCredentialStore("wss://other.example:8443").get() == "other-token-123"
    ChildCredentialStore("wss://presence.example.com").delete()  # twice is fine


@pytest.mark.slow
def test_token_is_read_once_and_never_on_a_command_line(keychain_file: Path) -> None:
    ChildCredentialStore("ws://127.0.0.1:9").set(TOKEN)
    store = ChildCredentialStore("ws://127.0.0.1:9")
    store.prefetch()
    for _ in range(3):  # every reconnect asks again
        assert store.get() == TOKEN
    log = calls(keychain_file)
    assert [c["op"] for c in log] == ["set", "get"]  # one child read it; reconnects did not
    for call in log:
        assert call["argv"][-1] == "--keychain-helper"
        assert not any(TOKEN in arg for arg in call["argv"])
        assert not any(TOKEN in value for value in call["env"].values())


@pytest.mark.slow
def test_saving_after_a_prefetch_keeps_the_saved_token(keychain_file: Path) -> None:
    ChildCredentialStore("ws://127.0.0.1:9").set("old-token-000")
    store = ChildCredentialStore("ws://127.0.0.1:9")
    store.prefetch()  # reads the old token in the background
    store.set(TOKEN)  # a sign-in finished meanwhile
    assert store.get() == TOKEN
    assert ChildCredentialStore("ws://127.0.0.1:9").get() == TOKEN


@pytest.mark.slow
def test_no_keychain_keeps_the_token_for_this_run_and_says_how_to_fix_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    store = ChildCredentialStore("ws://127.0.0.1:9")
    assert store.get() is None  # nothing can be stored, so nothing is
    with pytest.raises(KeychainError) as err:
        store.set(TOKEN)
    assert err.value.title == "No keychain to remember your sign-in"
    assert "GNOME Keyring" in err.value.message and "KWallet" in err.value.message
    assert store.get() == TOKEN  # signed in for this run
    store.delete()
    assert store.get() is None


def test_a_helper_that_dies_is_reported_with_advice() -> None:
    store = ChildCredentialStore("ws://127.0.0.1:9", argv=[sys.executable, "-c", "exit(3)"])
    with pytest.raises(KeychainError) as err:
        store.get()
    assert err.value.error == NO_ANSWER
    assert "keychain" in err.value.message
    with pytest.raises(KeychainError):
        store.get()  # not remembered as "no token": asked again next time


def test_bad_requests_are_refused_before_any_process_starts() -> None:
    store = ChildCredentialStore("ws://127.0.0.1:9", argv=["/nonexistent/helper"])
    with pytest.raises(ValueError):
        store.set("")
    # The request is written into a pipe before the child runs: it must fit.
    huge = ChildCredentialStore("ws://h.example/" + "a" * 20_000, argv=["/nonexistent/helper"])
    with pytest.raises(ValueError):
        huge.get()


# ---------------------------------------------------------------- the helper side


def _serve(request: bytes) -> tuple[int, dict[str, object]]:
    read_in, write_in = os.pipe()
    read_out, write_out = os.pipe()
    os.write(write_in, request)
    os.close(write_in)
    try:
        status = serve(read_in, write_out)
    finally:
        os.close(read_in)
        os.close(write_out)
    with os.fdopen(read_out, "rb") as answer:
        return status, json.loads(answer.read())


def test_helper_answers_from_the_keychain(memory_keyring: MemoryKeyring) -> None:
    status, answer = _serve(b'{"op": "set", "server": "ws://h.example", "token": "t-1"}')
    assert (status, answer) == (0, {})
    store = CredentialStore("ws://h.example")
    assert memory_keyring.items[(store.service, store.account)] == "t-1"
    assert _serve(b'{"op": "get", "server": "ws://H.example/"}') == (0, {"token": "t-1"})
    assert _serve(b'{"op": "delete", "server": "ws://h.example"}') == (0, {})
    assert _serve(b'{"op": "get", "server": "ws://h.example"}') == (0, {"token": None})


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"",
        b"not json",
        b"[]",
        b'{"op": "dump", "server": "ws://h.example"}',
        b'{"op": "get"}',
        b'{"op": "get", "server": 5}',
        b'{"op": "set", "server": "ws://h.example"}',
        b'{"op": "set", "server": "ws://h.example", "token": ""}',
    ],
)
def test_a_malformed_request_changes_nothing(
    memory_keyring: MemoryKeyring, request_bytes: bytes
) -> None:
    memory_keyring.items[("presence-desktop ws://h.example", "session@ws://h.example")] = "keep"
    status, answer = _serve(request_bytes)
    assert status == 2
    assert answer == {"error": {"title": "Bad keychain request", "message": "", "code": ""}}
    assert memory_keyring.items == {
        ("presence-desktop ws://h.example", "session@ws://h.example"): "keep"
    }


def test_helper_names_its_backend_without_touching_an_entry(
    memory_keyring: MemoryKeyring,
) -> None:
    """What ``--self-test`` asks a helper: no entry read, so no unlock prompt."""
    assert _serve(b'{"op": "backend"}') == (0, {"backend": "tests.conftest.MemoryKeyring"})
    assert memory_keyring.items == {}


def test_a_dead_helper_fails_the_backend_question() -> None:
    with pytest.raises(KeychainError):
        helper_backend([sys.executable, "-c", "exit(1)"])
