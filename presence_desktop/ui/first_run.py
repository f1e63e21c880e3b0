"""The first-run flow inside the popup: a server address, then the ways to sign in there.

Step 1 asks for the server's address and checks it (the server's ``hello``
lists its sign-in methods). Step 2 offers only what that server accepts:
"Sign in with GitHub" where it has GitHub, and a development login on a
loopback server started with ``--dev-login`` (the README's quick start).
Errors stay under the field, with what was typed kept.

The widget holds no decisions: it calls ``ServerSetup`` (the controller) and
shows what comes back on its signals.
"""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.api import UserError
from ..core.events import Signal as CoreSignal

if TYPE_CHECKING:
    from ..net.probe import ServerOffer  # a type only: the module loads with the first check


@runtime_checkable
class ServerSetup(Protocol):
    server_checked: CoreSignal[ServerOffer]
    server_check_failed: CoreSignal[UserError]

    @property
    def server_url(self) -> str: ...

    def check_server(self, address: str) -> None: ...

    def sign_in_at(self, url: str, method: str, login: str = "") -> None: ...


def _wrapping(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    policy = QSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    policy.setHeightForWidth(True)
    label.setSizePolicy(policy)
    label.setMinimumWidth(1)
    return label


def _default_login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


class FirstRunPage(QWidget):
    def __init__(self, setup: ServerSetup, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("FirstRun")
        self.setup = setup
        self.offer: ServerOffer | None = None
        root = QVBoxLayout(self)
        root.setContentsMargins(16, 12, 16, 12)
        root.setSpacing(8)
        self.steps = QStackedWidget()
        root.addWidget(self.steps)

        # Step 1: where is the server?
        server = QWidget()
        v = QVBoxLayout(server)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(6)
        title = QLabel("Welcome to Presence")
        font = QFont(title.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.2)
        title.setFont(font)
        v.addWidget(title)
        v.addWidget(
            _wrapping(
                "Presence shows which friends are coding right now. First, the address "
                "of the presence server you and your friends use:"
            )
        )
        self.address = QLineEdit()
        self.address.setObjectName("ServerAddress")
        self.address.setPlaceholderText("wss://presence.example.org")
        self.address.setAccessibleName("Server address")
        self.address.returnPressed.connect(self.check)
        self.address.textEdited.connect(lambda _t: self._clear_error())
        v.addWidget(self.address)
        row = QHBoxLayout()
        row.addStretch(1)
        self.continue_button = QPushButton("Continue")
        self.continue_button.setDefault(True)
        self.continue_button.clicked.connect(self.check)
        row.addWidget(self.continue_button)
        v.addLayout(row)
        self.checking = _wrapping()
        self.checking.hide()
        v.addWidget(self.checking)
        v.addStretch(1)
        self.steps.addWidget(server)

        # Step 2: how to sign in there.
        methods = QWidget()
        m = QVBoxLayout(methods)
        m.setContentsMargins(0, 0, 0, 0)
        m.setSpacing(6)
        self.server_line = _wrapping()
        m.addWidget(self.server_line)
        self.github_button = QPushButton("Sign in with GitHub")
        self.github_button.clicked.connect(lambda: self._sign_in("github"))
        m.addWidget(self.github_button)
        self.dev_box = QWidget()
        d = QVBoxLayout(self.dev_box)
        d.setContentsMargins(0, 4, 0, 0)
        d.setSpacing(4)
        d.addWidget(
            _wrapping(
                "This is a development server on this computer: sign in with any name "
                "(no account or password; only this computer can use it)."
            )
        )
        dev_row = QHBoxLayout()
        self.dev_login = QLineEdit(_default_login())
        self.dev_login.setAccessibleName("Development login name")
        self.dev_login.setPlaceholderText("your name")
        self.dev_login.returnPressed.connect(lambda: self._sign_in("dev"))
        dev_row.addWidget(self.dev_login, 1)
        self.dev_button = QPushButton("Sign in")
        self.dev_button.clicked.connect(lambda: self._sign_in("dev"))
        dev_row.addWidget(self.dev_button)
        d.addLayout(dev_row)
        m.addWidget(self.dev_box)
        self.no_method = _wrapping(
            "This server offers no way to sign in from this app: it has no GitHub sign-in, "
            "and its development login only works on the computer it runs on."
        )
        m.addWidget(self.no_method)
        self.other_server = QPushButton("Use another server")
        self.other_server.setFlat(True)
        self.other_server.clicked.connect(self.ask_server)
        m.addWidget(self.other_server, 0, Qt.AlignmentFlag.AlignLeft)
        m.addStretch(1)
        self.steps.addWidget(methods)

        self.error = _wrapping()
        self.error.setObjectName("FirstRunError")
        self.error.setStyleSheet("color: #e5534b;")
        self.error.hide()
        root.addWidget(self.error)
        root.addStretch(1)

        setup.server_checked.connect(self._on_checked)
        setup.server_check_failed.connect(self._on_failed)

    # ---------------------------------------------------------- steps

    @property
    def step(self) -> str:
        return ("server", "methods")[self.steps.currentIndex()]

    def ask_server(self) -> None:
        self.offer = None
        if not self.address.text():
            self.address.setText(self.setup.server_url)
        self.steps.setCurrentIndex(0)
        self._clear_error()
        self.address.setFocus(Qt.FocusReason.OtherFocusReason)

    def focus_field(self) -> None:
        """The field a person types into next: the address, or the dev login name."""
        if self.step == "server":
            self.address.setFocus(Qt.FocusReason.OtherFocusReason)
        elif self.offer is not None and self.offer.dev_login and not self.offer.github:
            self.dev_login.setFocus(Qt.FocusReason.OtherFocusReason)
            self.dev_login.selectAll()
        elif self.offer is not None and self.offer.github:
            self.github_button.setFocus(Qt.FocusReason.OtherFocusReason)

    def check(self, address: str | None = None) -> None:
        text = self.address.text() if address is None or isinstance(address, bool) else address
        self._clear_error()
        self.checking.setText("Asking the server how to sign in…")
        self.checking.show()
        self.continue_button.setEnabled(False)
        self.setup.check_server(text)

    def _on_checked(self, offer: ServerOffer) -> None:
        self.offer = offer
        self.checking.hide()
        self.continue_button.setEnabled(True)
        self.address.setText(offer.url)
        self.server_line.setText(f"Server: {offer.url}")
        self.github_button.setVisible(offer.github)
        self.dev_box.setVisible(offer.dev_login)
        self.no_method.setVisible(not offer.usable)
        self.steps.setCurrentIndex(1)
        (self.github_button if offer.github else self.dev_login).setFocus(
            Qt.FocusReason.OtherFocusReason
        )

    def _on_failed(self, error: UserError) -> None:
        self.checking.hide()
        self.continue_button.setEnabled(True)
        self.error.setText(f"{error.title}: {error.message}" if error.message else error.title)
        self.error.show()

    def _sign_in(self, method: str) -> None:
        if self.offer is None:
            return
        self._clear_error()
        self.setup.sign_in_at(self.offer.url, method, self.dev_login.text())

    def _clear_error(self) -> None:
        self.error.hide()
        self.error.clear()
