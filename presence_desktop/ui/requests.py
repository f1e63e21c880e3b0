"""Friend requests (incoming with Accept / Decline, outgoing with Cancel) and
the Add friend field with its inline error.

Requests are few (bounded by the friend limit and rarely more than a
handful), so plain widgets per request are fine here, unlike the friends list.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from presence_protocol import User

from ..core.api import AppActions, UserError
from ..core.state import PresenceState
from .present import ADD_FRIEND_ERRORS


class RequestsPanel(QWidget):
    """Hidden while there is nothing to show."""

    def __init__(
        self, state: PresenceState, actions: AppActions, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._state = state
        self._actions = actions
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(10, 4, 10, 4)
        self._layout.setSpacing(2)
        self.rows: dict[tuple[str, int], QWidget] = {}
        state.requests_changed.connect(lambda _none: self.rebuild())
        self.rebuild()

    def rebuild(self) -> None:
        while self._layout.count():
            item = self._layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.rows = {}
        actions = self._actions
        incoming = sorted(self._state.incoming.values(), key=lambda u: u.login.lower())
        outgoing = sorted(self._state.outgoing.values(), key=lambda u: u.login.lower())
        if incoming:
            self._layout.addWidget(_heading(f"Friend requests — {len(incoming)}"))
            for user in incoming:
                self._add_row(
                    "incoming",
                    user,
                    "wants to be your friend",
                    [
                        ("Accept", functools.partial(self._actions.accept_friend, user.id), True),
                        (
                            "Decline",
                            functools.partial(self._actions.decline_friend, user.id),
                            False,
                        ),
                    ],
                )
        if outgoing:
            self._layout.addWidget(_heading(f"Sent requests — {len(outgoing)}"))
            for user in outgoing:
                self._add_row(
                    "outgoing",
                    user,
                    "waiting for an answer",
                    [("Cancel", functools.partial(actions.cancel_request, user.id), False)],
                )
        self.setVisible(bool(incoming or outgoing))

    def _add_row(
        self,
        kind: str,
        user: User,
        note: str,
        buttons: list[tuple[str, Callable[[], None], bool]],
    ) -> None:
        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 2, 0, 2)
        label = QLabel(
            f"<b>{_escape(user.name or user.login)}</b><br>"
            f"<small>@{_escape(user.login)} · {note}</small>"
        )
        label.setWordWrap(True)
        label.setTextFormat(Qt.TextFormat.RichText)
        label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        label.setMinimumWidth(40)
        h.addWidget(label, 1)
        for text, slot, primary in buttons:
            button = QPushButton(text)
            button.setObjectName(f"{kind}-{text.lower()}-{user.id}")
            button.setDefault(primary)
            button.setAutoDefault(False)
            button.clicked.connect(lambda _checked=False, s=slot: s())
            h.addWidget(button)
        self._layout.addWidget(row)
        self.rows[(kind, user.id)] = row


class AddFriendBar(QWidget):
    """A GitHub login field; errors from the controller appear right under it.

    The field keeps what was typed until the request is confirmed (it shows
    up among the outgoing requests), so a refused login can be corrected
    rather than typed again; "on its way" is said only then.
    """

    def __init__(
        self,
        actions: AppActions,
        parent: QWidget | None = None,
        *,
        state: PresenceState | None = None,
    ) -> None:
        super().__init__(parent)
        self._actions = actions
        self._state = state
        self._pending: str | None = None
        if state is not None:
            state.requests_changed.connect(lambda _none: self._on_requests_changed())
        v = QVBoxLayout(self)
        v.setContentsMargins(10, 6, 10, 6)
        v.setSpacing(2)
        h = QHBoxLayout()
        self.field = QLineEdit()
        self.field.setPlaceholderText("Add friend by GitHub login")
        self.field.setClearButtonEnabled(True)
        self.field.returnPressed.connect(self.submit)
        self.field.textEdited.connect(lambda _t: self.clear_error())
        self.button = QPushButton("Add")
        self.button.setAutoDefault(False)
        self.button.clicked.connect(self.submit)
        h.addWidget(self.field, 1)
        h.addWidget(self.button)
        v.addLayout(h)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #e5534b;")
        self.error.hide()
        v.addWidget(self.error)
        self.sent = QLabel()
        self.sent.hide()
        v.addWidget(self.sent)
        actions.errors.connect(self.on_error)

    def submit(self) -> None:
        login = self.field.text().strip().lstrip("@")
        if not login:
            self.show_error("Type the GitHub login of the person to add.")
            return
        me = self._state.me if self._state is not None else None
        if me is not None and me.login.casefold() == login.casefold():
            self.sent.hide()
            self.show_error("That is you: type the GitHub login of someone else.")
            return
        self.clear_error()
        self._actions.add_friend(login)
        if self._state is None:
            self.sent.setText(f"Friend request to {login} is on its way.")
            self.sent.show()
            self.field.clear()
            return
        self._pending = login
        self.sent.setText(f"Sending a friend request to {login}…")
        self.sent.show()

    def on_error(self, error: UserError) -> None:
        if error.code in ADD_FRIEND_ERRORS:
            self._pending = None
            self.sent.hide()
            self.show_error(f"{error.title}: {error.message}" if error.message else error.title)
            # The login stays in the field, ready to be corrected.

    def _on_requests_changed(self) -> None:
        if self._pending is None or self._state is None:
            return
        wanted = self._pending.casefold()
        logins = {u.login.casefold() for u in self._state.outgoing.values()}
        logins |= {f.login.casefold() for f in self._state.friends.values()}
        if wanted in logins:
            self.sent.setText(f"Friend request to {self._pending} is on its way.")
            self._pending = None
            if self.field.text().strip().lstrip("@").casefold() == wanted:
                self.field.clear()

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()

    def clear_error(self) -> None:
        self.error.clear()
        self.error.hide()


def _heading(text: str) -> QLabel:
    label = QLabel(text.upper())
    font = label.font()
    font.setBold(True)
    font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
    label.setFont(font)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    label.setContentsMargins(2, 6, 0, 2)
    return label


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
