"""Two desktop apps (controllers, no ui) in one process against a real server."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from presence_desktop.core.api import AlertKind, Link
from presence_protocol import SeenStatus, Status
from tests.support.clock import FakeClock
from tests.support.servers import ServerHandle

from ..desktop.net.helpers import until
from .apps import App, befriend

MakeApp = Callable[..., App]


@pytest.mark.slow  # waits out real limits / reconnect delays
async def test_two_desktops_see_each_other_and_message_across_a_forced_disconnect(
    server: ServerHandle, make_app: MakeApp
) -> None:
    alice, bob = make_app("alice"), make_app("bob")
    await alice.start()
    await bob.start()
    await befriend(alice, bob)

    # Bob quits; he has been gone long enough that his return is news.
    await bob.controller.stop()
    await until(
        lambda: alice.state.friends[bob.me].status is SeenStatus.OFFLINE,
        alice.state.friend_changed,
    )
    alice.controller.update_settings(flap_minutes=0)
    bob2 = make_app("bob", home="bob")
    await bob2.start()
    await until(lambda: alice.alerts, alice.controller.alerts)
    assert bob2.state.friends[alice.me].status is SeenStatus.ONLINE
    alice.controller.update_settings(flap_minutes=5)

    # The server goes away; alice writes while disconnected.
    await server.stop()
    await until(
        lambda: alice.connection.current.link is Link.RECONNECTING, alice.connection.changed
    )
    alice.controller.send_message(bob2.me, "see you after the restart")
    assert alice.settings.runtime.pending_messages  # survives even an app restart
    await server.start()
    await alice.wait_online()
    await bob2.wait_online()
    await until(lambda: bob2.state.inbox, bob2.state.inbox_changed)
    await until(lambda: bob2.alerts, bob2.controller.alerts)
    assert [m.text for m in bob2.state.inbox] == ["see you after the restart"]
    assert [(a.kind, a.title) for a in bob2.alerts] == [(AlertKind.MESSAGE, "Message from alice")]
    await until(lambda: not alice.settings.runtime.pending_messages, alice.settings.runtime_changed)

    # One more round trip so every frame of the restart has been handled, then
    # wait past the coalescing window: still exactly one "online" alert.
    bob2.controller.send_message(alice.me, "got it")
    await until(lambda: alice.alerts[-1].kind is AlertKind.MESSAGE, alice.controller.alerts)
    online = [a for a in alice.alerts if a.kind is AlertKind.FRIEND_ONLINE]
    assert [a.title for a in online] == ["bob is online"]
    assert online[0].user_ids == (bob2.me,)


async def test_a_timed_status_ends_by_itself_and_friends_see_it(tmp_path: Path) -> None:
    """Alice's app and the server read one wall clock held at a whole second,
    so "two seconds from now" is in the future wherever it is checked; the
    status still ends on the loops' own timers, two real seconds later. Read
    from the real clock, it was one to two seconds away, and a machine busy
    for longer than that had the server refuse it as already past."""
    clock = FakeClock()

    def wall_ns() -> int:
        return int(clock.now * 1_000_000_000)

    server = ServerHandle(tmp_path / "server", clock_ns=wall_ns)
    await server.start()
    alice = App(tmp_path / "alice", server.url, "alice", clock=clock)
    bob = App(tmp_path / "bob", server.url, "bob")
    try:
        await alice.start()
        await bob.start()
        await befriend(alice, bob)
        alice.controller.set_status(Status.DND, int(clock.now) + 2)
        await until(
            lambda: bob.state.friends[alice.me].status is SeenStatus.DND,
            bob.state.friend_changed,
        )
        assert bob.state.friends[alice.me].until is not None
        await until(lambda: alice.state.my_status is Status.ONLINE, alice.state.my_status_changed)
        assert alice.state.my_status_until is None
        await until(
            lambda: bob.state.friends[alice.me].status is SeenStatus.ONLINE,
            bob.state.friend_changed,
        )
        assert alice.settings.runtime.my_status is Status.ONLINE
        assert alice.errors == []
    finally:
        await alice.controller.stop()
        await bob.controller.stop()
        await server.stop()


async def test_an_app_restart_keeps_inbox_status_and_unsent_messages(
    server: ServerHandle, make_app: MakeApp
) -> None:
    alice, bob = make_app("alice"), make_app("bob")
    await alice.start()
    await bob.start()
    await befriend(alice, bob)
    bob.controller.send_message(alice.me, "read me later")
    await until(lambda: alice.state.inbox, alice.state.inbox_changed)
    alice.controller.set_status(Status.AWAY, None)
    await server.stop()
    await until(
        lambda: alice.connection.current.link is Link.RECONNECTING, alice.connection.changed
    )
    alice.controller.send_message(bob.me, "written offline, then the app quit")
    token = alice.credentials.get()
    await alice.controller.stop()

    await server.start()
    again = make_app(None, home="alice", credentials=type(alice.credentials)(token))
    await again.controller.start()
    # Restored before connecting: the inbox with its unread message, and my status.
    assert [m.text for m in again.state.inbox] == ["read me later"]
    assert again.state.unread_count() == 1
    assert again.state.my_status is Status.AWAY
    await again.wait_online()
    await until(lambda: len(bob.state.inbox) == 1, bob.state.inbox_changed)
    assert bob.state.inbox[0].text == "written offline, then the app quit"
    assert len(again.state.inbox) == 1  # the acked message was not replayed as new
    again.controller.mark_read()
    assert again.settings.runtime.inbox[0].read


async def test_bad_input_gives_clear_errors_and_sends_nothing(make_app: MakeApp) -> None:
    alice, bob = make_app("alice"), make_app("bob")
    await alice.start()
    await bob.start()
    await befriend(alice, bob)
    c = alice.controller
    c.add_friend("not a login")
    c.add_friend("@alice")
    c.send_message(bob.me, "   ")
    c.send_message(bob.me, "x" * 501)
    c.send_message(123456, "hi")
    c.set_status(Status.DND, int(time.time()) - 10)
    c.update_settings(flap_minutes=-1)
    assert [e.code for e in alice.errors] == [
        "invalid_login",
        "self_request",
        "empty_message",
        "message_too_long",
        "not_friends",
        "invalid_until",
        "invalid_setting",
    ]
    assert all(e.title and e.message for e in alice.errors)
    assert c.client.pending() == []


async def test_add_friend_errors_from_the_server_reach_the_ui(make_app: MakeApp) -> None:
    alice, bob = make_app("alice"), make_app("bob")
    await alice.start()
    await bob.start()
    await befriend(alice, bob)
    alice.controller.add_friend("nobody-by-that-name")
    alice.controller.add_friend("@Bob")
    await until(lambda: len(alice.errors) >= 2, alice.controller.errors)
    assert [e.code for e in alice.errors] == ["unknown_user", "already_friends"]


async def test_mute_and_star_are_saved_settings(make_app: MakeApp) -> None:
    alice = make_app("alice")
    await alice.start()
    alice.controller.set_muted(42, True)
    alice.controller.set_starred(7, True)
    assert alice.controller.is_muted(42) and alice.controller.is_starred(7)
    assert not alice.controller.is_muted(7)
    reread = type(alice.settings)(alice.paths.config_dir, alice.paths.state_dir)
    assert reread.settings.muted == {42} and reread.settings.starred == {7}


async def test_sign_in_where_the_server_offers_no_github_explains_and_sign_out_forgets(
    make_app: MakeApp,
) -> None:
    nobody = make_app(None, home="nobody")
    await nobody.controller.start()
    assert nobody.connection.current.link is Link.SIGNED_OUT
    nobody.controller.sign_in()
    await until(lambda: nobody.errors, nobody.controller.errors)
    assert nobody.errors[-1].code == "login_unavailable"

    alice, bob = make_app("alice"), make_app("bob")
    await alice.start()
    await bob.start()
    await befriend(alice, bob)
    bob.controller.send_message(alice.me, "hi")
    await until(lambda: alice.settings.runtime.inbox, alice.settings.runtime_changed)
    alice_id = alice.me
    alice.controller.sign_out()
    await until(lambda: alice.connection.current.link is Link.SIGNED_OUT, alice.connection.changed)
    await until(lambda: not alice.settings.runtime.inbox, alice.settings.runtime_changed)
    assert alice.credentials.get() is None and alice.state.friends == {}
    await until(
        lambda: bob.state.friends[alice_id].status is SeenStatus.OFFLINE, bob.state.friend_changed
    )
