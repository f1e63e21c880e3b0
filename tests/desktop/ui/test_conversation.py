"""The conversation view and list (issue 17) with pytest-qt, over a real history file."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt, QUrl
from pytestqt.qtbot import QtBot

from presence_desktop.core.api import UserError
from presence_desktop.core.conversations import COUNTER_FROM, Conversations
from presence_desktop.core.events import Signal
from presence_desktop.core.state import PresenceState
from presence_desktop.ui.panel import FriendsPanel
from presence_protocol import MessageDelivered, MessageSent, TypingHint, limits

from .fakes import FakeCore, friend, message, snapshot


class Chat:
    """ConversationActions with a real model and history; sending records like the
    controller does (pending in the history) and remembers what went out."""

    def __init__(self, state: PresenceState, root: Path) -> None:
        self.errors = Signal[UserError]()
        self.conversations = Conversations(
            state,
            data_dir=root,
            server_key=lambda: "wss://presence.example",
            send_receipts=lambda: False,
            clock=lambda: self.now,
        )
        self.now = time.time()
        self.sent: list[tuple[int, str]] = []
        self.retried: list[str] = []
        self.calls: list[tuple[str, Any]] = []

    def send_message(self, user_id: int, text: str) -> None:
        self.sent.append((user_id, text))
        self.conversations.record_pending(user_id, f"c-{len(self.sent)}", text)

    def open_conversation(self, user_id: int, *, focused: bool = True) -> None:
        self.calls.append(("open", user_id))
        self.conversations.open(user_id, focused=focused)

    def leave_conversation(self, user_id: int | None = None) -> None:
        self.calls.append(("leave", user_id))
        self.conversations.unfocus(user_id)

    def retry_message(self, client_msg_id: str) -> None:
        self.retried.append(client_msg_id)

    def clear_history(self) -> None:
        self.conversations.clear_history()

    def composing(self, user_id: int) -> None:
        self.calls.append(("composing", user_id))


@pytest.fixture
def core() -> FakeCore:
    return FakeCore()


@pytest.fixture
def chat(core: FakeCore, tmp_path: Path) -> Chat:
    return Chat(core.state, tmp_path)


@pytest.fixture
def panel(core: FakeCore, chat: Chat, qtbot: QtBot, tmp_path: Path) -> Iterator[FriendsPanel]:
    from presence_desktop.core.format import activity_line
    from presence_desktop.ui.avatars import AvatarStore
    from presence_desktop.ui.delegate import FriendDelegate
    from presence_desktop.ui.friends_model import FriendsModel

    model = FriendsModel(core.state, activity_line)
    avatars = AvatarStore(tmp_path / "avatars")
    p = FriendsPanel(
        core.state, core.connection, core.actions, model, FriendDelegate(avatars), chat=chat
    )  # type: ignore[arg-type]
    qtbot.addWidget(p)
    core.state.apply_snapshot(snapshot(friend(2, "alice", name="Alice Liddell"), friend(3, "bob")))
    core.go_online()
    p.resize(380, 540)
    p.show()
    yield p


def test_opening_focuses_the_composer_and_reads_the_conversation(
    panel: FriendsPanel, core: FakeCore, chat: Chat
) -> None:
    core.state.add_message(message(1, 2, "pair on the parser?"))
    core.state.add_message(message(2, 3, "lunch?"))
    assert chat.conversations.unread() == 2
    panel.open_conversation(2)
    page = panel.conversation
    assert panel.page == "conversation" and page.title.text() == "Alice Liddell"
    assert page.focusWidget() is page.composer
    assert chat.conversations.unread(2) == 0 and chat.conversations.unread(3) == 1
    assert "pair on the parser?" in page.messages_view.toPlainText()
    assert "Today" in page.messages_view.toPlainText()


def test_enter_sends_shift_enter_is_a_newline(
    panel: FriendsPanel, chat: Chat, qtbot: QtBot
) -> None:
    panel.open_conversation(2)
    composer = panel.conversation.composer
    qtbot.keyClicks(composer, "first line")
    qtbot.keyClick(composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(composer, "second line")
    assert chat.sent == []
    qtbot.keyClick(composer, Qt.Key.Key_Return)
    assert chat.sent == [(2, "first line\nsecond line")]
    assert composer.toPlainText() == ""
    text = panel.conversation.messages_view.toPlainText()
    assert "first line" in text and "pending" in text
    qtbot.keyClick(composer, Qt.Key.Key_Return)  # empty: nothing sent
    assert len(chat.sent) == 1


def test_the_counter_shows_near_the_limit_and_too_long_cannot_be_sent(
    panel: FriendsPanel, chat: Chat, qtbot: QtBot
) -> None:
    panel.open_conversation(2)
    page = panel.conversation
    page.composer.setPlainText("x" * (COUNTER_FROM - 1))
    assert page.counter.text() == "" and page.send_button.isEnabled()
    page.composer.setPlainText("x" * (limits.MAX_MESSAGE_CHARS - 5))
    assert page.counter.text() == "5 left"
    page.composer.setPlainText("x" * (limits.MAX_MESSAGE_CHARS + 2))
    assert page.counter.text() == "2 too many" and not page.send_button.isEnabled()
    qtbot.keyClick(page.composer, Qt.Key.Key_Return)
    assert chat.sent == []


def test_marks_follow_delivery_and_a_failed_message_offers_retry(
    panel: FriendsPanel, chat: Chat
) -> None:
    panel.open_conversation(2)
    page = panel.conversation
    page.composer.setPlainText("see https://example.org/x")
    page.send()
    book = chat.conversations
    book.on_sent(MessageSent(message_id="41", client_msg_id="c-1", sent_at=int(time.time())))
    assert "✓ sent" in page.messages_view.toPlainText()
    book.on_delivered(MessageDelivered(to=2, message_ids=["41"]))
    assert "✓✓ delivered" in page.messages_view.toPlainText()
    assert 'href="https://example.org/x"' in page.html()
    page.composer.setPlainText("are you there?")
    page.send()
    book.on_failed("c-2")
    assert "not sent" in page.messages_view.toPlainText()
    assert 'href="retry:c-2"' in page.html()
    page.messages_view.anchorClicked.emit(QUrl("retry:c-2"))
    assert chat.retried == ["c-2"]


def test_a_message_arriving_in_the_open_conversation_is_read_at_once(
    panel: FriendsPanel, core: FakeCore, chat: Chat
) -> None:
    panel.open_conversation(2)
    core.state.add_message(message(1, 2, "still there?"))
    assert "still there?" in panel.conversation.messages_view.toPlainText()
    assert chat.conversations.unread() == 0
    panel.show_friends()  # the conversation is closed: new messages stay unread
    assert ("leave", 2) in chat.calls
    core.state.add_message(message(2, 2, "hello?"))
    assert chat.conversations.unread() == 1


def test_the_list_has_one_row_per_friend_newest_first_and_opens_them(
    panel: FriendsPanel, core: FakeCore, chat: Chat, qtbot: QtBot
) -> None:
    core.state.add_message(message(1, 2, "one"))
    core.state.add_message(message(2, 2, "two"))
    core.state.add_message(message(3, 3, "from bob"))
    panel.show_inbox()
    rows = panel.inbox.rows()
    assert [(name, unread) for name, _text, unread in rows] == [("bob", 1), ("Alice Liddell", 2)]
    assert rows[1][1] == "two"
    panel.inbox.list.itemActivated.emit(panel.inbox.list.item(1))
    assert panel.page == "conversation" and panel.conversation.peer == 2
    # The answer is written a minute after the messages came: their sent_at is the
    # wall clock's second when the test made them, while the model's clock is the
    # fake one set when the fixture was made (under load, a second earlier).
    chat.now = max(chat.now, time.time()) + 60
    panel.conversation.composer.setPlainText("answer")
    panel.conversation.send()
    panel.show_inbox()
    assert panel.inbox.rows()[0] == ("Alice Liddell", "You: answer", 0)
    # Search across the history.
    qtbot.keyClicks(panel.inbox.search, "BOB")
    assert [text for _n, text, _u in panel.inbox.rows()] == ["from bob"]
    qtbot.keyClick(panel.inbox.search, Qt.Key.Key_Return)
    assert panel.conversation.peer == 3


def test_a_friend_row_click_enter_and_menu_open_the_conversation(
    panel: FriendsPanel, qtbot: QtBot
) -> None:
    model = panel.view.model()
    index = model.index(model.row_of(3), 0)  # type: ignore[attr-defined]
    rect = panel.view.visualRect(index)
    qtbot.mouseClick(
        panel.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.topLeft() + QPoint(40, 10)
    )
    assert panel.page == "conversation" and panel.conversation.peer == 3
    panel.show_friends()
    other = model.index(model.row_of(2), 0)  # type: ignore[attr-defined]
    panel.view.setCurrentIndex(other)
    qtbot.keyClick(panel.view, Qt.Key.Key_Return)
    assert panel.conversation.peer == 2
    panel.show_friends()
    menu = panel.open_friend_menu(2, QPoint(0, 0))
    assert menu is not None
    panel.show_friends()
    next(a for a in menu.actions() if a.text() == "Open conversation").trigger()
    assert panel.page == "conversation" and panel.conversation.peer == 2
    menu.close()


def test_typing_shows_under_the_name_and_writing_sends_hints(
    panel: FriendsPanel, chat: Chat, qtbot: QtBot
) -> None:
    panel.open_conversation(2)
    page = panel.conversation
    assert page.subtitle.text() == "Online"
    chat.conversations.on_typing(TypingHint(user_id=2))
    assert page.subtitle.text() == "typing…"
    timer = page._typing_timer
    # Armed once, for exactly when the hint ends on the model's clock (remainingTime
    # is not checked: a coarse Qt timer may report up to 5 % more than it was given).
    assert timer.isActive() and timer.interval() == int(limits.TYPING_SHOWN_SECONDS * 1000) + 50
    chat.now += limits.TYPING_SHOWN_SECONDS + 0.1
    timer.timeout.emit()  # what the armed timer does when it fires
    assert page.subtitle.text() == "Online"
    qtbot.keyClicks(page.composer, "hel")
    assert ("composing", 2) in chat.calls
