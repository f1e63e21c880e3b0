""" "Reconnect now" in the popup header and the tray menu skips a long backoff wait."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from presence_desktop.core.api import ConnectionInfo, Link
from presence_desktop.ui.app import DesktopUi
from presence_desktop.ui.notifications import LogBackend
from tests.desktop.net.helpers import until
from tests.integration.apps import App

from .realapps import start_server, stop_all, wait_link

pytestmark = pytest.mark.usefixtures("app_stays_open")

LONG_WAIT = 3600.0


def long_backoff() -> Iterator[float]:
    return itertools.repeat(LONG_WAIT)


@pytest.mark.parametrize("where", ["popup", "tray menu"])
async def test_reconnect_now_skips_the_wait(tmp_path: Path, where: str) -> None:
    server = await start_server(tmp_path / "server")
    alice = App(tmp_path / "alice", server.url, "alice", backoff=long_backoff)
    ui = DesktopUi(
        alice.controller,
        alice.controller,
        cache_dir=tmp_path / "cache",
        settings=alice.settings,
        tray_available=False,
        backends=[LogBackend()],
    )
    try:
        ui.start()
        await alice.start()
        panel, menu = ui.panel, ui.menu
        assert panel.reconnect_button.isHidden()
        menu.refresh()
        assert not menu.reconnect.isVisible()

        await server.stop()
        await wait_link(alice, Link.RECONNECTING)
        retry_at = alice.connection.current.retry_at
        assert retry_at is not None and retry_at - time.monotonic() > LONG_WAIT - 60
        # The server went away after we were online: the header says so, with the wait.
        assert panel.connection_label.text() == "Connection lost — retrying in 60 min"
        assert not panel.reconnect_button.isHidden()
        assert panel.reconnect_button.text() == "Reconnect now"
        menu.refresh()
        assert menu.reconnect.isVisible() and menu.reconnect.text() == "Reconnect now"

        await server.start()  # same port: the client would find it only in an hour
        if where == "popup":
            panel.reconnect_button.click()
        else:
            menu.reconnect.trigger()
        await wait_link(alice, Link.ONLINE)  # its hang guard is minutes short of the hour
        assert alice.state.me is not None and alice.state.me.login == "alice"
        assert panel.reconnect_button.isHidden()
        assert panel.connection_label.text() == "Connected"
        menu.refresh()
        assert not menu.reconnect.isVisible()
    finally:
        await stop_all([server], [alice])
        await ui.aclose()


async def test_after_a_stop_the_header_offers_to_try_again(tmp_path: Path) -> None:
    # An address nobody can parse stops retrying (OFFLINE) until the person acts.
    alice = App(tmp_path / "alice", "not a url", "alice", backoff=long_backoff)
    ui = DesktopUi(
        alice.controller,
        alice.controller,
        cache_dir=tmp_path / "cache",
        settings=alice.settings,
        tray_available=False,
        backends=[LogBackend()],
    )
    try:
        ui.start()
        await alice.controller.start()
        await wait_link(alice, Link.OFFLINE)
        assert ui.panel.reconnect_button.text() == "Try again"
        assert not ui.panel.reconnect_button.isHidden()
        seen: list[ConnectionInfo] = []
        alice.connection.changed.connect(seen.append)
        ui.panel.reconnect_button.click()
        # It tried again, and said why again.
        await until(lambda: len(seen) >= 2, alice.connection.changed)
        assert [i.link for i in seen] == [Link.CONNECTING, Link.OFFLINE]
        assert seen[-1].title == "Invalid server address"
    finally:
        await stop_all([], [alice])
        await ui.aclose()
