"""Switching server loses nothing: a message queued for a server that is down
is delivered once when the person comes back to that server, and its inbox
shows again."""

from __future__ import annotations

from pathlib import Path

from presence_desktop.controller import Controller
from presence_desktop.core.api import ConnectionEvents, Link
from presence_desktop.core.settings import SettingsStore
from presence_desktop.core.state import PresenceState
from presence_desktop.platform.credentials import CredentialStore
from presence_protocol import SendMessage
from tests.conftest import MemoryKeyring

from ..desktop.net.helpers import ServerHandle, fast_backoff, until
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
    state, connection = PresenceState(), ConnectionEvents()
    alice = Controller(
        state=state,
        connection=connection,
        settings=settings,
        credentials=CredentialStore(server_a.url),
        credentials_for=CredentialStore,
        dev_login="alice",
        device="test",
        backoff=fast_backoff,
    )
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
