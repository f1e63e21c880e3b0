"""Switching server loses nothing: a message queued for a server that is down
is delivered once when the person comes back to that server, and its inbox
shows again."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from presence_desktop.controller import Controller
from presence_desktop.core.api import ConnectionEvents, Link
from presence_desktop.core.settings import SettingsStore
from presence_desktop.core.state import PresenceState
from presence_desktop.platform.credentials import CredentialStore
from presence_protocol import SendMessage
from tests.conftest import MemoryKeyring
from tests.support.servers import ServerHandle

from ..desktop.net.helpers import fast_backoff, until
from .apps import App


def queued_texts(controller: Controller) -> list[str]:
    return [c.text for c in controller.client.pending() if isinstance(c, SendMessage)]


def texts_from(state: PresenceState, login: str) -> list[str]:
    return [m.text for m in state.inbox if m.sender_login == login]


async def test_a_message_queued_for_a_server_that_is_down_survives_two_switches(
    tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    server_a, server_b = ServerHandle(tmp_path / "a"), ServerHandle(tmp_path / "b")
    for handle, directory in ((server_a, "a"), (server_b, "b")):
        (tmp_path / directory).mkdir()
        await handle.start()
    bob = App(tmp_path / "bob", server_a.url, "bob")
    settings = SettingsStore(tmp_path / "alice" / "config", tmp_path / "alice" / "state")
    settings.update(server_url=server_a.url)
    alice, state, connection = alice_on(settings, server_a.url)
    online = lambda: connection.current.link is Link.ONLINE  # noqa: E731
    try:
        await bob.start()
        await alice.start()
        await until(online, connection.changed)
        assert state.me is not None
        alice_id, bob_id = state.me.id, bob.me
        alice.add_friend("bob")
        await until(lambda: alice_id in bob.state.incoming, bob.state.requests_changed)
        bob.controller.accept_friend(alice_id)
        await until(lambda: bob_id in state.friends, state.friend_added)

        # A message from bob reaches alice's inbox on A (stored, then acknowledged).
        bob.controller.send_message(alice_id, "hello from A")
        await until(lambda: settings.runtime.inbox, settings.runtime_changed)
        assert texts_from(state, "bob") == ["hello from A"]

        # A goes down; alice writes to bob anyway: the message waits in her queue.
        await server_a.stop()
        await until(lambda: not online(), connection.changed)
        alice.send_message(bob_id, "written while A was down")
        assert [m.text for m in settings.runtime.pending_messages] == ["written while A was down"]

        # She switches to B: another account there, an empty inbox, nothing queued.
        settings.update(server_url=server_b.url)
        await until(lambda: alice.client.url == server_b.url and online(), connection.changed)
        assert state.inbox == [] and settings.runtime.pending_messages == ()
        # A's inbox and queue are on disk under A (a restart here would keep them).
        on_disk = SettingsStore(tmp_path / "alice" / "config", tmp_path / "alice" / "state")
        kept = on_disk.runtime.servers[server_a.url]
        assert [m.text for m in kept.pending_messages] == ["written while A was down"]
        assert [m.text for m in kept.inbox] == ["hello from A"]

        # Back to A while it is still down: A's inbox shows again at once.
        settings.update(server_url=server_a.url)
        await until(lambda: alice.client.url == server_a.url, connection.changed)
        assert texts_from(state, "bob") == ["hello from A"]
        assert queued_texts(alice) == ["written while A was down"]

        # A comes back on the same port: bob gets the message exactly once.
        await server_a.start()
        await until(online, connection.changed)
        await until(lambda: not alice.client.pending(), alice.client.outbox_changed)
        await bob.wait_online()
        alice.send_message(bob_id, "marker")  # after it, no earlier copy can still arrive
        await until(lambda: "marker" in texts_from(bob.state, "alice"), bob.state.inbox_changed)
        assert texts_from(bob.state, "alice") == ["written while A was down", "marker"]
        assert texts_from(state, "bob") == ["hello from A"]  # shown once, not replayed
        assert settings.runtime.pending_messages == ()
    finally:
        await alice.stop()
        await bob.controller.stop()
        await server_a.stop()
        await server_b.stop()


def alice_on(
    settings: SettingsStore, url: str
) -> tuple[Controller, PresenceState, ConnectionEvents]:
    state, connection = PresenceState(), ConnectionEvents()
    controller = Controller(
        state=state,
        connection=connection,
        settings=settings,
        credentials=CredentialStore(url),
        credentials_for=CredentialStore,
        dev_login="alice",
        device="test",
        backoff=fast_backoff,
    )
    return controller, state, connection


async def test_an_old_single_server_state_file_is_shown_and_sent_after_the_upgrade(
    server: ServerHandle, make_app: Callable[..., App], tmp_path: Path
) -> None:
    bob = make_app("bob")
    alice_first = make_app("alice", home="alice-first")
    await bob.start()
    await alice_first.start()
    alice_id, bob_id = alice_first.me, bob.me
    alice_first.controller.add_friend("bob")
    await until(lambda: alice_id in bob.state.incoming, bob.state.requests_changed)
    bob.controller.accept_friend(alice_id)
    await until(lambda: bob_id in alice_first.state.friends, alice_first.state.friend_added)
    await alice_first.controller.stop()

    # What the previous app version left: one server's state, no server named in it.
    root = tmp_path / "alice"
    (root / "config").mkdir(parents=True)
    (root / "config" / "settings.json").write_text(json.dumps({"server_url": server.url}))
    (root / "state").mkdir()
    old = {
        "version": 1,
        "acked_seq": 0,
        "inbox": [
            {
                "message_id": "old-1",
                "seq": 1,
                "sender_id": bob_id,
                "sender_login": "bob",
                "text": "kept from the old version",
                "sent_at": 1,
                "read": True,
            }
        ],
        "pending_messages": [
            {"to": bob_id, "text": "queued before the upgrade", "client_msg_id": "upgrade-1"}
        ],
    }
    (root / "state" / "state.json").write_text(json.dumps(old))

    settings = SettingsStore(root / "config", root / "state")
    assert settings.runtime_load.migrated_from == 1
    alice, state, connection = alice_on(settings, server.url)
    try:
        await alice.start()
        assert texts_from(state, "bob") == ["kept from the old version"]
        await until(lambda: connection.current.link is Link.ONLINE, connection.changed)
        await until(
            lambda: "queued before the upgrade" in texts_from(bob.state, "alice"),
            bob.state.inbox_changed,
        )
        await until(lambda: not settings.runtime.pending_messages, settings.runtime_changed)
        assert json.loads((root / "state" / "state.json").read_text())["version"] == 2
    finally:
        await alice.stop()


async def test_signing_out_of_one_server_keeps_the_other_servers_inbox(tmp_path: Path) -> None:
    server_a, server_b = ServerHandle(tmp_path / "a"), ServerHandle(tmp_path / "b")
    for handle, directory in ((server_a, "a"), (server_b, "b")):
        (tmp_path / directory).mkdir()
        await handle.start()
    bob = App(tmp_path / "bob", server_a.url, "bob")
    settings = SettingsStore(tmp_path / "alice" / "config", tmp_path / "alice" / "state")
    settings.update(server_url=server_a.url)
    alice, state, connection = alice_on(settings, server_a.url)
    online = lambda: connection.current.link is Link.ONLINE  # noqa: E731
    try:
        await bob.start()
        await alice.start()
        await until(online, connection.changed)
        assert state.me is not None
        alice_id = state.me.id
        alice.add_friend("bob")
        await until(lambda: alice_id in bob.state.incoming, bob.state.requests_changed)
        bob.controller.accept_friend(alice_id)
        await until(lambda: bob.me in state.friends, state.friend_added)
        bob.controller.send_message(alice_id, "on A")
        await until(lambda: settings.runtime.inbox, settings.runtime_changed)

        settings.update(server_url=server_b.url)
        await until(lambda: alice.client.url == server_b.url and online(), connection.changed)
        bob_on_b = App(tmp_path / "bob-b", server_b.url, "bob")
        try:
            await bob_on_b.start()
            assert state.me is not None
            alice_b = state.me.id
            bob_on_b.controller.add_friend("alice")
            await until(lambda: bob_on_b.me in state.incoming, state.requests_changed)
            alice.accept_friend(bob_on_b.me)
            await until(lambda: alice_b in bob_on_b.state.friends, bob_on_b.state.friend_added)
            bob_on_b.controller.send_message(alice_b, "on B")
            await until(lambda: settings.runtime.inbox, settings.runtime_changed)
        finally:
            await bob_on_b.controller.stop()

        # Sign out of B: B's messages leave this computer, A's stay.
        alice.sign_out()
        await until(lambda: not settings.runtime.inbox, settings.runtime_changed)
        on_disk = (tmp_path / "alice" / "state" / "state.json").read_text()
        assert "on B" not in on_disk and "on A" in on_disk

        settings.update(server_url=server_a.url)
        await until(lambda: alice.client.url == server_a.url and online(), connection.changed)
        assert texts_from(state, "bob") == ["on A"]
    finally:
        await alice.stop()
        await bob.controller.stop()
        await server_a.stop()
        await server_b.stop()
