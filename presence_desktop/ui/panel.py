"""Everything the popup (or the fallback window) shows: header, search, sections,
requests, add friend and the inbox.

Widgets here only turn user input into ``AppActions`` calls and state
signals into view updates. The list itself is a ``QListView`` over
``FriendsModel`` painted by ``FriendDelegate``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from PySide6.QtCore import (
    QAbstractItemModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QFont, QHideEvent, QKeyEvent, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.api import (
    AppActions,
    ConnectionEvents,
    ConnectionInfo,
    ConversationActions,
    Link,
    UserError,
)
from ..core.format import connection_text, my_status_text
from ..core.my_presence import MyPresence
from ..core.state import PresenceState
from .banner import ErrorBanner
from .conversation import ConversationPage, NoHistoryChat
from .delegate import FriendDelegate
from .dialogs import SendMessageDialog, confirm
from .first_run import FirstRunPage, ServerSetup
from .friends_model import FriendsModel, Role
from .inbox import InboxPage
from .menus import StatusMenu, status_dot
from .present import ADD_FRIEND_ERRORS
from .requests import AddFriendBar, RequestsPanel
from .sharing import SharingLine

RELATIVE_TIME_REFRESH_MS = 60_000
""""12 min" lines move on while the panel is visible; nothing ticks while hidden."""


LIST_HINT_LIMIT = 2000
"""The list never asks for more than this (logical px); the popup's own limit is lower."""


class FriendsListView(QListView):
    """A list that asks for the height of its rows, so the popup can fit its content.

    Qt's list views ask for a fixed 256×192 whatever they hold; here the hint
    is the sum of the rows' heights (up to ``LIST_HINT_LIMIT``), and every
    change in the rows asks the window to lay out again.
    """

    def setModel(self, model: QAbstractItemModel | None) -> None:
        super().setModel(model)
        if model is not None:
            for signal in (
                model.rowsInserted,
                model.rowsRemoved,
                model.modelReset,
                model.layoutChanged,
            ):
                signal.connect(self.updateGeometry)

    def sizeHint(self) -> QSize:
        model = self.model()
        height = 0
        if model is not None:
            for row in range(model.rowCount()):
                if self.isRowHidden(row):
                    continue
                height += max(0, self.sizeHintForRow(row))
                if height >= LIST_HINT_LIMIT:
                    height = LIST_HINT_LIMIT
                    break
        frame = 2 * self.frameWidth()
        return QSize(super().sizeHint().width(), height + frame)

    def minimumSizeHint(self) -> QSize:
        return QSize(super().minimumSizeHint().width(), 0)


class FriendsPanel(QWidget):
    page_changed = Signal(str)
    """"friends", "inbox", "signed_out" or "conversation"."""
    settings_requested = Signal()
    """The "Friends see" line was clicked: open the privacy settings."""

    def __init__(
        self,
        state: PresenceState,
        connection: ConnectionEvents,
        actions: AppActions,
        model: FriendsModel,
        delegate: FriendDelegate,
        *,
        app_menu: QMenu | None = None,
        presence: MyPresence | None = None,
        chat: ConversationActions | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("FriendsPanel")
        self._presence = presence
        self._state = state
        self._connection = connection
        self._actions = actions
        self._model = model
        self._clock = clock
        self._monotonic = monotonic
        self._dialogs: set[QWidget] = set()
        # Conversations (issue 17); without the controller's, a stand-in with no history.
        self.chat: ConversationActions = chat or NoHistoryChat(state, actions)

        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(0)
        root.addWidget(self._build_header(app_menu))

        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setContentsMargins(10, 4, 10, 4)
        self.notice.setStyleSheet("background: rgba(56, 139, 253, 0.15);")
        self.notice.hide()
        root.addWidget(self.notice)

        self.banner = ErrorBanner()
        self.banner.hide()
        root.addWidget(self.banner)

        self.stack = QStackedWidget()
        root.addWidget(self.stack, 1)
        self.stack.addWidget(self._build_friends_page(model, delegate))
        self.inbox = InboxPage(state, self.chat.conversations, self.open_conversation, clock=clock)
        self.inbox.back.clicked.connect(self.show_friends)
        self.stack.addWidget(self.inbox)
        self.stack.addWidget(self._build_signed_out_page())
        self.conversation = ConversationPage(state, self.chat, clock=clock)
        self.conversation.back_requested.connect(self.show_inbox)
        self.stack.addWidget(self.conversation)

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.timeout.connect(self._refresh_relative_times)

        state.reset.connect(lambda _none: self.update_header())
        state.friend_changed.connect(lambda _uid: self._update_counts())
        state.friend_added.connect(lambda _uid: self._update_counts())
        state.friend_removed.connect(lambda _uid: self._update_counts())
        state.inbox_changed.connect(lambda _none: self._on_inbox_changed())
        my_status_changed = getattr(state, "my_status_changed", None)
        if my_status_changed is not None:
            my_status_changed.connect(lambda _s: self.update_header())
        connection.changed.connect(self._on_connection)
        actions.errors.connect(self._on_error)
        model.modelReset.connect(self._update_counts)
        self._on_connection(connection.current)
        self._set_tab_order()

    # ---------------------------------------------------------- building

    def _build_header(self, app_menu: QMenu | None) -> QWidget:
        header = QFrame()
        header.setObjectName("Header")
        v = QVBoxLayout(header)
        v.setContentsMargins(10, 8, 8, 6)
        v.setSpacing(2)
        row1 = QHBoxLayout()
        self.me_label = QLabel()
        font = QFont(self.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.me_label.setFont(font)
        row1.addWidget(self.me_label, 1)
        self.inbox_button = QToolButton()
        self.inbox_button.setObjectName("InboxButton")
        self.inbox_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.inbox_button.setAutoRaise(True)
        self.inbox_button.clicked.connect(self.show_inbox)
        row1.addWidget(self.inbox_button)
        self.add_button = QToolButton()
        self.add_button.setText("+")
        self.add_button.setToolTip("Add friend")
        self.add_button.setAccessibleName("Add friend")
        self.add_button.setAutoRaise(True)
        self.add_button.clicked.connect(self.toggle_add_friend)
        row1.addWidget(self.add_button)
        self.menu_button = QToolButton()
        self.menu_button.setText("☰")
        self.menu_button.setToolTip("Menu")
        self.menu_button.setAccessibleName("Menu")
        self.menu_button.setAutoRaise(True)
        self.menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.menu_button.setStyleSheet("QToolButton::menu-indicator { image: none; }")
        if app_menu is not None:
            self.menu_button.setMenu(app_menu)
        else:
            self.menu_button.hide()
        row1.addWidget(self.menu_button)
        v.addLayout(row1)

        row2 = QHBoxLayout()
        self.status_menu = StatusMenu(self._state, self._actions, clock=self._clock, parent=self)
        self.status_button = QToolButton()
        self.status_button.setObjectName("StatusButton")
        self.status_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.status_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.status_button.setAutoRaise(True)
        self.status_button.setStyleSheet("QToolButton::menu-indicator { image: none; }")
        self.status_button.setMenu(self.status_menu)
        row2.addWidget(self.status_button)
        row2.addStretch(1)
        v.addLayout(row2)
        # What is wrong with the connection, on its own wrapping line so a long
        # reason is never cut by an ellipsis; hidden while connected.
        row3 = QHBoxLayout()
        row3.setSpacing(6)
        self.connection_label = QLabel()
        self.connection_label.setObjectName("ConnectionLine")
        self.connection_label.setTextFormat(Qt.TextFormat.PlainText)
        self.connection_label.setWordWrap(True)
        policy = QSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.connection_label.setSizePolicy(policy)
        self.connection_label.setMinimumWidth(1)
        font = QFont(self.connection_label.font())
        font.setBold(True)
        self.connection_label.setFont(font)
        row3.addWidget(self.connection_label, 1)
        # While waiting to reconnect (or stopped), one click skips the wait once.
        self.reconnect_button = QToolButton()
        self.reconnect_button.setObjectName("ReconnectNow")
        self.reconnect_button.setAutoRaise(True)
        self.reconnect_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.reconnect_button.setStyleSheet(
            "QToolButton { color: #388bfd; text-decoration: underline; border: none; }"
        )
        self.reconnect_button.clicked.connect(lambda _checked=False: self._actions.reconnect_now())
        self.reconnect_button.hide()
        row3.addWidget(self.reconnect_button, 0, Qt.AlignmentFlag.AlignTop)
        self.connection_row = QWidget()
        self.connection_row.setLayout(row3)
        row3.setContentsMargins(0, 2, 0, 0)
        v.addWidget(self.connection_row)
        self.offline_detail = QLabel()
        self.offline_detail.setWordWrap(True)
        self.offline_detail.hide()
        v.addWidget(self.offline_detail)
        # What my friends receive (issue 5), from the exact outgoing message.
        self.sharing_line: SharingLine | None = None
        if self._presence is not None:
            self.sharing_line = SharingLine(self._presence)
            self.sharing_line.clicked.connect(self.settings_requested.emit)
            v.addWidget(self.sharing_line)
        return header

    def _build_friends_page(self, model: FriendsModel, delegate: FriendDelegate) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(0)
        self.add_bar = AddFriendBar(self._actions, state=self._state)
        self.add_bar.hide()
        v.addWidget(self.add_bar)
        self.search = QLineEdit()
        self.search.setObjectName("Search")
        self.search.setPlaceholderText("Search friends, languages, projects")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(model.set_query)
        search_box = QWidget()
        sh = QHBoxLayout(search_box)
        sh.setContentsMargins(10, 4, 10, 6)
        sh.addWidget(self.search)
        v.addWidget(search_box)
        self.requests = RequestsPanel(self._state, self._actions)
        v.addWidget(self.requests)
        self.view = FriendsListView()
        self.view.setObjectName("FriendsList")
        self.view.setModel(model)
        self.view.setItemDelegate(delegate)
        self.view.setMouseTracking(True)
        self.view.setFrameShape(QFrame.Shape.NoFrame)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._on_context_menu)
        self.view.doubleClicked.connect(self._on_double_click)
        # A click on a friend (or Enter on the selected one) opens the conversation.
        self.view.clicked.connect(self._on_double_click)
        self.view.activated.connect(self._on_double_click)
        self.view.viewport().setAttribute(Qt.WidgetAttribute.WA_Hover)
        # Both filters only once both widgets exist (events arrive during setup).
        self.search.installEventFilter(self)
        self.view.installEventFilter(self)
        # Rows never move under the pointer: the model holds moves while it is over the list.
        self.view.viewport().installEventFilter(self)
        delegate.menu_requested.connect(self.open_friend_menu)
        v.addWidget(self.view, 1)
        self.empty_label = QLabel()
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.empty_label.setContentsMargins(16, 16, 16, 16)
        self.empty_label.hide()
        v.addWidget(self.empty_label)
        return page

    def _build_signed_out_page(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.addStretch(1)
        self.signed_out_text = QLabel()
        self.signed_out_text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.signed_out_text.setWordWrap(True)
        v.addWidget(self.signed_out_text)
        self.sign_in_button = QPushButton("Sign in with GitHub")
        self.sign_in_button.clicked.connect(lambda: self._actions.sign_in())
        v.addWidget(self.sign_in_button, 0, Qt.AlignmentFlag.AlignHCenter)
        # With the real controller: the first-run flow (server, then its sign-in methods).
        self.first_run: FirstRunPage | None = None
        if isinstance(self._actions, ServerSetup):
            self.first_run = FirstRunPage(self._actions)
            v.addWidget(self.first_run)
            self.sign_in_button.hide()
        v.addStretch(2)
        return page

    def _set_tab_order(self) -> None:
        """Tab follows the eye: header (top row, then status), search, requests, list."""
        self.search.setAccessibleName("Search friends")
        self.view.setAccessibleName("Friends")
        self.inbox_button.setAccessibleName("Inbox")
        self.reconnect_button.setAccessibleName("Reconnect now")
        for button in (self.inbox_button, self.add_button, self.menu_button, self.status_button):
            # Auto-raised tool buttons take no focus by default: the header was unreachable.
            button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.reconnect_button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        chain: list[QWidget] = [
            self.inbox_button,
            self.add_button,
            self.menu_button,
            self.status_button,
            self.reconnect_button,
            self.add_bar.field,
            self.add_bar.button,
            self.search,
            *self.requests.findChildren(QPushButton),
            self.view,
        ]
        for first, second in itertools.pairwise(chain):
            QWidget.setTabOrder(first, second)

    def reset_for_next_open(self) -> None:
        """The popup opens on the friends list with an empty search (called when it hides)."""
        self.search.clear()
        self.add_bar.hide()
        self.show_friends()
        self.view.clearSelection()
        self.view.setCurrentIndex(self._model.index(-1))
        self.view.scrollToTop()

    def escape(self) -> bool:
        """Esc undoes one thing at a time: the add bar, the search text, a conversation,
        the inbox page.

        Returns False when there was nothing left to undo (the popup then closes).
        """
        if self.add_bar.isVisible():
            self.add_bar.hide()
            self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
            return True
        if self.search.text():
            self.search.clear()
            self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
            return True
        if self.page == "conversation":
            self.conversation.back_requested.emit()  # as its Back button: the inbox
            return True
        if self.page == "inbox":
            self.show_friends()
            self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
            return True
        return False

    def _step(self, down: bool) -> None:
        """Move the current row to the next friend up or down, skipping section headers."""
        rows = self._model.rowCount()
        row = self.view.currentIndex().row()
        row = (-1 if down else rows) if row < 0 else row
        step = 1 if down else -1
        row += step
        while 0 <= row < rows:
            index = self._model.index(row)
            if index.data(Role.KIND) == "friend":
                self.view.setCurrentIndex(index)
                self.view.scrollTo(index)
                return
            row += step
        if not down:
            self.search.setFocus(Qt.FocusReason.BacktabFocusReason)  # above the first friend

    def _activate_current(self) -> None:
        """Enter on a friend: their conversation (the same as a click)."""
        index = self.view.currentIndex()
        if index.isValid() and index.data(Role.KIND) == "friend":
            self._on_double_click(index)

    # ---------------------------------------------------------- navigation

    @property
    def page(self) -> str:
        return ("friends", "inbox", "signed_out", "conversation")[self.stack.currentIndex()]

    def show_friends(self) -> None:
        if self._connection.current.link is Link.SIGNED_OUT:
            self._set_page(2)
        else:
            self._set_page(0)

    def show_inbox(self) -> None:
        """The conversation list; opening a conversation marks it read (issue 17)."""
        self._set_page(1)

    def open_conversation(self, user_id: int) -> None:
        """Show the conversation with ``user_id``; the composer gets the focus."""
        self._set_page(3)
        self.conversation.open(user_id)

    def show_add_friend(self) -> None:
        self.show_friends()
        self.add_bar.show()
        self.add_bar.field.setFocus(Qt.FocusReason.OtherFocusReason)

    def toggle_add_friend(self) -> None:
        if self.add_bar.isVisible() and self.page == "friends":
            self.add_bar.hide()
        else:
            self.show_add_friend()

    def focus_search(self) -> None:
        if self.page == "friends":
            self.search.setFocus(Qt.FocusReason.OtherFocusReason)
        elif self.page == "conversation":
            self.conversation.composer.setFocus(Qt.FocusReason.OtherFocusReason)
        elif self.page == "signed_out" and self.first_run is not None:
            self.first_run.focus_field()  # typing goes to the address (or the login name)

    def set_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    def _set_page(self, index: int) -> None:
        if index != 3:
            self.conversation.close_conversation()
        if self.stack.currentIndex() != index:
            self.stack.setCurrentIndex(index)
            self.page_changed.emit(self.page)

    # ---------------------------------------------------------- friend actions

    def open_friend_menu(self, user_id: int, where: QPoint) -> QMenu | None:
        friend = self._state.friends.get(user_id)
        if friend is None:
            return None
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.addAction("Open conversation").triggered.connect(
            lambda _c=False: self.open_conversation(user_id)
        )
        mute = menu.addAction("Mute notifications")
        mute.setCheckable(True)
        mute.setChecked(self._actions.is_muted(user_id))
        mute.toggled.connect(lambda on: self._set_muted(user_id, on))
        star = menu.addAction("Star (notify when online)")
        star.setCheckable(True)
        star.setChecked(self._actions.is_starred(user_id))
        star.toggled.connect(lambda on: self._set_starred(user_id, on))
        menu.addSeparator()
        menu.addAction("Remove friend…").triggered.connect(
            lambda _c=False: self._confirm_remove(user_id, friend.login)
        )
        menu.addAction("Block…").triggered.connect(
            lambda _c=False: self._confirm_block(user_id, friend.login)
        )
        menu.popup(where)
        return menu

    def open_send_dialog(self, user_id: int, login: str) -> SendMessageDialog:
        dialog = SendMessageDialog(login, lambda text: self._actions.send_message(user_id, text))
        self._keep(dialog)
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def _set_muted(self, user_id: int, muted: bool) -> None:
        self._actions.set_muted(user_id, muted)
        self._model.refresh(user_id)

    def _set_starred(self, user_id: int, starred: bool) -> None:
        self._actions.set_starred(user_id, starred)
        self._model.refresh(user_id)

    def _confirm_remove(self, user_id: int, login: str) -> None:
        self._keep(
            confirm(
                None,
                "Remove friend",
                f"Remove {login} from your friends? You stop seeing each other's presence.",
                "Remove",
                lambda: self._actions.remove_friend(user_id),
            )
        )

    def _confirm_block(self, user_id: int, login: str) -> None:
        self._keep(
            confirm(
                None,
                "Block",
                f"Block {login}? They can no longer see you or send you requests or messages.",
                "Block",
                lambda: self._actions.block(user_id),
            )
        )

    def _keep(self, widget: QWidget) -> None:
        # Top-level dialogs are not parented to the popup, which hides when it
        # loses focus; hold a reference until they close.
        self._dialogs.add(widget)
        widget.destroyed.connect(lambda _obj=None, w=widget: self._dialogs.discard(w))

    def _on_context_menu(self, pos: QPoint) -> None:
        index = self.view.indexAt(pos)
        if index.isValid() and index.data(Role.KIND) == "friend":
            self.open_friend_menu(
                int(index.data(Role.USER_ID)), self.view.viewport().mapToGlobal(pos)
            )

    def _on_double_click(self, index: QModelIndex | QPersistentModelIndex) -> None:
        uid = index.data(Role.USER_ID) if index.isValid() else None
        friend = self._state.friends.get(int(uid)) if uid is not None else None
        if friend is not None:
            self.open_conversation(friend.user_id)

    # ---------------------------------------------------------- state → view

    def update_header(self) -> None:
        me = self._state.me
        self.me_label.setText((me.name or me.login) if me else "Presence")
        until = getattr(self._state, "my_status_until", None)
        status = self._state.my_status
        chosen = my_status_text(status, until, self._clock())
        link = self._connection.current.link
        if link is Link.ONLINE:
            self.status_button.setIcon(status_dot(status))
            self.status_button.setText(chosen + "  ▾")
            self.status_button.setToolTip("Your status")
        elif link is Link.SIGNED_OUT:
            self.status_button.setIcon(status_dot("offline"))
            self.status_button.setText("Signed out")
            self.status_button.setToolTip("Sign in to share your status")
        else:
            # Not connected: friends see me offline whatever I chose; say so.
            self.status_button.setIcon(status_dot("offline"))
            self.status_button.setText("Friends see you offline  ▾")
            self.status_button.setToolTip(
                f"Not connected. Your status ({chosen}) applies again once connected."
            )
        self.status_button.setAccessibleName(
            "Your status: " + self.status_button.text().removesuffix("  ▾")
        )
        unread = self._state.unread_count()
        self.inbox_button.setText(f"Inbox · {unread}" if unread else "Inbox")
        self.inbox_button.setStyleSheet(
            "QToolButton { font-weight: bold; color: #ffffff; background: #e5534b;"
            " border-radius: 9px; padding: 1px 8px; }"
            if unread
            else ""
        )
        self.inbox_button.setToolTip(f"{unread} unread" if unread else "Messages")
        self._update_counts()

    def update_connection(self) -> None:
        info = self._connection.current
        text = connection_text(info, self._monotonic())
        if info.link is Link.OFFLINE:
            text = f"Offline: {text}"
        self.connection_label.setText(text)
        waiting = info.link in (Link.RECONNECTING, Link.OFFLINE)
        self.reconnect_button.setText(
            "Reconnect now" if info.link is Link.RECONNECTING else "Try again"
        )
        self.reconnect_button.setToolTip(
            "Skip the wait and connect to the server now"
            if info.link is Link.RECONNECTING
            else "Connect to the server again"
        )
        self.reconnect_button.setVisible(waiting)
        self.offline_detail.setText(info.message)
        self.offline_detail.setVisible(info.link is Link.OFFLINE and bool(info.message))
        # "Connected" needs no line; every other state says what is wrong.
        self.connection_row.setVisible(info.link not in (Link.ONLINE, Link.SIGNED_OUT))
        if self.sharing_line is not None:
            # "Friends see: Online" is false while they cannot see me at all.
            self.sharing_line.setVisible(info.link is Link.ONLINE)

    def _on_connection(self, info: ConnectionInfo) -> None:
        self.update_connection()
        self._model.set_stale(info.link is not Link.ONLINE)
        signed_in = info.link is not Link.SIGNED_OUT
        self.status_button.setEnabled(signed_in)
        # Signed out there is nobody to add and no inbox: the header shows only that.
        self.add_button.setVisible(signed_in)
        self.inbox_button.setVisible(signed_in)
        if info.link is Link.SIGNED_OUT:
            # E.g. "No server: Set the presence server address in Settings."
            self.signed_out_text.setText(
                f"{info.title}\n{info.message}".strip()
                if info.title or info.message
                else "Sign in to see which friends are coding."
            )
            if self.first_run is not None:
                no_server = not self.first_run.setup.server_url
                self.signed_out_text.setVisible(not no_server and bool(info.title))
                if no_server:
                    self.first_run.ask_server()
                elif self.page != "signed_out" or self.first_run.offer is None:
                    self.first_run.check(self.first_run.setup.server_url)
            self._set_page(2)
        elif self.page == "signed_out":
            self._set_page(0)
        self.update_header()

    def _on_inbox_changed(self) -> None:
        self.update_header()

    def _update_counts(self) -> None:
        if not self._state.friends:
            self.empty_label.setText(
                "No friends yet. Add one by GitHub login with the + button."
                if self._connection.current.link is not Link.SIGNED_OUT
                else ""
            )
            self.empty_label.show()
        elif self._model.rowCount() == 0:
            self.empty_label.setText(f"No friend matches “{self._model.query}”.")
            self.empty_label.show()
        else:
            self.empty_label.hide()

    def _on_error(self, error: UserError) -> None:
        if error.code in ADD_FRIEND_ERRORS:
            return  # shown inline under the Add friend field
        text = f"{error.title}: {error.message}" if error.message else error.title
        self.banner.setText(text)
        self.banner.show()

    def _refresh_relative_times(self) -> None:
        self._model.refresh_all()
        self.update_header()
        if self.isVisible():
            self._refresh_timer.start(RELATIVE_TIME_REFRESH_MS)

    # ---------------------------------------------------------- Qt events

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._refresh_relative_times()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self._refresh_timer.stop()
        self._model.hold(False)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.view.viewport() and event.type() in (
            QEvent.Type.Enter,
            QEvent.Type.Leave,
        ):
            self._model.hold(event.type() == QEvent.Type.Enter)
            return False
        # The menu key (or Shift+F10) opens the selected friend's actions.
        if (
            watched is self.view
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and (
                event.key() == Qt.Key.Key_Menu
                or (
                    event.key() == Qt.Key.Key_F10
                    and event.modifiers() & Qt.KeyboardModifier.ShiftModifier
                )
            )
        ):
            index = self.view.currentIndex()
            if index.isValid() and index.data(Role.KIND) == "friend":
                rect = self.view.visualRect(index)
                where = self.view.viewport().mapToGlobal(rect.center())
                self.open_friend_menu(int(index.data(Role.USER_ID)), where)
                return True
        # Arrows walk the friends (headers are skipped); Enter opens a message.
        if (
            watched is self.view
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        ):
            if event.key() in (Qt.Key.Key_Down, Qt.Key.Key_Up):
                self._step(event.key() == Qt.Key.Key_Down)
                return True
            if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._activate_current()
                return True
        # Down arrow (or Enter) from the search box moves into the list.
        if (
            watched is self.search
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Down, Qt.Key.Key_Return, Qt.Key.Key_Enter)
        ):
            self.view.setFocus(Qt.FocusReason.TabFocusReason)
            self.view.setCurrentIndex(self._model.index(-1))
            self._step(True)
            return True
        return super().eventFilter(watched, event)
