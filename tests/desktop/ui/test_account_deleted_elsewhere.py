"""An account deleted from another device: this device ends signed out with
"Account deleted", forgets that account's local data, and opens no sign-in
window by itself (the tray still offers Sign in)."""

from __future__ import annotations

from pathlib import Path

import pytest

from presence_desktop.core.api import Link
from presence_desktop.core.credentials import MemoryCredentials
from presence_desktop.ui.app import DesktopUi
from presence_desktop.ui.notifications import LogBackend
from tests.desktop.net.helpers import next_emit, until
from tests.integration.apps import App, befriend

from .realapps import start_server, stop_all, wait_link

pytestmark = pytest.mark.usefixtures("app_stays_open")


async def test_deleted_on_another_device_signs_out_without_a_sign_in_window(
    tmp_path: Path,
) -> None:
    server = await start_server(tmp_path / "server")
    phone = App(tmp_path / "phone", server.url, "alice")
    bob = App(tmp_path / "bob", server.url, "bob")
    # The laptop signed in earlier (a saved session, no development login), so a
    # lost session would normally bring up the sign-in window.
    attempts: list[object] = []
    laptop = App(
        tmp_path / "laptop",
        server.url,
        None,
        credentials=MemoryCredentials(),
        make_sign_in=lambda _config, reason: attempts.append(reason),
    )
    ui = DesktopUi(
        laptop.controller,
        laptop.controller,
        cache_dir=tmp_path / "cache",
        settings=laptop.settings,
        tray_available=False,
        backends=[LogBackend()],
    )
    try:
        await phone.start()
        await bob.start()
        await befriend(phone, bob)
        bootstrap = App(tmp_path / "boot", server.url, "alice")
        await bootstrap.start()
        token = bootstrap.credentials.get()
        assert token is not None
        await bootstrap.controller.stop()  # stopped, not signed out: the session lives
        laptop.credentials.set(token)

        ui.start()
        await laptop.start()
        assert laptop.state.me is not None and laptop.state.me.login == "alice"
        bob.controller.send_message(laptop.me, "for alice")
        await until(lambda: laptop.settings.runtime.inbox, laptop.settings.runtime_changed)

        gone = next_emit(laptop.controller.account_deleted)
        phone.controller.delete_account("alice")
        await gone
        await wait_link(laptop, Link.SIGNED_OUT)

        info = laptop.connection.current
        assert info.title == "Account deleted"
        assert "Account deleted" in ui.panel.signed_out_text.text()
        assert attempts == []
        assert ui.sign_in_windows is not None and ui.sign_in_windows.window is None
        # That account's local data is gone (privacy), as after a deletion from here.
        assert laptop.credentials.get() is None
        assert laptop.state.me is None and not laptop.state.friends
        assert laptop.state.inbox == [] and laptop.settings.runtime.inbox == ()
        assert laptop.settings.runtime.acked_seq == 0
        ui.menu.refresh()
        assert ui.menu.sign.text() == "Sign in"
    finally:
        await stop_all([server], [phone, bob, laptop])
        await ui.aclose()
