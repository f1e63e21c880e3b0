"""One conversation in the popup (issue 17): the thread and the composer.

The thread is a read-only ``QTextBrowser`` over HTML built from
``core.conversations.rows_for``: it wraps long text, lets people select and
copy, and makes links clickable without a widget per message. All decisions
(grouping by day, delivery marks, what a link is, the counter) are in the
core; this module only draws them and turns keys and clicks into
``ConversationActions`` calls.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QFont, QHideEvent, QKeyEvent, QPalette, QShowEvent, Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from presence_protocol import limits

from ..core.api import AppActions, ConversationActions
from ..core.conversations import Bubble, Conversations, DayHeader, counter_text
from ..core.format import status_label
from ..core.state import PresenceState

RETRY_SCHEME = "retry"
"""``retry:<client_msg_id>`` links under a failed message."""

_MINE_BG = "#1f6feb"
_MINE_FG = "#ffffff"
_FAILED_FG = "#e5534b"


class Composer(QPlainTextEdit):
    """Enter sends, Shift+Enter starts a new line, Tab moves focus on."""

    submitted = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Composer")
        self.setTabChangesFocus(True)
        self.setPlaceholderText("Write a message — Enter sends, Shift+Enter for a new line")
        self.setAccessibleName("Message")
        line = self.fontMetrics().lineSpacing()
        self.setFixedHeight(line * 3 + 12)

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if e.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if e.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self.insertPlainText("\n")
            else:
                self.submitted.emit()
            e.accept()
            return
        super().keyPressEvent(e)


class ConversationPage(QWidget):
    back_requested = Signal()

    def __init__(
        self,
        state: PresenceState,
        chat: ConversationActions,
        *,
        clock: Callable[[], float] = time.time,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("Conversation")
        self._state = state
        self._chat = chat
        self._clock = clock
        self.peer: int | None = None

        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(0)
        top = QHBoxLayout()
        top.setContentsMargins(6, 4, 10, 4)
        self.back = QPushButton("←")
        self.back.setFlat(True)
        self.back.setAutoDefault(False)
        self.back.setToolTip("Back to conversations")
        self.back.setAccessibleName("Back to conversations")
        self.back.setFixedWidth(32)
        self.back.clicked.connect(self.back_requested.emit)
        top.addWidget(self.back)
        titles = QVBoxLayout()
        titles.setSpacing(0)
        self.title = QLabel()
        font = QFont(self.font())
        font.setBold(True)
        self.title.setFont(font)
        titles.addWidget(self.title)
        self.subtitle = QLabel()
        self.subtitle.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        titles.addWidget(self.subtitle)
        top.addLayout(titles, 1)
        v.addLayout(top)

        self.messages_view = QTextBrowser()
        self.messages_view.setObjectName("Thread")
        self.messages_view.setOpenLinks(False)
        self.messages_view.setFrameShape(QTextBrowser.Shape.NoFrame)
        self.messages_view.anchorClicked.connect(self._on_link)
        v.addWidget(self.messages_view, 1)

        bottom = QVBoxLayout()
        bottom.setContentsMargins(8, 4, 8, 8)
        bottom.setSpacing(2)
        self.composer = Composer()
        self.composer.submitted.connect(self.send)
        self.composer.textChanged.connect(self._update_counter)
        self.composer.textChanged.connect(self._composing)
        self._typing_timer = QTimer(self)
        self._typing_timer.setSingleShot(True)
        self._typing_timer.timeout.connect(self._update_title)
        bottom.addWidget(self.composer)
        row = QHBoxLayout()
        self.counter = QLabel()
        self.counter.setObjectName("Counter")
        self.counter.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        row.addWidget(self.counter, 1)
        self.send_button = QPushButton("Send")
        self.send_button.setAutoDefault(False)
        self.send_button.setEnabled(False)
        self.send_button.clicked.connect(self.send)
        row.addWidget(self.send_button)
        bottom.addLayout(row)
        v.addLayout(bottom)

        chat.conversations.changed.connect(self._on_changed)
        state.friend_changed.connect(self._on_friend_changed)

    # ---------------------------------------------------------- opening

    def open(self, peer: int) -> None:
        """Show the conversation with ``peer``, newest at the bottom, composer focused."""
        if self.peer is not None and self.peer != peer:
            self._chat.leave_conversation(self.peer)
            self.composer.clear()
        self.peer = peer
        self._update_title()
        self.refresh()
        self.composer.setFocus(Qt.FocusReason.OtherFocusReason)
        self._chat.open_conversation(peer, focused=self._in_front())

    def close_conversation(self) -> None:
        if self.peer is not None:
            self._chat.leave_conversation(self.peer)
        self.peer = None

    # ---------------------------------------------------------- actions

    def send(self) -> None:
        text = self.composer.toPlainText().strip()
        if self.peer is None or not text or len(text) > limits.MAX_MESSAGE_CHARS:
            return  # the button is disabled then; Enter does nothing either
        self._chat.send_message(self.peer, text)
        self.composer.clear()

    def _on_link(self, url: QUrl) -> None:
        if url.scheme() == RETRY_SCHEME:
            self._chat.retry_message(url.path())
        elif url.scheme() in ("http", "https"):
            QDesktopServices.openUrl(url)

    # ---------------------------------------------------------- view

    def refresh(self) -> None:
        if self.peer is None:
            self.messages_view.clear()
            return
        bar = self.messages_view.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        self.messages_view.setHtml(self.html())
        if at_bottom or self.isHidden():
            bar.setValue(bar.maximum())

    def html(self) -> str:
        assert self.peer is not None
        muted = self.palette().color(QPalette.ColorRole.PlaceholderText).name()
        theirs_bg = self.palette().color(QPalette.ColorRole.AlternateBase).name()
        parts: list[str] = []
        rows = self._chat.conversations.rows(self.peer)
        if not rows:
            name = self._name()
            parts.append(
                f'<p align="center" style="color:{muted}">No messages with '
                f"{html.escape(name)} on this computer yet. Say hello below.</p>"
            )
        for row in rows:
            if isinstance(row, DayHeader):
                parts.append(
                    f'<p align="center" style="color:{muted}; font-size:small; margin-top:8px">'
                    f"{html.escape(row.label)}</p>"
                )
            else:
                parts.append(self._bubble(row, muted, theirs_bg))
        return "".join(parts)

    def _bubble(self, b: Bubble, muted: str, theirs_bg: str) -> str:
        mine = b.entry.outgoing
        align = "right" if mine else "left"
        bg = _MINE_BG if mine else theirs_bg
        fg = f"color:{_MINE_FG};" if mine else ""
        meta = html.escape(b.time)
        if b.mark:
            colour = _FAILED_FG if b.can_retry else muted
            meta += f' · <span style="color:{colour}">{html.escape(b.mark)}</span>'
        if b.can_retry and b.entry.client_msg_id:
            meta += f' · <a href="{RETRY_SCHEME}:{html.escape(b.entry.client_msg_id)}">Retry</a>'
        link_style = f"a {{ color: {_MINE_FG}; }}" if mine else ""
        text = b.html
        if link_style:
            text = text.replace("<a href=", f'<a style="color:{_MINE_FG}" href=')
        return (
            f'<table width="100%" cellspacing="0" cellpadding="0" style="margin-top:2px">'
            f'<tr><td align="{align}">'
            f'<table cellspacing="0" cellpadding="6" bgcolor="{bg}" style="{fg}">'
            f'<tr><td style="{fg}">{text}</td></tr></table>'
            f'<span style="color:{muted}; font-size:small">{meta}</span>'
            f"</td></tr></table>"
        )

    def _update_counter(self) -> None:
        text = self.composer.toPlainText()
        counted = counter_text(text.strip())
        over = counted.startswith("-")
        if not counted:
            self.counter.setText("")
        elif over:
            self.counter.setText(f"{counted[1:]} too many")
        else:
            self.counter.setText(f"{counted} left")
        self.counter.setStyleSheet(f"color: {_FAILED_FG};" if over else "")
        stripped = text.strip()
        self.send_button.setEnabled(
            bool(stripped) and len(stripped) <= limits.MAX_MESSAGE_CHARS and self.peer is not None
        )

    def _name(self) -> str:
        friend = self._state.friends.get(self.peer) if self.peer is not None else None
        if friend is not None:
            return friend.display_name
        return self._state.login_of(self.peer) if self.peer is not None else ""

    def _update_title(self) -> None:
        friend = self._state.friends.get(self.peer) if self.peer is not None else None
        self.title.setText(self._name())
        book = self._chat.conversations
        left = book.typing_left(self.peer) if self.peer is not None else 0.0
        if left > 0:
            self.subtitle.setText("typing…")
            self._typing_timer.start(int(left * 1000) + 50)
        else:
            self.subtitle.setText(
                status_label(friend.status) if friend is not None else "Not a friend any more"
            )
        can_write = friend is not None
        self.composer.setEnabled(can_write)
        self._update_counter()

    def _on_changed(self, peer: int) -> None:
        if peer == self.peer:
            self.refresh()
            self._update_title()

    def _composing(self) -> None:
        if self.peer is not None and self.composer.toPlainText().strip():
            self._chat.composing(self.peer)

    def _on_friend_changed(self, user_id: int) -> None:
        if user_id == self.peer:
            self._update_title()

    # ---------------------------------------------------------- focus

    def _in_front(self) -> bool:
        return self.isVisible() and self.window().isActiveWindow()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self.peer is not None:
            self._chat.open_conversation(self.peer, focused=self._in_front())

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        if self.peer is not None:
            self._chat.leave_conversation(self.peer)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.ActivationChange and self.peer is not None:
            if self._in_front():
                self._chat.open_conversation(self.peer)
            else:
                self._chat.leave_conversation(self.peer)


class NoHistoryChat:
    """``ConversationActions`` for a panel built without the controller's (tests,
    previews): sending goes through ``AppActions``; nothing is kept."""

    def __init__(self, state: PresenceState, actions: AppActions) -> None:
        self._actions = actions
        self.errors = actions.errors
        self._conversations = Conversations(
            state,
            data_dir=None,
            server_key=lambda: "",
            send_receipts=lambda: False,
            clock=time.time,
        )

    @property
    def conversations(self) -> Conversations:
        return self._conversations

    def send_message(self, user_id: int, text: str) -> None:
        self._actions.send_message(user_id, text)

    def open_conversation(self, user_id: int, *, focused: bool = True) -> None:
        self._conversations.open(user_id, focused=focused)

    def leave_conversation(self, user_id: int | None = None) -> None:
        self._conversations.unfocus(user_id)

    def retry_message(self, client_msg_id: str) -> None:
        pass

    def clear_history(self) -> None:
        pass

    def composing(self, user_id: int) -> None:
        pass
