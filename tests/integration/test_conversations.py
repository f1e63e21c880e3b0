"""Conversations on every device (issue 17): two desktops of one person and a
friend, whole controllers with their own history files, against a real server."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from presence_desktop.core.history import Delivery
from presence_protocol import ErrorCode, FriendRemove, MarkRead, ProtocolError, codec
from presence_server.session import machine

from ..desktop.net.helpers import until
from .apps import App, befriend

MakeApp = Callable[..., App]


def thread(app: App, peer: int) -> list[tuple[bool, str, Delivery]]:
    return [(e.outgoing, e.text, e.delivery) for e in app.controller.conversations.messages(peer)]


async def test_two_devices_and_a_friend_share_one_conversation(make_app: MakeApp) -> None:
    laptop = make_app("alice", home="laptop")
    desktop = make_app("alice", home="desktop")
    bob = make_app("bob")
    for app in (laptop, desktop, bob):
        await app.start()
    await befriend(laptop, bob)
    await until(lambda: bob.me in desktop.state.friends, desktop.state.friend_added)
    laptop_c, desktop_c, bob_c = (a.controller.conversations for a in (laptop, desktop, bob))

    # Sent from the laptop: pending at once, then sent, then delivered when bob's
    # app stored it; the desktop shows it too (a carbon copy).
    laptop.controller.send_message(bob.me, "lunch?")
    assert thread(laptop, bob.me) == [(True, "lunch?", Delivery.PENDING)]
    await until(lambda: thread(laptop, bob.me)[0][2] is Delivery.DELIVERED, laptop_c.changed)
    await until(lambda: thread(desktop, bob.me), desktop_c.changed)
    assert thread(desktop, bob.me)[0][:2] == (True, "lunch?")
    assert thread(bob, laptop.me) == [(False, "lunch?", Delivery.RECEIVED)]

    # Bob answers: unread on both of alice's devices.
    bob.controller.send_message(laptop.me, "sure, 12:30")
    for app in (laptop, desktop):
        await until(
            lambda app=app: app.controller.conversations.unread() == 1, app.state.inbox_changed
        )
        assert app.state.unread_count() == 1
    # Read on the laptop: cleared on the desktop as well. Receipts are off, so
    # bob's mark stays "delivered".
    laptop.controller.open_conversation(bob.me)
    assert laptop_c.unread() == 0 and laptop.state.unread_count() == 0
    await until(lambda: desktop_c.unread() == 0, desktop_c.changed)
    assert desktop.state.unread_count() == 0
    laptop.controller.leave_conversation()
    await until(lambda: thread(bob, laptop.me)[-1][2] is Delivery.DELIVERED, bob_c.changed)
    bob.controller.send_message(laptop.me, "and a round trip")
    await until(lambda: thread(bob, laptop.me)[-1][2] is Delivery.DELIVERED, bob_c.changed)
    assert [d for out, _t, d in thread(bob, laptop.me) if out] == [
        Delivery.DELIVERED,
        Delivery.DELIVERED,
    ]

    # With receipts turned on (a choice), reading tells bob.
    desktop.controller.update_settings(read_receipts=True)
    await until(lambda: desktop_c.unread() == 1, desktop_c.changed)
    desktop.controller.open_conversation(bob.me)
    await until(
        lambda: (
            [d for out, _t, d in thread(bob, laptop.me) if out] == [Delivery.READ, Delivery.READ]
        ),
        bob_c.changed,
    )

    # History survives a restart of the laptop app.
    await laptop.controller.stop()
    again = make_app("alice", home="laptop")
    await again.start()
    await until(lambda: again.controller.conversations.store is not None, again.state.reset)
    assert [t for _o, t, _d in thread(again, bob.me)] == [
        "lunch?",
        "sure, 12:30",
        "and a round trip",
    ]
    assert again.controller.conversations.summaries()[0].peer == bob.me


async def test_history_goes_with_the_account(make_app: MakeApp) -> None:
    alice, bob = make_app("alice"), make_app("bob")
    await alice.start()
    await bob.start()
    await befriend(alice, bob)
    alice.controller.send_message(bob.me, "bye")
    await until(lambda: thread(bob, alice.me), bob.controller.conversations.changed)
    store = alice.controller.conversations.store
    assert store is not None and store.path.exists()
    alice.controller.clear_history()
    assert thread(alice, bob.me) == []
    alice.controller.delete_account("alice")
    await until(
        lambda: alice.errors or alice.controller.conversations.store is None,
        alice.controller.account_deleted,
    )
    assert not store.path.exists()


async def test_a_refused_message_is_marked_failed_and_retry_sends_it(make_app: MakeApp) -> None:
    alice, bob = make_app("alice"), make_app("bob")
    await alice.start()
    await bob.start()
    await befriend(alice, bob)
    # The outbox sends one command at a time, in order: the removal is confirmed
    # before the message is tried, so the server refuses it (not friends).
    alice.controller.client.send(FriendRemove(user_id=bob.me))
    alice.controller.send_message(bob.me, "still there?")
    await until(
        lambda: thread(alice, bob.me) == [(True, "still there?", Delivery.FAILED)],
        alice.controller.conversations.changed,
    )
    assert [e.code for e in alice.errors] == ["not_friends"]
    [failed] = alice.controller.conversations.messages(bob.me)
    await befriend(alice, bob)
    assert failed.client_msg_id is not None
    alice.controller.retry_message(failed.client_msg_id)
    await until(
        lambda: thread(bob, alice.me) == [(False, "still there?", Delivery.RECEIVED)],
        bob.controller.conversations.changed,
    )
    await until(
        lambda: thread(alice, bob.me)[0][2] is Delivery.DELIVERED,
        alice.controller.conversations.changed,
    )


async def test_an_older_server_without_read_sync_still_reads_locally_without_errors(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An older server does not know mark_read and answers unknown_type.
    refused: list[object] = []

    def older_decode(data: bytes | str) -> object:
        message = codec.decode_client(data)
        if isinstance(message, MarkRead):
            refused.append(message)
            raise ProtocolError(
                ErrorCode.UNKNOWN_TYPE, "unknown message type 'mark_read'", message.id
            )
        return message

    monkeypatch.setattr(machine, "decode_client", older_decode)
    alice, bob = make_app("alice"), make_app("bob")
    await alice.start()
    await bob.start()
    await befriend(alice, bob)
    bob.controller.send_message(alice.me, "hi")
    book = alice.controller.conversations
    await until(lambda: book.unread() == 1, book.changed)
    alice.controller.open_conversation(bob.me)
    assert book.unread() == 0
    # A round trip after the marker: its refusal has been handled by now.
    alice.controller.send_message(bob.me, "hello")
    await until(
        lambda: thread(bob, alice.me)[-1][1] == "hello", bob.controller.conversations.changed
    )
    assert alice.errors == []


async def test_signing_out_takes_the_history_off_this_computer(make_app: MakeApp) -> None:
    alice, bob = make_app("alice"), make_app("bob")
    await alice.start()
    await bob.start()
    await befriend(alice, bob)
    bob.controller.send_message(alice.me, "hi")
    book = alice.controller.conversations
    await until(lambda: book.unread() == 1, book.changed)
    store = book.store
    assert store is not None and store.path.exists()
    path = store.path
    alice.controller.sign_out()
    await until(lambda: not path.exists(), book.listing_changed, alice.state.reset)
    assert book.store is None


async def test_a_typing_hint_reaches_the_friend_only_when_allowed(make_app: MakeApp) -> None:
    alice, bob = make_app("alice"), make_app("bob")
    await alice.start()
    await bob.start()
    await befriend(alice, bob)
    book = bob.controller.conversations
    alice.controller.composing(bob.me)
    await until(lambda: book.is_typing(alice.me), book.changed)
    alice.controller.send_message(bob.me, "there")
    await until(lambda: thread(bob, alice.me), book.changed)
    assert not book.is_typing(alice.me)  # the message ended it
    alice.controller.update_settings(share_typing=False)
    alice.controller.composing(bob.me)
    alice.controller.send_message(bob.me, "no hint before this one")
    seen: list[bool] = []
    book.changed.connect(lambda _peer: seen.append(book.is_typing(alice.me)))
    await until(lambda: len(thread(bob, alice.me)) == 2, book.changed)
    assert True not in seen
