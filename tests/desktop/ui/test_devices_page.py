"""Settings → Devices against a real presence server on loopback: my devices are
listed (this computer marked), another one is signed out (its connection closes
with 4502 and its row goes), a device already gone is said so, signed-out and
offline states, a list longer than one frame, and the page's keyboard and size."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QPushButton, QWidget
from pytestqt.qtbot import QtBot

from presence_desktop.core.api import ConnectionEvents, ConnectionInfo, Link, UserError
from presence_desktop.core.devices import (
    OFFLINE_TEXT,
    SIGNED_OUT_TEXT,
    Device,
    DeviceSignedOut,
    DeviceSignOutFailed,
    Phase,
)
from presence_desktop.core.events import Signal
from presence_desktop.ui.devices_page import NAME_CHARS, DevicesActions, DevicesPage
from presence_desktop.ui.settings_dialog import SettingsDialog
from presence_protocol import CloseCode, SessionInfo, Sessions, encode_text, limits
from presence_server import ServerConfig, ServerLimits, start_server
from tests.desktop.net.helpers import Peer, until
from tests.integration.apps import App
from tests.support.servers import sqlite_url

from .realapps import start_server as start_handle
from .realapps import stop_all, wait_link

pytestmark = pytest.mark.usefixtures("app_stays_open")


def _open_devices(qtbot: QtBot, app: App) -> tuple[SettingsDialog, DevicesPage]:
    dialog = SettingsDialog(app.settings, app.state, app.controller)
    qtbot.addWidget(dialog)
    dialog.show()
    page = dialog.devices
    assert page is not None
    # Built and on screen, but on the General tab: nothing was asked yet.
    assert page.model.phase is Phase.NOT_LOADED
    dialog.show_devices()
    assert page.model.phase is Phase.LOADING and "Loading" in page.status.text()
    return dialog, page


async def _loaded(app: App, page: DevicesPage) -> None:
    await until(
        lambda: page.model.phase is Phase.LOADED,
        app.controller.devices_listed,
        app.controller.devices_failed,
    )


def _press_confirm(page: DevicesPage) -> None:
    box = page.confirm_box
    assert box is not None and box.isVisible()
    (yes,) = [
        b for b in box.buttons() if box.buttonRole(b) is QMessageBox.ButtonRole.DestructiveRole
    ]
    yes.click()


def _tab_from(widget: QWidget) -> QWidget:
    """Where Tab goes from ``widget``: the next widget in the chain that takes Tab focus."""
    step = widget.nextInFocusChain()
    while step is not None and not (
        step.focusPolicy() & Qt.FocusPolicy.TabFocus and step.isVisible()
    ):
        step = step.nextInFocusChain()
    assert step is not None
    return step


def _labels(page: DevicesPage) -> list[str]:
    return [row.device.label for row in page.rows.values()]


async def test_lists_my_devices_and_signs_out_the_other_one(tmp_path: Path, qtbot: QtBot) -> None:
    server = await start_handle(tmp_path / "server")
    alice = App(tmp_path / "alice", server.url, "alice")
    laptop = Peer(server.url, "alice", device="work-desktop")
    try:
        await alice.start()
        await laptop.online()
        dialog, page = _open_devices(qtbot, alice)
        await _loaded(alice, page)

        # Both signed in within the same second: the server orders them by id then
        # (oldest first is checked on distinct times in the paged test below).
        assert sorted(_labels(page)) == ["test", "work-desktop"]
        (mine,) = [r for r in page.rows.values() if r.device.label == "test"]
        (other,) = [r for r in page.rows.values() if r.device.label == "work-desktop"]
        assert mine.isVisible() and other.isVisible()
        assert mine.device.current and mine.this_computer is not None
        assert mine.sign_out_button is None  # the tray menu signs this computer out
        assert mine.last_used.text() == "In use now"
        assert not other.device.current and other.this_computer is None
        assert "Signed in today" in other.signed_in.text()
        assert "sweep" in other.last_used.toolTip()  # why "last used" may lag
        assert other.sign_out_button is not None
        assert other.sign_out_button.accessibleName() == "Sign out work-desktop"
        # Tab from the tab bar goes into the page's rows first, not past Save and Cancel.
        assert _tab_from(dialog.tabs.tabBar()) is other.sign_out_button

        other.sign_out_button.click()
        assert page.confirm_box is not None and "work-desktop" in page.confirm_box.text()
        _press_confirm(page)
        assert not other.sign_out_button.isEnabled()  # no second request meanwhile
        closed = await laptop.wait_signed_out_by_server()
        assert closed.close_code == CloseCode.SESSION_REVOKED
        await until(lambda: _labels(page) == ["test"], alice.controller.device_signed_out)
        assert page.status.text() == "work-desktop was signed out."
        assert _tab_from(dialog.tabs.tabBar()) is page.refresh_button  # rebuilt, still in order
        assert not page.sign_out_all_button.isEnabled()  # nobody else is left
        assert alice.connection.current.link is Link.ONLINE  # this computer stays in
        dialog.close()
        await laptop.client.stop()
    finally:
        await stop_all([server], [alice])


async def test_a_device_gone_meanwhile_is_removed_and_said_so(tmp_path: Path, qtbot: QtBot) -> None:
    server = await start_handle(tmp_path / "server")
    alice = App(tmp_path / "alice", server.url, "alice")
    laptop = Peer(server.url, "alice", device="laptop")
    try:
        await alice.start()
        await laptop.online()
        dialog, page = _open_devices(qtbot, alice)
        await _loaded(alice, page)
        assert sorted(_labels(page)) == ["laptop", "test"]
        await laptop.client.sign_out()  # the laptop signs itself out first

        row = page.rows[page.model.others[0].session_id]
        assert row.sign_out_button is not None
        row.sign_out_button.click()
        _press_confirm(page)
        await until(lambda: _labels(page) == ["test"], alice.controller.device_signed_out)
        assert page.status.text() == "laptop was already signed out."
        assert not page.model.status_is_error
        dialog.close()
    finally:
        await stop_all([server], [alice])


async def test_sign_out_all_other_devices(tmp_path: Path, qtbot: QtBot) -> None:
    server = await start_handle(tmp_path / "server")
    alice = App(tmp_path / "alice", server.url, "alice")
    others = [Peer(server.url, "alice", device=name) for name in ("laptop", "phone-ish")]
    try:
        await alice.start()
        for peer in others:
            await peer.online()
        dialog, page = _open_devices(qtbot, alice)
        await _loaded(alice, page)
        assert sorted(_labels(page)) == ["laptop", "phone-ish", "test"]
        late = Peer(server.url, "alice", device="signed-in-later")
        await late.online()  # not on the page, but "all other devices" means it too

        page.sign_out_all_button.click()
        box = page.confirm_box
        assert box is not None and "laptop" in box.text() and "phone-ish" in box.text()
        _press_confirm(page)
        for peer in [*others, late]:
            closed = await peer.wait_signed_out_by_server()
            assert closed.close_code == CloseCode.SESSION_REVOKED
        await until(
            lambda: page.status.text() == "Signed out 3 other devices.",
            alice.controller.other_devices_signed_out,
        )
        assert _labels(page) == ["test"]
        assert alice.connection.current.link is Link.ONLINE
        dialog.close()
    finally:
        await stop_all([server], [alice])


async def test_signed_out_and_offline_states(tmp_path: Path, qtbot: QtBot) -> None:
    server = await start_handle(tmp_path / "server")
    alice = App(tmp_path / "alice", server.url, "alice")
    bob = App(tmp_path / "bob", server.url, "bob")
    try:
        await alice.start()
        await bob.start()
        dialog, page = _open_devices(qtbot, alice)
        await _loaded(alice, page)
        assert _labels(page) == ["test"]

        # Offline: no rows (they may be stale), and the page says when they come back.
        await server.stop()
        await until(lambda: page.model.phase is Phase.OFFLINE, alice.connection.changed)
        assert page.status.text() == OFFLINE_TEXT and page.rows == {}
        assert not page.sign_out_all_button.isEnabled()
        page.refresh_button.click()  # asking while offline says the same
        await until(lambda: page.model.phase is Phase.OFFLINE, alice.controller.devices_failed)
        assert page.status.text() == OFFLINE_TEXT
        await server.start()
        await wait_link(alice, Link.ONLINE)
        await _loaded(alice, page)  # back online: loaded again without a click
        assert _labels(page) == ["test"]
        dialog.close()

        # Signed out: opening the page says to sign in, and lists nothing.
        bob.controller.sign_out()
        await wait_link(bob, Link.SIGNED_OUT)
        dialog, page = _open_devices(qtbot, bob)
        await until(lambda: page.model.phase is Phase.SIGNED_OUT, bob.controller.devices_failed)
        assert page.status.text() == SIGNED_OUT_TEXT and page.rows == {}
        assert not page.sign_out_all_button.isEnabled()
        dialog.close()
    finally:
        await stop_all([server], [alice, bob])


async def test_a_list_longer_than_one_frame_shows_every_device_once(
    tmp_path: Path, qtbot: QtBot
) -> None:
    frame = limits.MIN_SERVER_FRAME_BYTES
    server = await start_server(
        ServerConfig(
            host="127.0.0.1",
            port=0,
            database_url=sqlite_url(tmp_path / "presence.sqlite3"),
            dev_login=True,
            limits=ServerLimits(max_server_frame_bytes=frame),
        )
    )
    url = f"ws://127.0.0.1:{server.port}"
    alice = App(tmp_path / "alice", url, "alice")
    try:
        await alice.start()
        now = int(time.time())
        names = [f"device-{i:03}-".ljust(limits.MAX_DEVICE_CHARS, "x") for i in range(150)]
        for i, name in enumerate(names):
            await server.hub.store.create_session(alice.me, name, now - 1000 + i)
        # The premise: one frame cannot hold them all, so the server pages.
        entries = [
            SessionInfo(id="f" * 16, device=n, created_at=now, last_used_at=now) for n in names
        ]
        assert len(encode_text(Sessions(id=1, sessions=entries))) > frame

        answers: list[list[Device]] = []
        alice.controller.devices_listed.connect(answers.append)
        dialog, page = _open_devices(qtbot, alice)
        await _loaded(alice, page)
        (answer,) = answers  # the controller followed every page: none twice, none missed
        assert len({d.session_id for d in answer}) == len(answer) == len(names) + 1
        listed = _labels(page)
        assert sorted(listed) == sorted([*names, "test"])  # every device, each once
        assert listed[: len(names)] == names  # oldest first, as the server orders
        assert page.status.text() == ""
        dialog.close()
    finally:
        await alice.controller.stop()
        await server.stop()


async def test_a_server_error_is_shown_and_the_rows_stay(tmp_path: Path, qtbot: QtBot) -> None:
    """A refused refresh (here: over the server's command rate) says the server's
    words on the page and leaves the list as it was."""
    server = await start_server(
        ServerConfig(
            host="127.0.0.1",
            port=0,
            database_url=sqlite_url(tmp_path / "presence.sqlite3"),
            dev_login=True,
            limits=ServerLimits(commands_per_minute=4),
        )
    )
    url = f"ws://127.0.0.1:{server.port}"
    alice = App(tmp_path / "alice", url, "alice")
    laptop = Peer(url, "alice", device="laptop")
    try:
        await alice.start()
        await laptop.online()
        dialog, page = _open_devices(qtbot, alice)
        await _loaded(alice, page)
        rows = _labels(page)
        assert sorted(rows) == ["laptop", "test"]
        for _attempt in range(5):  # a few more lists use up the minute's commands
            if page.model.status_is_error:
                break
            page.refresh_button.click()
            await until(
                lambda: page.model.phase is not Phase.LOADING,
                alice.controller.devices_listed,
                alice.controller.devices_failed,
            )
        assert page.model.status_is_error
        assert page.status.text().startswith("The server did not list the sessions: ")
        assert "4 commands per minute" in page.status.text()
        assert _labels(page) == rows  # nothing else changed
        assert page.refresh_button.isEnabled() and page.sign_out_all_button.isEnabled()
        dialog.close()
        await laptop.client.stop()
    finally:
        await alice.controller.stop()
        await server.stop()


# ---------------------------------------------------------------- without a server


class FakeDevices:
    """The controller's side of ``DevicesActions``, answered by the test."""

    def __init__(self) -> None:
        self.connection = ConnectionEvents()
        self.devices_listed = Signal[list[Device]]()
        self.devices_failed = Signal[UserError]()
        self.device_signed_out = Signal[DeviceSignedOut]()
        self.device_sign_out_failed = Signal[DeviceSignOutFailed]()
        self.other_devices_signed_out = Signal[int]()
        self.calls: list[str] = []

    def list_devices(self) -> None:
        self.calls.append("list")

    def sign_out_device(self, session_id: str) -> None:
        self.calls.append(f"sign_out {session_id}")

    def sign_out_other_devices(self) -> None:
        self.calls.append("sign_out_others")


NOW = int(time.time())
THREE = [
    Device("a", "this-pc", NOW - 9000, NOW - 60, current=True),
    Device("b", "laptop", NOW - 8000, NOW - 7200),
    Device("c", "z" * limits.MAX_DEVICE_CHARS, NOW - 7000, NOW - 3600),
]


def _page(qtbot: QtBot) -> tuple[FakeDevices, DevicesPage]:
    actions = FakeDevices()
    assert isinstance(actions, DevicesActions)
    page = DevicesPage(actions)
    qtbot.addWidget(page)
    page.show()
    assert actions.calls == ["list"]  # first shown: loaded once
    page.hide()
    page.show()
    assert actions.calls == ["list"]  # never again by itself
    actions.devices_listed.emit(list(THREE))
    return actions, page


def test_an_error_shows_the_servers_message_and_changes_nothing_else(qtbot: QtBot) -> None:
    actions, page = _page(qtbot)
    page.refresh_button.click()
    assert actions.calls == ["list", "list"]
    assert not page.refresh_button.isEnabled()  # one request at a time
    actions.devices_failed.emit(UserError("x", "The server said: try again later.", "rate_limited"))
    assert page.status.text() == "The server said: try again later."
    assert _labels(page) == [d.label for d in THREE]
    assert page.refresh_button.isEnabled() and page.sign_out_all_button.isEnabled()

    row = page.rows["b"]
    assert row.sign_out_button is not None
    row.sign_out_button.click()
    _press_confirm(page)
    assert actions.calls[-1] == "sign_out b"
    error = UserError("Device not signed out", "The server said: busy.", "internal_error")
    actions.device_sign_out_failed.emit(DeviceSignOutFailed("b", error))
    assert page.status.text() == "laptop was not signed out. The server said: busy."
    assert _labels(page) == [d.label for d in THREE]
    assert row.sign_out_button.isEnabled()  # try again


def test_cancel_signs_nothing_out(qtbot: QtBot) -> None:
    actions, page = _page(qtbot)
    row = page.rows["b"]
    assert row.sign_out_button is not None
    row.sign_out_button.click()
    box = page.confirm_box
    assert box is not None
    cancel = box.button(QMessageBox.StandardButton.Cancel)
    assert cancel is not None
    cancel.click()
    assert actions.calls == ["list"] and "b" in page.rows


def test_keyboard_reaches_every_action_and_names_fit(qtbot: QtBot) -> None:
    _actions, page = _page(qtbot)
    buttons = [r.sign_out_button for r in page.rows.values() if r.sign_out_button is not None]
    assert len(buttons) == 2
    chain: list[QPushButton] = [*buttons, page.refresh_button, page.sign_out_all_button]
    for first, second in itertools.pairwise(chain):
        assert first.focusPolicy() & Qt.FocusPolicy.TabFocus
        assert _tab_from(first) is second, (first.text(), second.text())
    assert _tab_from(chain[-1]) is chain[0]  # alone in its window, the chain goes round
    for widget in chain:
        assert widget.accessibleName()
    for row in page.rows.values():
        assert row.accessibleName().startswith(row.device.label)
    # Space on a focused button asks first, like a click.
    buttons[0].setFocus()
    qtbot.keyClick(buttons[0], Qt.Key.Key_Space)
    assert page.confirm_box is not None and page.confirm_box.isVisible()
    page.confirm_box.close()
    # A 64-character name is elided (whole in the tooltip), so the page stays narrow.
    long_row = page.rows["c"]
    average = long_row.name.fontMetrics().averageCharWidth()
    assert long_row.name.sizeHint().width() <= average * (NAME_CHARS + 4)
    assert long_row.name.toolTip() == "z" * limits.MAX_DEVICE_CHARS


def test_rows_listed_while_the_page_is_hidden_show_with_it(qtbot: QtBot) -> None:
    actions, page = _page(qtbot)
    page.hide()
    actions.devices_listed.emit(list(reversed(THREE)))
    page.show()
    assert [r.isVisible() for r in page.rows.values()] == [True, True, True]
    assert _labels(page) == [d.label for d in reversed(THREE)]


def test_the_page_never_makes_settings_wider(qtbot: QtBot, tmp_path: Path) -> None:
    """Settings fits the screen at a scale factor of 2 (test_display_fit.py, with the
    other pages); the Devices page, even with 64-character names, is no wider than they are."""
    from presence_desktop.core.settings import SettingsStore
    from presence_desktop.core.state import PresenceState

    actions = FakeDevices()
    store = SettingsStore(tmp_path / "config", tmp_path / "state")
    dialog = SettingsDialog(store, PresenceState(), actions)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.show_devices()
    long = "w" * limits.MAX_DEVICE_CHARS
    actions.devices_listed.emit(
        [
            Device("a", long, NOW - 9000, NOW - 60, current=True),
            *(Device(f"d{i}", long[:-1] + str(i), NOW - 8000, NOW - 7200) for i in range(4)),
        ]
    )
    page = dialog.devices
    assert page is not None and len(page.rows) == 5
    others = [dialog.tabs.widget(i) for i in range(dialog.tabs.count())]
    widest_other = max(w.minimumSizeHint().width() for w in others if w is not page and w)
    assert page.minimumSizeHint().width() <= widest_other


def test_closed_settings_stop_listening_to_the_controller(qtbot: QtBot, tmp_path: Path) -> None:
    """The controller outlives Settings: a late answer must not reach a closed page."""
    from presence_desktop.core.settings import SettingsStore
    from presence_desktop.core.state import PresenceState

    actions = FakeDevices()
    store = SettingsStore(tmp_path / "config", tmp_path / "state")
    dialog = SettingsDialog(store, PresenceState(), actions)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.show_devices()
    page = dialog.devices
    assert page is not None and actions.calls == ["list"]
    dialog.close()
    actions.devices_listed.emit(list(THREE))
    actions.connection.set(ConnectionInfo(Link.SIGNED_OUT))
    assert page.rows == {} and page.model.phase is Phase.LOADING
