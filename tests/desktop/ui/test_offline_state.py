"""Disconnected, the popup is honest: rows are dimmed and say "Last known",
the header says what is wrong without an ellipsis, nobody is told friends
see them online, and screen readers hear the same."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QStyleOptionViewItem
from pytestqt.qtbot import QtBot

from presence_desktop.core.api import ConnectionInfo, Link
from presence_desktop.core.format import activity_line
from presence_desktop.core.settings import Settings
from presence_desktop.net.editor_activity import EditorActivity
from presence_desktop.ui.avatars import AvatarStore
from presence_desktop.ui.delegate import FriendDelegate
from presence_desktop.ui.friends_model import FriendsModel, Role
from presence_desktop.ui.panel import FriendsPanel
from presence_protocol import SeenStatus

from .fakes import FakeCore, friend, snapshot


@pytest.fixture
def core() -> FakeCore:
    core = FakeCore()
    now = int(time.time())
    core.state.apply_snapshot(
        snapshot(
            friend(2, "alice", language="Rust", project="tokio", since=now - 60),
            friend(3, "bob", SeenStatus.OFFLINE, last_seen=now - 3600),
        )
    )
    core.go_online()
    return core


def _editors(core: FakeCore, tmp_path: Path) -> EditorActivity:
    defaults = Settings()
    return EditorActivity(
        core.state,
        lambda _activity, _away: None,
        privacy=defaults.privacy,
        idle=defaults.idle,
        activity=defaults.activity,
        bridge_address=str(tmp_path / "run" / "bridge.sock"),
        use_system_sources=False,
    )


@pytest.fixture
async def panel(core: FakeCore, qtbot: QtBot, tmp_path: Path) -> FriendsPanel:
    model = FriendsModel(core.state, activity_line)
    panel = FriendsPanel(
        core.state,
        core.connection,
        core.actions,
        model,
        FriendDelegate(AvatarStore(tmp_path)),
        presence=_editors(core, tmp_path).me,
    )
    qtbot.addWidget(panel)
    panel.resize(380, 540)
    panel.show()
    return panel


def _row(panel: FriendsPanel, uid: int) -> object:
    model = panel.view.model()
    assert isinstance(model, FriendsModel)
    row = model.row_of(uid)
    assert row is not None
    return model.index(row, 0)


def _ink(panel: FriendsPanel, uid: int) -> int:
    """How much the row's painting differs from the plain background (a dimmed row has less)."""
    index = _row(panel, uid)
    image = QImage(380, 52, QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    option = QStyleOptionViewItem()
    option.initFrom(panel.view)
    option.rect = image.rect()
    painter = QPainter(image)
    panel.view.itemDelegate().paint(painter, option, index)  # type: ignore[arg-type]
    painter.end()
    total = 0
    for x in range(0, 380, 2):
        for y in range(0, 52, 2):
            c = image.pixelColor(x, y)
            total += 765 - (c.red() + c.green() + c.blue())
    return total


async def test_connected_rows_are_live_and_the_header_is_quiet(panel: FriendsPanel) -> None:
    alice = _row(panel, 2)
    assert alice.data(Role.STALE) is False  # type: ignore[attr-defined]
    assert not alice.data(Role.ACTIVITY).startswith("Last known")  # type: ignore[attr-defined]
    assert panel.connection_row.isHidden()
    assert panel.sharing_line is not None and panel.sharing_line.isVisible()


async def test_lost_connection_dims_rows_and_says_what_is_wrong(
    panel: FriendsPanel, core: FakeCore
) -> None:
    live = _ink(panel, 2)
    core.connection.set(
        ConnectionInfo(
            Link.RECONNECTING, retry_at=time.monotonic() + 12.4, title="Can't reach server"
        )
    )
    alice = _row(panel, 2)
    assert alice.data(Role.STALE) is True  # type: ignore[attr-defined]
    assert alice.data(Role.ACTIVITY).startswith("Last known: Coding")  # type: ignore[attr-defined]
    assert _ink(panel, 2) < live * 0.8  # visibly dimmed
    label = panel.connection_label
    assert panel.connection_row.isVisible()
    assert label.text() == "Can't reach server — retrying in 12 s"
    assert "…" not in label.text()
    # Nothing cut: the text fits the lines the label was given.
    lines = label.fontMetrics().boundingRect(
        0, 0, label.width(), 10_000, int(Qt.TextFlag.TextWordWrap), label.text()
    )
    assert lines.height() <= label.height()
    # Nobody is told friends see them online.
    assert panel.sharing_line is not None and not panel.sharing_line.isVisible()
    assert panel.status_button.text().startswith("Friends see you offline")
    spoken = alice.data(Qt.ItemDataRole.AccessibleTextRole)  # type: ignore[attr-defined]
    assert spoken == "alice, online, coding Rust in tokio, last known, not connected"


async def test_back_online_rows_are_live_again(panel: FriendsPanel, core: FakeCore) -> None:
    core.connection.set(ConnectionInfo(Link.RECONNECTING, title="Connection lost"))
    core.go_online()
    assert _row(panel, 2).data(Role.STALE) is False  # type: ignore[attr-defined]
    assert panel.connection_row.isHidden()
    assert panel.status_button.text().startswith("Online")


async def test_signed_out_is_shown_as_such(panel: FriendsPanel, core: FakeCore) -> None:
    core.connection.set(ConnectionInfo(Link.SIGNED_OUT))
    assert panel.page == "signed_out"
    assert panel.status_button.text() == "Signed out"
    assert panel.sharing_line is not None and not panel.sharing_line.isVisible()


async def test_rows_read_aloud_as_name_status_activity(panel: FriendsPanel) -> None:
    alice = _row(panel, 2).data(Qt.ItemDataRole.AccessibleTextRole)  # type: ignore[attr-defined]
    bob = _row(panel, 3).data(Qt.ItemDataRole.AccessibleTextRole)  # type: ignore[attr-defined]
    assert alice == "alice, online, coding Rust in tokio"
    assert bob == "bob, offline, last seen 1 h ago"
