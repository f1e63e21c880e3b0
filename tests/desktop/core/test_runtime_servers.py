"""Runtime state per server: switching keeps each server's inbox, acked seq and
unsent messages, an old single-server file becomes the configured server's,
and the number of servers kept is bounded without ever dropping unsent messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from presence_desktop.core.settings import (
    RUNTIME_VERSION,
    SERVERS_KEPT,
    PendingMessage,
    SettingsStore,
    StoredMessage,
)
from presence_protocol import Status
from tests.support.clock import FakeClock

A = "wss://a.example.org"
B = "wss://b.example.org"


def make_store(tmp_path: Path, clock: FakeClock | None = None) -> SettingsStore:
    return SettingsStore(
        tmp_path / "config", tmp_path / "state", clock=clock or FakeClock(1_000_000.0, step=1)
    )


def message(i: int, text: str = "hi") -> StoredMessage:
    return StoredMessage(
        message_id=f"m{i}", seq=i, sender_id=2, sender_login="bob", text=text, sent_at=i
    )


def pending(text: str) -> PendingMessage:
    return PendingMessage(to=2, text=text, client_msg_id=f"c-{text}")


def state_file(tmp_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp_path / "state" / "state.json").read_text())
    return data


def test_switching_keeps_each_servers_state_and_switching_back_restores_it(
    tmp_path: Path,
) -> None:
    store = make_store(tmp_path)
    store.switch_runtime(A)
    store.update_runtime(inbox=[message(1)], acked_seq=1, pending_messages=[pending("later")])
    store.update_runtime(my_status=Status.DND)

    on_b = store.switch_runtime(B)
    assert (on_b.server_url, on_b.inbox, on_b.acked_seq, on_b.pending_messages) == (B, (), 0, ())
    assert on_b.my_status is Status.DND  # not per server: it is the person's
    store.update_runtime(inbox=[message(7, "from b")], acked_seq=7)

    # Across a restart too: the file holds both servers.
    again = make_store(tmp_path)
    assert again.runtime.server_url == B and again.runtime.inbox == (message(7, "from b"),)
    back = again.switch_runtime(A)
    assert back.inbox == (message(1),) and back.acked_seq == 1
    assert back.pending_messages == (pending("later"),)
    assert set(back.servers) == {B}
    assert back.servers[B].inbox == (message(7, "from b"),)
    assert state_file(tmp_path)["version"] == RUNTIME_VERSION == 2


def test_the_same_server_spelled_differently_is_one_entry(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.switch_runtime(A)
    store.update_runtime(inbox=[message(1)])
    store.switch_runtime(B)
    assert store.switch_runtime("https://a.example.org").inbox == (message(1),)


def test_clearing_the_current_server_leaves_the_others(tmp_path: Path) -> None:
    # What sign-out and account deletion do: only the current account's data goes.
    store = make_store(tmp_path)
    store.switch_runtime(A)
    store.update_runtime(inbox=[message(1)], acked_seq=1)
    store.switch_runtime(B)
    store.update_runtime(inbox=[message(5)], acked_seq=5, pending_messages=[pending("x")])
    store.update_runtime(inbox=(), acked_seq=0, pending_messages=())
    assert state_file(tmp_path)["inbox"] == []
    assert store.switch_runtime(A).inbox == (message(1),)
    assert B not in store.runtime.servers  # nothing left to keep for B


def test_an_old_runtime_file_becomes_the_configured_servers_state(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "settings.json").write_text(json.dumps({"version": 1, "server_url": A}))
    (tmp_path / "state").mkdir()
    old = {
        "version": 1,
        "acked_seq": 3,
        "inbox": [json.loads(json.dumps(msg_dict(3)))],
        "my_status": "away",
        "pending_messages": [{"to": 2, "text": "queued", "client_msg_id": "c-queued"}],
        "windows": {"popup": {"x": 1, "y": 2, "width": 300, "height": 400}},
    }
    (tmp_path / "state" / "state.json").write_text(json.dumps(old))

    store = make_store(tmp_path)
    assert store.runtime_load.migrated_from == 1 and store.load_problems == []
    runtime = store.runtime
    assert runtime.server_url == A and runtime.acked_seq == 3
    assert runtime.inbox == (message(3),)
    assert runtime.pending_messages == (pending("queued"),)
    assert runtime.my_status is Status.AWAY and runtime.windows["popup"].width == 300
    assert list((tmp_path / "state").glob("*.bak")) == []

    # Switching away and back keeps it, and the file is now version 2.
    store.switch_runtime(B)
    assert state_file(tmp_path)["version"] == 2
    assert state_file(tmp_path)["servers"][A]["pending_messages"][0]["text"] == "queued"
    assert make_store(tmp_path).switch_runtime(A).inbox == (message(3),)


def test_an_old_file_without_a_configured_server_goes_to_the_first_server(
    tmp_path: Path,
) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.json").write_text(
        json.dumps({"acked_seq": 3, "inbox": [msg_dict(3)]})  # no version: version 1
    )
    store = make_store(tmp_path)
    assert store.runtime.server_url == ""
    adopted = store.switch_runtime(A)
    assert adopted.server_url == A and adopted.inbox == (message(3),) and adopted.servers == {}


def test_a_newer_runtime_file_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.json").write_text(json.dumps({"version": 3, "acked_seq": 9}))
    store = make_store(tmp_path)
    assert store.runtime.acked_seq == 0
    assert [p.name.split("-")[0] for p in (tmp_path / "state").glob("*.bak")] == ["state.json.v3"]


def test_the_oldest_servers_go_beyond_the_bound_but_never_unsent_messages(
    tmp_path: Path,
) -> None:
    store = make_store(tmp_path)
    urls = [f"wss://s{i}.example.org" for i in range(SERVERS_KEPT + 3)]
    for i, url in enumerate(urls):
        store.switch_runtime(url)
        if i < 2:
            # The two oldest have unsent messages: they are kept whatever the bound.
            store.update_runtime(pending_messages=[pending(f"p{i}")])
        else:
            store.update_runtime(inbox=[message(i)], acked_seq=i)
    store.switch_runtime("wss://last.example.org")
    kept = set(store.runtime.servers)
    # The current server plus SERVERS_KEPT - 1 others: the two with unsent messages
    # and the most recently left; the oldest without unsent messages were dropped.
    assert kept == {urls[0], urls[1], *urls[-(SERVERS_KEPT - 3) :]}
    assert store.switch_runtime(urls[0]).pending_messages == (pending("p0"),)


def test_servers_with_unsent_messages_are_kept_beyond_the_bound(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    urls = [f"wss://s{i}.example.org" for i in range(SERVERS_KEPT + 2)]
    for url in urls:
        store.switch_runtime(url)
        store.update_runtime(pending_messages=[pending(url)])
    store.switch_runtime(A)
    assert set(store.runtime.servers) == set(urls)


def test_a_failed_save_still_switches_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store(tmp_path)
    store.switch_runtime(A)
    store.update_runtime(pending_messages=[pending("for a")])
    import presence_desktop.core.settings as settings_mod

    def full(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(settings_mod, "save_atomic", full)
    with pytest.raises(OSError, match="disk full"):
        store.switch_runtime(B)
    # A's queue must never be taken for B's.
    assert store.runtime.server_url == B and store.runtime.pending_messages == ()
    monkeypatch.undo()
    assert make_store(tmp_path).runtime.server_url == A  # the file still says A


def msg_dict(i: int) -> dict[str, Any]:
    return {
        "message_id": f"m{i}",
        "seq": i,
        "sender_id": 2,
        "sender_login": "bob",
        "text": "hi",
        "sent_at": i,
    }
